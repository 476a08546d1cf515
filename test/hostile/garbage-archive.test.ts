// Garbage on every stream and bucket the archive consumes — the input and output streams, the registry
// and a snapshot bucket — against a real nats-server, node, gateway and archive (PGlite, and Postgres
// with DATABASE_URL): MessagePack that is not ours, values Postgres refuses (fractions and overflows
// for int8 columns, NUL characters in text and JSON), huge values. The archive skips or dead-letters
// each (a metric, a log line) and never stalls: valid readings, outputs and snapshots written behind
// the garbage are archived, and every source catches up (lag 0).
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningArchive } from "../../gateways/archive/archive.ts";
import { encodeBatch } from "../../runtime/envelope.ts";
import { encode, msgpackHeaders, OpsClient, shardOf } from "../../runtime/mod.ts";
import { archiveOn, BACKENDS, caughtUp, testDatabase } from "../archive/fixture.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer } from "../gateway/fixture.ts";
import { HostileCluster, type LogLine } from "./fixture.ts";

const SHARDS = 2;
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const random = rng(7);

/** Bytes that are not an input batch, an output or a record at all. */
const UNDECODABLE: Uint8Array[] = [
  Uint8Array.from({ length: 40 }, () => Math.floor(random() * 256)),
  encode({ a: 1, b: [1, 2, 3] }).subarray(0, 5),
];

/** Input batches that decode, with items whose values the database refuses or that make no sense. */
function hostileInputs(device: string): Uint8Array[] {
  const batch = (items: Array<[string, string, string, unknown]>) => encodeBatch({ acceptedAt: Date.now(), items: items.map(([type, entityId, kind, payload]) => ({ type, entityId, kind, payload })) });
  return [
    batch([["twin", device, "readings", [{ t: T0 + 0.5, pm: 1 }]]]), // not an int8
    batch([["twin", device, "readings", [{ t: 1e20, pm: 1 }]]]), // past int8, and no partition for it
    batch([["twin", device, "readings", [{ t: -8.64e15, pm: 1 }]]]),
    batch([["twin", "nul\u0000device", "readings", [{ t: T0, pm: 1 }]]]), // NUL in text
    batch([["twin", device, "command", { type: "putRule", note: "nul\u0000inside" }]]), // NUL in JSON
    batch([["twin", device, "command", { type: "x".repeat(300_000) }]]),
    batch([["twin", device, "readings", [null, 7, "x", [1]]]]),
    encode([1, 1.5, [["twin", device, "command", null]]]), // acceptedAt not an int8
  ];
}

/** Outputs on archived subjects whose fields Postgres refuses. */
const HOSTILE_OUTPUTS: Array<[string, unknown]> = [
  ["alert", { id: "g-frac", deviceId: "g", at: 1.5 }],
  ["alert", { id: "g-huge", deviceId: "g", at: 1e30 }],
  ["alert", { id: "g\u0000nul", deviceId: "g", at: T0 }],
  ["alert", { id: "g-json", deviceId: "g", at: T0, note: "nul\u0000inside" }],
  ["aggregate", { id: "g-agg", deviceId: "g", resolution: "hour", start: T0, channels: { pm: { start: 0.5, count: 1.5, mean: 1 } } }],
  ["aggregate", { id: "g-agg2", deviceId: "g", resolution: "day", start: T0, channels: { pm: { start: T0, count: 1e12 } } }],
  ["alert", 42],
  ["alert", "x".repeat(300_000)],
];

