// A seeded fleet posting through the gateway the way real devices do — readings in requests of ten,
// some held back and sent with the next request (late), some requests sent again (a client retrying
// after a lost 202, or much later) — and a model of what the archive and the twins must then hold: the
// gateway sorts each request by t and the twin applies a reading only when it is newer than every one
// before it, so replaying the requests in order says which readings are rows, which are flagged late,
// how many are repeats, and the twin's counters.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Database } from "../../gateways/archive/db/mod.ts";
import { ARCHIVED_OUTPUT_KINDS } from "../../gateways/archive/writer.ts";
import { decode, decodeRecord } from "../../runtime/mod.ts";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import type { GatewayFixture } from "../gateway/fixture.ts";
import { post } from "./fixture.ts";

const MINUTE = 60_000;

export interface FleetReading {
  t: number;
  pm: number;
  co2: number;
  voc: number;
  tmp: number;
  hum: number;
}

export interface FleetDevice {
  deviceId: string;
  /** Request bodies in the order the device sends them (resends included). */
  requests: FleetReading[][];
}

export interface FleetPlan {
  devices: FleetDevice[];
  /** Distinct readings (= rows the archive must hold). */
  readings: number;
  /** Readings posted, resends included. */
  posted: number;
}

export interface FleetOptions {
  devices: number;
  readingsPerDevice: number;
  /** Event time of every device's first reading. */
  t0: number;
  /** Between a device's consecutive readings. Default 12 min. */
  stepMs?: number;
  seed?: number;
  idPrefix?: string;
  /** Chance that a request holds one reading back for the next request (sent late). Default 0.15. */
  holdBack?: number;
  /** Chance that a request is sent twice in a row. Default 0.08. */
  resendNow?: number;
  /** Chance that the request two before is sent again. Default 0.04. */
  resendOld?: number;
}

const round = (x: number, decimals: number) => Math.round(x * 10 ** decimals) / 10 ** decimals;

export function planFleet(o: FleetOptions): FleetPlan {
  const random = rng(o.seed ?? 11);
  const step = o.stepMs ?? 12 * MINUTE;
  const devices: FleetDevice[] = [];
  let posted = 0;
  for (let d = 0; d < o.devices; d++) {
    // one device in five has a pm episode, one in ten a co2 one: alerts with their ends
    const pmSpike = random() < 0.2 ? Math.floor(random() * (o.readingsPerDevice - 10)) : -1;
    const co2Spike = random() < 0.1 ? Math.floor(random() * (o.readingsPerDevice - 10)) : -1;
    const readings: FleetReading[] = [];
    for (let i = 0; i < o.readingsPerDevice; i++) {
      readings.push({
        t: o.t0 + i * step,
        pm: round(i >= pmSpike && i < pmSpike + 5 && pmSpike >= 0 ? 40 + random() * 30 : 4 + random() * 18, 1),
        co2: Math.round(i >= co2Spike && i < co2Spike + 4 && co2Spike >= 0 ? 1500 + random() * 400 : 430 + random() * 600),
        voc: Math.round(100 + random() * 200),
        tmp: round(20 + random() * 3, 2),
        hum: round(35 + random() * 15, 2),
      });
    }
    const requests: FleetReading[][] = [];
    let carried: FleetReading[] = [];
    for (let i = 0; i < readings.length; i += 10) {
      const body = readings.slice(i, i + 10);
      const held = body.length > 1 && random() < (o.holdBack ?? 0.15) ? body.splice(Math.floor(random() * (body.length - 1)), 1) : [];
      requests.push([...body, ...carried]);
      carried = held;
      if (random() < (o.resendNow ?? 0.08)) requests.push(requests.at(-1)!);
      if (requests.length > 2 && random() < (o.resendOld ?? 0.04)) requests.push(requests.at(-3)!);
    }
    if (carried.length > 0) requests.push(carried);
    for (const r of requests) posted += r.length;
    devices.push({ deviceId: `${o.idPrefix ?? "fl"}-${String(d).padStart(4, "0")}`, requests });
  }
  return { devices, readings: o.devices * o.readingsPerDevice, posted };
}

/** What one device's archive rows and twin counters must be after all its requests. */
export interface DeviceExpectation {
  /** t → the reading and whether the archive flags it late. */
  rows: Map<number, { reading: FleetReading; late: boolean }>;
  repeats: number;
  twin: { readings: number; duplicates: number; late: number };
}

