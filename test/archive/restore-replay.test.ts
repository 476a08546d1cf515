// Restore with deferred snapshots, on both backends: twins snapshotted once, then changed by more
// readings and commands (unsubscribe, deleteRule, a keyed subscribe sent twice, a device deleted) under
// a node that defers its snapshots — and crashes before writing any of them; a device registered after
// the last snapshot has none at all. JetStream then loses the snapshot buckets, the input stream and
// the registry. `restore --all` applies the archived inputs after each snapshot: every twin comes back
// exactly as it was live before the crash (on the old code, as of its last snapshot), the keyed
// command is still answered from memory, and new readings apply on top.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { deviceTwinBehavior } from "../../actors/device-twin/behavior.ts";
import { restoreFromArchive, type RestoreResult } from "../../gateways/archive/restore.ts";
import { registryBucket } from "../../gateways/registry/registry.ts";
import { connectNats, startNode, type RunningNode } from "../../runtime/mod.ts";
import { ADMIN_TOKEN, GatewayFixture } from "../gateway/fixture.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, BACKENDS, caughtUp, expectTwinsAsBefore, natsServerForFile, post, restoredGateway, testDatabase } from "./fixture.ts";

const nats = natsServerForFile();

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 20);
const readings = (from: number, to: number, shift = 0) =>
  Array.from({ length: to - from }, (_, k) => {
    const h = from + k;
    return { t: T0 + h * H, pm: 10 + ((h + shift) % 24), co2: 420 + 10 * ((h + shift) % 24), voc: 100 + h, tmp: 21 + (h % 3), hum: 40 };
  });

