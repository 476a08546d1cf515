// Restore round trip on both backends: a cluster loses its snapshot buckets, input stream and registry;
// `restore --all` brings back every device (its old token works) and every twin exactly as it was
// (statistics, rules, subscriptions, calibration, learned state); new readings then apply on top. A
// restore while a node owns a shard is refused, a registry entry that cannot be written fails it (not
// skipped), and --device restores one twin.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { restoreFromArchive } from "../../gateways/archive/restore.ts";
import { registryBucket } from "../../gateways/registry/registry.ts";
import { OpsClient } from "../../runtime/mod.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, BACKENDS, caughtUp, expectTwinsAsBefore, natsServerForFile, post, restoredGateway, testDatabase } from "./fixture.ts";

const nats = natsServerForFile();

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 20);

describe.each(BACKENDS)("restore (%s)", (backend) => {
  it("rebuilds the registry and every twin after JetStream lost them; new readings continue", { timeout: 300_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    const archive = await archiveOn(f, db);
    try {
      await f.ready();
      const owner = await f.user("ann");
      const devices = [];
      for (let i = 0; i < 6; i++) devices.push(await f.device(`r-${i}`, owner.userId));
      // three days of readings (calibration closes days), a rule and a subscription on one twin
      for (const d of devices) {
        const readings = [];
        for (let h = 0; h < 72; h++) readings.push({ t: T0 + h * H, pm: 10 + (h % 24), co2: 420 + 10 * (h % 24), voc: 100 + h, tmp: 21, hum: 40 });
        await post(f, d, readings);
      }
      const rule = { type: "putRule", rule: { id: "hot", channel: "tmp", direction: "above", enter: 30, exit: 25, minDurationMs: 0, clearDurationMs: 0 } };
      const sub = { type: "subscribe", subscription: { id: "s1", provider: "push", match: { kinds: ["event.start"] }, target: "phone-1" } };
      for (const c of [rule, sub]) {
        const r = await f.app.inject({ method: "POST", url: "/v1/devices/r-0/commands", headers: owner.headers, payload: c });
        expect(r.statusCode, r.body).toBe(200);
      }
      // a 202 says stored, not applied yet: each twin as it is once its owner applied all 72 readings
      const before = new Map<string, Record<string, unknown>>();
      for (const d of devices) {
        const view = await waitFor(
          async () => {
            const v = (await f.app.inject({ method: "GET", url: `/v1/devices/${d.deviceId}`, headers: owner.headers })).json<Record<string, unknown>>();
            return v.readings === 72 ? v : undefined;
          },
          { timeoutMs: 60_000, message: `${d.deviceId}'s readings applied` },
        );
        before.set(d.deviceId, view);
      }
      expect(before.get("r-0")).toMatchObject({ readings: 72, subscriptions: [{ id: "s1" }] });
      // the archive holds each twin's latest snapshot
      await waitFor(async () => (await db.query<{ n: number }>("select count(*)::int as n from snapshots where key like 'twin.r-%' and applied_seq > 0")).rows[0]!.n === devices.length, {
        timeoutMs: 60_000,
        message: "snapshots archived",
      });
      for (const n of f.nodes) await n.close(); // nodes commit and hand off on close
      await waitFor(async () => (await archive.measureLag()) === 0, { timeoutMs: 60_000, message: "archive caught up" });
      await caughtUp(archive);
      await archive.close();

      // disaster: the snapshot buckets, the input stream and the registry are gone
      const jsm = await jetstreamManager(f.nc);
      const lost = [...Array.from({ length: f.shards }, (_, s) => `KV_${f.parts.names.snapshotBucket(s)}`), `KV_${registryBucket(f.prefix)}`, f.parts.names.inputStream(0)];
      for (const s of lost) expect(await jsm.streams.delete(s), s).toBe(true);

      // a restore while a node owns the shards is refused
      const intruder = await f.startNode("n-busy");
      const ops = new OpsClient(f.nc, f.parts.names);
      await waitFor(async () => ((await ops.cluster().catch(() => undefined)) as { shards?: { owner: string | null }[] } | undefined)?.shards?.every((s) => s.owner === "n-busy"), {
        timeoutMs: 60_000,
        message: "the intruder owns every shard",
      });
      await expect(restoreFromArchive({ nc: f.nc, db, prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, target: { all: true } })).rejects.toMatchObject({
        code: "AIRTWIN_ERR_ARCHIVE_RESTORE_BUSY",
      });
      await intruder.close();

      // a registry entry JetStream will not store fails the restore, naming it, instead of being skipped
      // (a bucket that takes no value of a registry entry's size stands in for a bucket just created
      // elsewhere that answers "stream not found" for longer than a start's patience)
      await new Kvm(jetstream(f.nc)).create(registryBucket(f.prefix), { history: 1, maxValueSize: 16 });
      await expect(restoreFromArchive({ nc: f.nc, db, prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, target: { all: true } })).rejects.toMatchObject({
        code: "AIRTWIN_ERR_NATS_UNAVAILABLE",
        message: expect.stringMatching(/cannot restore the registry entry (devices|users)\./),
      });
      expect(await jsm.streams.delete(`KV_${registryBucket(f.prefix)}`)).toBe(true);

      let progress = 0;
      let total = -1;
      const result = await restoreFromArchive({
        nc: f.nc,
        db,
        prefix: f.prefix,
        shards: f.shards,
        streams: 1,
        replicas: 1,
        target: { all: true },
        onStart: (n) => (total = n),
        onRecord: () => progress++,
      });
      expect(result.registryEntries).toBe(1 + devices.length);
      expect(progress).toBe(total);
      expect(total).toBeGreaterThanOrEqual(devices.length);

      // a fresh gateway and node on the restored cluster
      const restored = await restoredGateway(f, "n-after");
      const { app } = restored;
      try {
        await expectTwinsAsBefore(app, devices.map((d) => d.deviceId), before, owner.headers);
        // the old device token still works, and a new reading applies on top of the restored state
        const r = await app.inject({ method: "POST", url: "/v1/devices/r-0/readings", headers: devices[0]!.headers, payload: { readings: [{ t: T0 + 72 * H, pm: 5 }] } });
        expect(r.statusCode, r.body).toBe(202);
        await waitFor(async () => (await app.inject({ method: "GET", url: "/v1/devices/r-0", headers: owner.headers })).json<{ readings: number }>().readings === 73, {
          timeoutMs: 60_000,
          message: "the new reading applied",
        });
        const after = (await app.inject({ method: "GET", url: "/v1/devices/r-0", headers: owner.headers })).json<{ readings: number; duplicates: number; late: number }>();
        expect(after).toMatchObject({ readings: 73, duplicates: 0, late: 0 });
      } finally {
        await restored.close();
      }
    } finally {
      await archive.close();
      await db.drop();
    }
  });
});