export function expectations(device: FleetDevice): DeviceExpectation {
  const rows = new Map<number, { reading: FleetReading; late: boolean }>();
  const twin = { readings: 0, duplicates: 0, late: 0 };
  let repeats = 0;
  let lastT: number | undefined;
  for (const request of device.requests) {
    for (const r of [...request].sort((a, b) => a.t - b.t)) {
      if (rows.has(r.t)) repeats++;
      else rows.set(r.t, { reading: r, late: lastT !== undefined && r.t < lastT });
      if (lastT !== undefined && r.t <= lastT) {
        if (r.t === lastT) twin.duplicates++;
        else twin.late++;
        continue;
      }
      lastT = r.t;
      twin.readings++;
    }
  }
  return { rows, repeats, twin };
}

export type Credentials = Map<string, { deviceId: string; headers: Record<string, string> }>;

/** Creates the fleet's owner and devices through the admin API. */
export async function registerFleet(f: GatewayFixture, plan: FleetPlan, concurrency = 16): Promise<{ owner: { headers: Record<string, string> }; creds: Credentials }> {
  const owner = await f.user("fleet-owner");
  const creds: Credentials = new Map();
  await inParallel(plan.devices, concurrency, async (d) => {
    creds.set(d.deviceId, await f.device(d.deviceId, owner.userId));
  });
  return { owner, creds };
}

/**
 * Posts the devices' requests, `concurrency` at once: each worker takes its share of the devices in
 * turn, one request each, so every device's requests go in its order (each after the previous 202) and
 * the whole fleet advances together. `stop` ends the load early (after the requests on their way);
 * the answer is the plan of what was posted, for {@link expectations}.
 */
export async function postFleet(
  f: GatewayFixture,
  plan: FleetPlan,
  creds: Credentials,
  o: { concurrency?: number; latency?: (ms: number, startedAt: number) => void; stop?: () => boolean; /** Requests a second at most (all workers). */ ratePerS?: number } = {},
): Promise<FleetPlan> {
  const concurrency = Math.min(o.concurrency ?? 24, plan.devices.length);
  // each worker starts a request at most every `spacingMs`: together at most `ratePerS`
  const spacingMs = o.ratePerS === undefined ? 0 : (1000 * concurrency) / o.ratePerS;
  const sent = new Map<string, number>(plan.devices.map((d) => [d.deviceId, 0]));
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      const mine = plan.devices.filter((_d, i) => i % concurrency === w);
      for (let round = 0; mine.some((d) => d.requests.length > round); round++) {
        for (const d of mine) {
          if (o.stop?.()) return;
          const body = d.requests[round];
          if (body === undefined) continue;
          const started = performance.now();
          await post(f, creds.get(d.deviceId)!, body);
          o.latency?.(performance.now() - started, started);
          sent.set(d.deviceId, round + 1);
          const wait = started + spacingMs - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
    }),
  );
  const devices = plan.devices.map((d) => ({ deviceId: d.deviceId, requests: d.requests.slice(0, sent.get(d.deviceId)) }));
  const distinct = devices.reduce((n, d) => n + new Set(d.requests.flat().map((r) => r.t)).size, 0);
  return { devices, readings: distinct, posted: devices.reduce((n, d) => n + d.requests.reduce((m, r) => m + r.length, 0), 0) };
}

export async function inParallel<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Differences between the archive's readings and the plan (empty when every accepted reading is held
 * exactly once, with its values and late flag, and every resend is one repeat).
 */