describe.each(BACKENDS)("restore replays the archived inputs after deferred snapshots (%s)", (backend) => {
  it("loses nothing a twin applied, snapshotted or not", { timeout: 300_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    const archive = await archiveOn(f, db);
    let deferring: { node: RunningNode; nc: NatsConnection } | undefined;
    try {
      await f.ready();
      const owner = await f.user("ann");
      const devices = [];
      for (let i = 0; i < 4; i++) devices.push(await f.device(`rr-${i}`, owner.userId));
      const command = async (id: string, body: object, key?: string) => {
        const r = await f.app.inject({ method: "POST", url: `/v1/devices/${id}/commands`, headers: { ...owner.headers, ...(key === undefined ? {} : { "idempotency-key": key }) }, payload: body });
        expect(r.statusCode, r.body).toBe(200);
        return r.json<Record<string, unknown>>();
      };
      // 1. snapshotted at once: two days of readings, a rule and a subscription
      for (const d of devices) await post(f, d, readings(0, 48));
      await command("rr-0", { type: "putRule", rule: { id: "hot", channel: "tmp", direction: "above", enter: 30, exit: 25, minDurationMs: 0, clearDurationMs: 0 } });
      await command("rr-0", { type: "subscribe", subscription: { id: "s1", provider: "push", match: { kinds: ["event.start"] }, target: "phone-1" } });
      await waitFor(async () => (await db.query<{ n: number }>("select count(*)::int as n from snapshots where key like 'twin.rr-%' and applied_seq > 0")).rows[0]!.n === devices.length, {
        timeoutMs: 60_000,
        message: "first snapshots archived",
      });
      for (const n of f.nodes) await n.close();

      // 2. a node that defers every snapshot past the test: everything below lives only in the log (and the archive)
      const nc = await connectNats({ servers: f.server.url, name: "deferring node" });
      const node = await startNode({
        nc,
        nodeId: "n-defer",
        prefix: f.prefix,
        shards: f.shards,
        streams: 1,
        replicas: 1,
        behaviors: [deviceTwinBehavior()],
        defaultMetrics: false,
        log: () => undefined,
        runner: { commitIntervalMs: 100, wakeIntervalMs: 50, snapshotIntervalMs: 300_000 },
        ownership: { heartbeatMs: 200, nodeTtlMs: 1000, leaseTtlMs: 1000, rebalanceIntervalMs: 200 },
      });
      deferring = { node, nc };
      await f.ready();
      for (const d of devices) await post(f, d, readings(48, 72, 5));
      await post(f, devices[1]!, readings(10, 12)); // resent: duplicates
      await post(f, devices[2]!, [{ t: T0 + 30 * H + 1, pm: 99 }]); // late
      await command("rr-0", { type: "unsubscribe", subscriptionId: "s1" });
      await command("rr-0", { type: "deleteRule", ruleId: "hot" });
      const sub2 = { type: "subscribe", subscription: { id: "s2", provider: "push", match: { kinds: ["event.start"] }, target: "phone-2" } };
      await command("rr-1", sub2, "key-s2");
      await command("rr-1", sub2, "key-s2"); // answered from memory, not applied twice
      const fresh = await f.device("rr-new", owner.userId); // no snapshot ever
      await post(f, fresh, readings(0, 30));
      const gone = await f.app.inject({ method: "DELETE", url: "/v1/devices/rr-3", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(gone.statusCode).toBe(204);
      const again = await f.device("rr-3", owner.userId); // the same id for someone new: starts from nothing
      await post(f, again, readings(100, 103));
      const live = [...devices.slice(0, 3), fresh, again];
      const before = new Map<string, Record<string, unknown>>();
      for (const d of live) {
        // a command answers once applied, after everything sent to the twin before it: a barrier that is itself replayed
        await command(d.deviceId, { type: "putRule", rule: { id: "barrier", channel: "co2", direction: "above", enter: 5000, exit: 4000, minDurationMs: 0, clearDurationMs: 0 } });
        before.set(d.deviceId, (await f.app.inject({ method: "GET", url: `/v1/devices/${d.deviceId}`, headers: owner.headers })).json<Record<string, unknown>>());
      }
      expect(before.get("rr-0")).toMatchObject({ readings: 72, subscriptions: [] });
      expect(before.get("rr-1")).toMatchObject({ subscriptions: [{ id: "s2" }] });
      expect(before.get("rr-3")).toMatchObject({ readings: 3 });
      expect(before.get("rr-new")).toMatchObject({ readings: 30 });
      await caughtUp(archive);
      // what makes the replay necessary: the archived snapshots are those of step 1 (rr-new has none)
      const snaps = await db.query<{ key: string }>("select key from snapshots where key like 'twin.rr-%' and record is not null order by key");
      expect(snaps.rows.map((r) => r.key)).toEqual(["twin.rr-0", "twin.rr-1", "twin.rr-2", "twin.rr-3"]);

      // crash: the deferring node's connection is cut (no final commit), then JetStream loses its state
      await nc.close();
      await archive.close();
      const jsm = await jetstreamManager(f.nc);
      const lost = [...Array.from({ length: f.shards }, (_, s) => `KV_${f.parts.names.snapshotBucket(s)}`), `KV_${registryBucket(f.prefix)}`, f.parts.names.inputStream(0)];
      for (const s of lost) expect(await jsm.streams.delete(s), s).toBe(true);

      // the dead node's leases run out (1 s), then the restore goes ahead
      const result = await waitFor(
        () =>
          restoreFromArchive({ nc: f.nc, db, prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, target: { all: true } }).catch((err: { code?: string }) => {
            if (err.code === "AIRTWIN_ERR_ARCHIVE_RESTORE_BUSY") return undefined;
            throw err;
          }),
        { timeoutMs: 30_000, message: "restore after the leases expired" },
      ) as RestoreResult;
      expect(result.rebuiltTwins).toBe(1); // rr-new
      expect(result.replayedInputs).toBeGreaterThanOrEqual(10);

      const restored = await restoredGateway(f, "n-after");
      const { app } = restored;
      try {
        await expectTwinsAsBefore(app, live.map((d) => d.deviceId), before, owner.headers);
        // the keyed command is still answered from memory; new readings apply on top
        const replay = await app.inject({ method: "POST", url: "/v1/devices/rr-1/commands", headers: { ...owner.headers, "idempotency-key": "key-s2" }, payload: sub2 });
        expect(replay.statusCode, replay.body).toBe(200);
        const r = await app.inject({ method: "POST", url: "/v1/devices/rr-new/readings", headers: fresh.headers, payload: { readings: [{ t: T0 + 30 * H, pm: 5 }] } });
        expect(r.statusCode, r.body).toBe(202);
        await waitFor(async () => (await app.inject({ method: "GET", url: "/v1/devices/rr-new", headers: owner.headers })).json<{ readings: number }>().readings === 31, {
          timeoutMs: 60_000,
          message: "the new reading applied",
        });
        // a replayed twin takes its new stream's inputs too (its position starts over)
        const more = await app.inject({ method: "POST", url: "/v1/devices/rr-0/readings", headers: devices[0]!.headers, payload: { readings: [{ t: T0 + 72 * H, pm: 5 }] } });
        expect(more.statusCode, more.body).toBe(202);
        await waitFor(async () => (await app.inject({ method: "GET", url: "/v1/devices/rr-0", headers: owner.headers })).json<{ readings: number }>().readings === 73, {
          timeoutMs: 60_000,
          message: "rr-0's new reading applied",
        });
        const subs = (await app.inject({ method: "GET", url: "/v1/devices/rr-1", headers: owner.headers })).json<{ subscriptions: unknown[] }>().subscriptions;
        expect(subs).toHaveLength(1);
      } finally {
        await restored.close();
      }
    } finally {
      if (deferring !== undefined) await Promise.race([deferring.node.close().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
      await archive.close();
      await db.drop();
    }
  });
});