describe.each(BACKENDS)("garbage the archive consumes (%s)", (backend) => {
  let c: HostileCluster;
  let nc: NatsConnection;
  let archive: RunningArchive;
  let db: Awaited<ReturnType<typeof testDatabase>>;
  const archiveLogs: LogLine[] = [];
  const tokens: Record<string, string> = {};
  /** One device per shard, so every shard's sources carry valid work after the garbage. */
  const devices: string[] = [];

  beforeAll(async () => {
    c = await HostileCluster.start(SHARDS);
    nc = await c.f.connect();
    db = await testDatabase(backend);
    const log = (level: string, msg: string, fields?: Record<string, unknown>) => {
      if (process.env.ARCHIVE_TEST_LOG) console.error(level, msg, fields);
      archiveLogs.push({ node: "archive", level, msg, ...(fields === undefined ? {} : { fields }) });
    };
    archive = await archiveOn(c.f, db, { log });
    await c.f.user("owner");
    for (let i = 0; devices.length < SHARDS; i++) {
      const id = `arch-${i}`;
      if (devices.some((d) => shardOf(d, SHARDS) === shardOf(id, SHARDS))) continue;
      devices.push(id);
      tokens[id] = (await c.f.device(id, "owner")).token;
    }
  }, 60_000);

  afterAll(async () => {
    await archive?.close();
    await db?.drop();
    await c?.[Symbol.asyncDispose]();
  });

  async function post(id: string, readings: Array<{ t: number; pm: number }>): Promise<void> {
    const r = await c.f.app.inject({ method: "POST", url: `/v1/devices/${id}/readings`, headers: bearer(tokens[id]!), payload: { readings } });
    expect(r.statusCode, r.body).toBe(202);
  }

  const count = async (sql: string, params: unknown[]) => Number((await db.query<{ n: string | number }>(sql, params)).rows[0]!.n);

  it("skips or dead-letters what it cannot store and archives what comes behind it, on every source", { timeout: 240_000 }, async () => {
    const js = jetstream(nc);
    const kvm = new Kvm(nc);
    // a rule, so the valid readings below raise an alert: an output behind the output garbage
    const rule = await c.f.app.inject({
      method: "POST",
      url: `/v1/devices/${devices[0]}/commands`,
      headers: admin,
      payload: { type: "putRule", rule: { id: "high", channel: "pm", direction: "above", enter: 50, exit: 40, minDurationMs: 0, clearDurationMs: 0 } },
    });
    expect(rule.statusCode, rule.body).toBe(200);
    await caughtUp(archive);

    for (const device of devices) {
      const subject = `${c.f.prefix}.in.${shardOf(device, SHARDS)}`;
      for (const bytes of [...UNDECODABLE, ...hostileInputs(device)]) await js.publish(subject, bytes, { headers: msgpackHeaders() });
    }
    for (const bytes of UNDECODABLE) await js.publish(`${c.f.prefix}.out.alert.g.pm.event.start`, bytes, { headers: msgpackHeaders() });
    for (const [kind, payload] of HOSTILE_OUTPUTS) await js.publish(`${c.f.prefix}.out.${kind}.g.pm`, encode(payload), { headers: msgpackHeaders() });
    const registry = await kvm.open(`${c.f.prefix}-registry`);
    for (const [i, bytes] of UNDECODABLE.entries()) await registry.put(`devices.ghost-${i}`, bytes);
    // the snapshot buckets: only an owner writes there, so the garbage goes in while no node runs
    await c.f.nodes[0]!.close();
    for (let shard = 0; shard < SHARDS; shard++) {
      const snap = await kvm.open(`${c.f.prefix}-snap-${shard}`);
      await snap.put("twin.ghost", UNDECODABLE[0]!);
      await snap.put("twin.ghost2", encode({ appliedSeq: "many" }));
      await snap.put("_checkpoint", encode({ seq: 0.5 }));
    }
    await c.node("n2");
    const ops = new OpsClient(nc, c.f.parts.names);
    await waitFor(async () => (await ops.cluster()).shards.every((s) => s.owner === "n2"), { timeoutMs: 30_000, message: "n2 owns every shard" });

    // valid work behind the garbage, on every shard
    for (const device of devices) await post(device, [{ t: T0 + 60_000, pm: 20 }, { t: T0 + 120_000, pm: 80 }]);
    await waitFor(
      async () => {
        for (const device of devices) {
          const r = await c.f.app.inject({ method: "GET", url: `/v1/devices/${device}`, headers: admin });
          if (r.json<{ readings: number }>().readings !== 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, message: "the valid readings applied" },
    );

    // archived: the readings, the alert they raised, each device's snapshot written after the garbage
    await waitFor(async () => (await count("select count(*) as n from readings where device_id = any($1::text[])", [devices])) === 2 * devices.length, {
      timeoutMs: 90_000,
      message: "the valid readings archived behind the garbage",
    });
    await waitFor(async () => (await count("select count(*) as n from outputs where device_id = $1 and kind = 'alert'", [devices[0]])) >= 1, {
      timeoutMs: 60_000,
      message: "the alert archived behind the output garbage",
    });
    await waitFor(async () => (await count("select count(*) as n from snapshots where key = any($1::text[]) and applied_seq > 0", [devices.map((d) => `twin.${d}`)])) === devices.length, {
      timeoutMs: 60_000,
      message: "every shard's snapshots archived behind the snapshot garbage",
    });
    // and nothing is left behind: every source caught up, none stuck retrying a message it cannot take
    await caughtUp(archive, 60_000);

    const metrics = await archive.metrics.registry.metrics();
    expect(metrics).toMatch(/airtwin_archive_errors_total\{source="in\.0",kind="decode"\} [1-9]/);
    expect(metrics).toMatch(/airtwin_archive_errors_total\{source="out",kind="decode"\} [1-9]/);
    expect(metrics).toMatch(/airtwin_archive_errors_total\{source="snap\.0",kind="decode"\} [1-9]/);
    expect(metrics).toMatch(/airtwin_archive_errors_total\{source="in\.0",kind="refused"\} [1-9]/);
    expect(metrics).toMatch(/airtwin_archive_errors_total\{source="out",kind="refused"\} [1-9]/);
    const skipped = archiveLogs.filter((l) => /archive skipped/.test(l.msg));
    expect(new Set(skipped.map((l) => l.fields?.source))).toEqual(new Set(["in.0", "out", ...Array.from({ length: SHARDS }, (_, s) => `snap.${s}`)]));
    expect(skipped.every((l) => l.level === "warn")).toBe(true);
    expect(archiveLogs.filter((l) => l.level === "error")).toEqual([]);
    // each given-up message is kept on the DLQ stream under the archive's subject, with its bytes
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`${c.f.prefix.toUpperCase()}_DLQ`, { subjects_filter: `${c.f.prefix}.dlq.archive.>` });
    const letters = Object.entries(info.state.subjects ?? {});
    expect(letters.map(([subject]) => subject).sort()).toEqual([...skipped.reduce((s, l) => s.add(`${c.f.prefix}.dlq.archive.${String(l.fields?.source)}`), new Set<string>())].sort());
    expect(letters.reduce((n, [, count]) => n + count, 0)).toBe(skipped.length);
  });
});