export async function archiveDifferences(db: Database, plan: FleetPlan, expected: Map<string, DeviceExpectation>): Promise<string[]> {
  const problems: string[] = [];
  const rows = (await db.query<{ device_id: string; t: number; pm: number; co2: number; voc: number; tmp: number; hum: number; late: boolean }>("select device_id, t, pm, co2, voc, tmp, hum, late from readings")).rows;
  const seen = new Map<string, Set<number>>();
  for (const row of rows) {
    const want = expected.get(row.device_id)?.rows.get(row.t);
    const got = seen.get(row.device_id) ?? new Set<number>();
    seen.set(row.device_id, got);
    if (got.has(row.t)) problems.push(`${row.device_id} t=${row.t} archived twice`);
    got.add(row.t);
    if (want === undefined) {
      problems.push(`${row.device_id} t=${row.t} archived but never posted`);
      continue;
    }
    const { reading } = want;
    if (row.pm !== reading.pm || row.co2 !== reading.co2 || row.voc !== reading.voc || row.tmp !== reading.tmp || row.hum !== reading.hum) problems.push(`${row.device_id} t=${row.t} values differ`);
    if (row.late !== want.late) problems.push(`${row.device_id} t=${row.t} late=${row.late}, the twin's order says ${want.late}`);
  }
  for (const d of plan.devices) {
    const missing = [...expected.get(d.deviceId)!.rows.keys()].filter((t) => !seen.get(d.deviceId)?.has(t));
    if (missing.length > 0) problems.push(`${d.deviceId}: ${missing.length} readings not archived`);
  }
  const repeats = new Map(
    (await db.query<{ device_id: string; n: number }>("select device_id, count(*)::int as n from reading_repeats group by device_id")).rows.map((r) => [r.device_id, r.n]),
  );
  for (const d of plan.devices) {
    const want = expected.get(d.deviceId)!.repeats;
    if ((repeats.get(d.deviceId) ?? 0) !== want) problems.push(`${d.deviceId}: ${repeats.get(d.deviceId) ?? 0} repeats archived, ${want} resent`);
  }
  return problems.slice(0, 20);
}

/** Waits until every twin has applied all its readings (its counters are what the requests' order implies); their views. */
export async function twinsApplied(f: GatewayFixture, owner: { headers: Record<string, string> }, expected: Map<string, DeviceExpectation>): Promise<Map<string, TwinView>> {
  const views = new Map<string, TwinView>();
  const pending = new Set(expected.keys());
  await waitFor(
    async () => {
      await inParallel([...pending], 16, async (id) => {
        const view = (await f.app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: owner.headers })).json<TwinView>();
        const want = expected.get(id)!.twin;
        if (view.readings === want.readings && view.duplicates === want.duplicates && view.late === want.late) {
          views.set(id, view);
          pending.delete(id);
        }
      });
      return pending.size === 0;
    },
    { timeoutMs: 300_000, intervalMs: 1000, message: "every twin applied its readings" },
  );
  return views;
}

/** Waits until the output stream has stopped growing and `archived()` says the archive holds all of it. */
export async function outputsSettled(f: GatewayFixture, archived: () => Promise<boolean>): Promise<void> {
  const jsm = await jetstreamManager(f.nc);
  let lastSeq = -1;
  await waitFor(
    async () => {
      if (!(await archived())) return false;
      const seq = (await jsm.streams.info(f.parts.names.outputStream)).state.last_seq;
      const settled = seq === lastSeq;
      lastSeq = seq;
      return settled;
    },
    { timeoutMs: 300_000, intervalMs: 1000, message: "outputs settled and archived" },
  );
}

/**
 * True when the archive has written the input stream up to its end (`inputWritten`: how the caller can
 * tell — the position is in the archive's database, which an embedded archive alone can read) and its
 * durable consumer of the output stream has nothing pending or unacknowledged.
 */
export async function consumersCaughtUp(f: GatewayFixture, inputWritten: () => Promise<boolean>): Promise<boolean> {
  if (!(await inputWritten())) return false;
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.consumers.info(f.parts.names.outputStream, "archive").catch(() => undefined);
  return info !== undefined && info.num_pending + info.num_ack_pending === 0;
}

/** Ids of the archived output kinds the output stream holds now, by kind (each id once). */
export async function outputIdsInStream(f: GatewayFixture): Promise<Map<string, Set<string>>> {
  const stream = f.parts.names.outputStream;
  const jsm = await jetstreamManager(f.nc);
  const last = (await jsm.streams.info(stream)).state.last_seq;
  const byKind = new Map<string, Set<string>>();
  if (last === 0) return byKind;
  const consumer = await jetstream(f.nc).consumers.get(stream); // ordered, ephemeral
  const messages = await consumer.consume({ max_messages: 2000 });
  const root = `${f.prefix}.out.`;
  for await (const m of messages) {
    let kind = m.subject.slice(root.length).split(".")[0]!;
    // closed aggregates travel batched per shard and commit (docs/design.md §5.1)
    const payloads = kind === "aggregates" ? ((decode(m.data) as { items: unknown[] }).items) : [decode(m.data)];
    if (kind === "aggregates") kind = "aggregate";
    if (ARCHIVED_OUTPUT_KINDS.has(kind)) {
      for (const p of payloads) {
        const id = (p as { id?: unknown }).id;
        if (typeof id !== "string") continue;
        const ids = byKind.get(kind) ?? new Set<string>();
        ids.add(id);
        byKind.set(kind, ids);
      }
    }
    if (m.seq >= last) break;
  }
  messages.stop();
  return byKind;
}

/** Differences between the output stream's archived kinds and the archive's outputs table. */
export async function outputDifferences(f: GatewayFixture, db: Database): Promise<{ problems: string[]; perKind: Record<string, number> }> {
  const inStream = await outputIdsInStream(f);
  const rows = (await db.query<{ id: string; kind: string }>("select id, kind from outputs")).rows;
  const archived = new Map<string, Set<string>>();
  const problems: string[] = [];
  for (const r of rows) {
    const ids = archived.get(r.kind) ?? new Set<string>();
    if (ids.has(r.id)) problems.push(`output ${r.id} archived twice`);
    ids.add(r.id);
    archived.set(r.kind, ids);
  }
  const perKind: Record<string, number> = {};
  for (const kind of new Set([...inStream.keys(), ...archived.keys()])) {
    const want = inStream.get(kind) ?? new Set<string>();
    const got = archived.get(kind) ?? new Set<string>();
    perKind[kind] = got.size;
    const missing = [...want].filter((id) => !got.has(id));
    const extra = [...got].filter((id) => !want.has(id));
    if (missing.length > 0) problems.push(`${missing.length} ${kind} outputs not archived, e.g. ${missing[0]}`);
    if (extra.length > 0) problems.push(`${extra.length} ${kind} outputs archived that the stream does not hold, e.g. ${extra[0]}`);
  }
  return { problems, perKind };
}

/**
 * Differences between the shards' snapshot buckets now and what the archive holds of them: each key's
 * record byte for byte at the bucket's revision, with the applied sequence it names, and each shard's
 * checkpoint — what a restore from the archive writes back. Empty when the archive is exact.
 */
export async function snapshotDifferences(f: GatewayFixture, db: Database): Promise<{ problems: string[]; records: number }> {
  const kvm = new Kvm(f.nc);
  const problems: string[] = [];
  let records = 0;
  const archived = new Map((await db.query<{ key: string; shard: number; kv_seq: number; applied_seq: number; record: Uint8Array | null }>("select key, shard, kv_seq, applied_seq, record from snapshots")).rows.map((r) => [r.key, r]));
  const checkpoints = new Map((await db.query<{ shard: number; kv_seq: number; seq: number }>("select shard, kv_seq, seq from checkpoints")).rows.map((r) => [r.shard, r]));
  for (let shard = 0; shard < f.shards; shard++) {
    const kv = await kvm.open(f.parts.names.snapshotBucket(shard));
    for await (const key of await kv.keys()) {
      if (key === "_fence") continue;
      const e = await kv.get(key);
      if (e === null || e.operation !== "PUT") continue;
      if (key === "_checkpoint") {
        const row = checkpoints.get(shard);
        const seq = (decode(e.value) as { seq: number }).seq;
        if (row?.kv_seq !== e.revision || row.seq !== seq) problems.push(`shard ${shard} checkpoint: bucket rev ${e.revision} seq ${seq}, archived ${JSON.stringify(row)}`);
        continue;
      }
      records++;
      const row = archived.get(key);
      if (row === undefined) problems.push(`${key}: not archived`);
      else if (row.shard !== shard || row.kv_seq !== e.revision || row.applied_seq !== decodeRecord(e.value).appliedSeq) problems.push(`${key}: bucket shard ${shard} rev ${e.revision}, archived shard ${row.shard} rev ${row.kv_seq} applied ${row.applied_seq}`);
      else if (row.record === null || Buffer.compare(Buffer.from(row.record), Buffer.from(e.value)) !== 0) problems.push(`${key}: archived record differs (${row.record?.length ?? "null"} bytes, bucket ${e.value.length})`);
    }
  }
  return { problems, records };
}
