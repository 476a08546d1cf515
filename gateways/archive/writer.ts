// Batched, idempotent writes of what the archive consumes. Each `write*` runs inside the caller's
// transaction and sends a handful of multi-row statements (readings by COPY, reading-copy.ts; the rest
// `INSERT … SELECT FROM unnest(…)`) whatever the batch size; redelivered messages change nothing
// (natural keys, newest-wins guards).
import type { InputBatch } from "../../runtime/mod.ts";
import type { Queryable } from "./db/mod.ts";
import { isMissingPartition, type Partitions } from "./partitions.ts";
import { copyReadings, copyText, LATE, readingField, readingForm, readingRows, readingTime, SUSPECT, type ReadingSpan } from "./reading-copy.ts";

export { CHANNEL_NAMES } from "./reading-copy.ts";

/** One input message, decoded, with its place in the log. */
export interface InputMessage {
  stream: number;
  /** Generation of the stream (its creation time, ms): sequences restart when a stream is recreated. */
  gen: number;
  seq: number;
  batch: InputBatch;
}

/** One output message. */
export interface OutputMessage {
  subject: string;
  payload: unknown;
  storedAt: number;
}

/** One KV entry (snapshot or registry) as its stream delivered it. */
export interface KvMessage {
  key: string;
  gen: number;
  /** The bucket stream's sequence (= the entry's revision). */
  seq: number;
  /** Null for a delete or purge. */
  value: Uint8Array | null;
}

/** What one write did (for metrics and tests). */
export interface WriteCounts {
  readings: number;
  repeats: number;
  commands: number;
  outputs: number;
  rollups: number;
  snapshots: number;
  registry: number;
}

export const noCounts = (): WriteCounts => ({ readings: 0, repeats: 0, commands: 0, outputs: 0, rollups: 0, snapshots: 0, registry: 0 });

const READING_KINDS = new Set(["readings"]);
/** The input after which the twin has forgotten its readings: its next reading is never late (a `reset` keeps the twin's lastT). */
const ERASE_KIND = "$erase";

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/**
 * Readings (and the commands among the inputs). A reading whose (device_id, t) is archived from another
 * log position is a resend: kept in reading_repeats. One older than the device's newest before it is
 * flagged late, as the twin counts it.
 *
 * Flags are decided from the batch and each device's head (newest t and the log position it was
 * written up to). Batches normally come in log order; when one holds a device's messages from before
 * its head — redelivered after an archive process died holding them, or written by another archive
 * process sharing the stream — that device's flags and which copy is the row are put right from the
 * log positions (see {@link reorderDevices}), so the result never depends on the order of writes.
 */
export async function writeInputs(tx: Queryable, partitions: Partitions, batchMessages: readonly InputMessage[]): Promise<WriteCounts> {
  // in log order (redeliveries can arrive mixed with newer messages)
  const messages = [...batchMessages].sort((a, b) => a.gen - b.gen || a.seq - b.seq);
  const counts = noCounts();
  // the readings stay where they are (their message's payload): only each reading's flags and time
  // are kept here; the COPY text is made from them while it is sent (see readingRows)
  const spans: ReadingSpan[] = [];
  const flags: number[] = [];
  let suspects = 0;
  const times: number[] = [];
  const c = { stream: [] as number[], gen: [] as number[], seq: [] as number[], idx: [] as number[], type: [] as string[], device: [] as string[], kind: [] as string[], payload: [] as (string | null)[], at: [] as number[], key: [] as (string | null)[] };
  const devices = new Set<string>();
  for (const m of messages) for (const it of m.batch.items) devices.add(it.entityId);
  if (devices.size === 0) return counts;
  const heads = new Map<string, number | null>();
  /** Devices whose archived log reaches past a message of this batch: written out of order. */
  const reordered = new Set<string>();
  const headAt = new Map<string, { gen: number; seq: number }>();
  /** The newest message of each device in the batch. */
  const lastAt = new Map<string, { gen: number; seq: number }>();
  const { rows } = await tx.query<{ device_id: string; last_t: number; gen: number; seq: number }>("select device_id, last_t, gen, seq from device_heads where device_id = any($1::text[])", [[...devices]]);
  /**
   * Devices erased in this batch: an erase forgets the head, not the archived rows, so their readings
   * after it may collide with archived ones whatever their time. (A device erased in an earlier batch
   * looks like a new one; should one of its readings meet a key kept from before, the COPY fails and
   * the batch takes the idempotent path: see copyReadings.)
   */
  const unbounded = new Set<string>();
  for (const row of rows) {
    heads.set(row.device_id, row.last_t);
    headAt.set(row.device_id, { gen: row.gen, seq: row.seq });
  }
  const erased = new Set<string>();
  for (const m of messages) {
    m.batch.items.forEach((it, i) => {
      const at = headAt.get(it.entityId);
      if (at !== undefined && (m.gen < at.gen || (m.gen === at.gen && m.seq <= at.seq))) reordered.add(it.entityId);
      lastAt.set(it.entityId, m);
      if (READING_KINDS.has(it.kind) && Array.isArray(it.payload)) {
        const payload = it.payload as readonly unknown[];
        const form = readingForm(payload);
        spans.push({ device: copyText(it.entityId), m, item: i, payload, form });
        let head = heads.get(it.entityId) ?? null;
        const bounded = !unbounded.has(it.entityId);
        for (const reading of payload) {
          const t = readingTime(readingField(reading, form, "t"));
          if (t === null) continue;
          times.push(t);
          // newer than everything archived and everything before it in the batch: its key is free
          const suspect = !(bounded && (head === null || t > head));
          flags.push((head !== null && t < head ? LATE : 0) | (suspect ? SUSPECT : 0));
          if (suspect) suspects++;
          if (head === null || t > head) head = t;
        }
        if (head !== null) heads.set(it.entityId, head);
        return;
      }
      if (it.kind === ERASE_KIND) {
        heads.set(it.entityId, null);
        erased.add(it.entityId);
        unbounded.add(it.entityId);
      }
      c.stream.push(m.stream);
      c.gen.push(m.gen);
      c.seq.push(m.seq);
      c.idx.push(i);
      c.type.push(it.type);
      c.device.push(it.entityId);
      c.kind.push(it.kind);
      c.payload.push(it.payload === undefined ? null : JSON.stringify(it.payload));
      c.at.push(m.batch.acceptedAt);
      c.key.push(typeof it.idempotencyKey === "string" ? it.idempotencyKey : null);
    });
  }
  if (times.length > 0) {
    await partitions.ensure(tx, times);
    const written = await copyReadings(tx, (part) => readingRows(spans, flags, part), suspects === 0 ? "none" : suspects === flags.length ? "all" : "some").catch((err: unknown) => {
      if (!isMissingPartition(err)) throw err;
      // not the data's fault (it would be dead-lettered as refused): a month remembered from a
      // transaction that rolled back; the batch is written again, its partitions checked anew
      partitions.forget();
      throw new Error(`a reading partition this archive had created was rolled back; writing the batch again: ${(err as Error).message}`, { cause: err });
    });
    counts.readings = written.readings;
    counts.repeats = written.repeats;
  }
  if (c.seq.length > 0) {
    const done = await tx.query(
      `insert into commands (stream, gen, seq, idx, entity_type, device_id, kind, payload, accepted_at, idem_key)
       select u.stream, u.gen, u.seq, u.idx, u.type, u.device, u.kind, u.payload::jsonb, u.at, u.key
       from unnest($1::int[], $2::int8[], $3::int8[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[]) as u(stream, gen, seq, idx, type, device, kind, payload, at, key)
       on conflict do nothing`,
      [c.stream, c.gen, c.seq, c.idx, c.type, c.device, c.kind, c.payload, c.at, c.key],
    );
    counts.commands = done.rowCount;
  }
  if (reordered.size > 0) await reorderDevices(tx, [...reordered]);
  const head = { device: [] as string[], t: [] as (number | null)[], gen: [] as number[], seq: [] as number[] };
  for (const [d, t] of heads) {
    head.device.push(d);
    head.t.push(t);
    head.gen.push(lastAt.get(d)!.gen);
    head.seq.push(lastAt.get(d)!.seq);
  }
  if (erased.size > 0) await tx.query("delete from device_heads where device_id = any($1::text[])", [[...erased]]);
  await tx.query(
    `insert into device_heads (device_id, last_t, gen, seq) select d, t, g, s from unnest($1::text[], $2::int8[], $3::int8[], $4::int8[]) as u(d, t, g, s) where t is not null
     on conflict (device_id) do update set last_t = greatest(device_heads.last_t, excluded.last_t),
       gen = case when (excluded.gen, excluded.seq) > (device_heads.gen, device_heads.seq) then excluded.gen else device_heads.gen end,
       seq = case when (excluded.gen, excluded.seq) > (device_heads.gen, device_heads.seq) then excluded.seq else device_heads.seq end`,
    [head.device, head.t, head.gen, head.seq],
  );
  return counts;
}

/**
 * Puts right what a write out of log order left for these devices (both statements read the log since
 * the device's last erase, readings and repeats together, ordered by position):
 * 1. the row of each (device_id, t) is its first copy in the log — a copy written before an earlier
 *    one became the row and the earlier one a repeat: they swap places;
 * 2. a row is late when a reading before its first copy in the log is newer — the twin's count.
 */
async function reorderDevices(tx: Queryable, devices: string[]): Promise<void> {
  const values = "pm = f.pm, co2 = f.co2, voc = f.voc, tmp = f.tmp, hum = f.hum, allpollu = f.allpollu, accepted_at = f.accepted_at, stream = f.stream, gen = f.gen, seq = f.seq, idx = f.idx";
  await tx.query(
    `with firsts as (
       select distinct on (p.device_id, p.t) p.* from reading_repeats p join readings r on r.device_id = p.device_id and r.t = p.t
       where p.device_id = any($1::text[]) and (p.gen, p.seq, p.idx) < (r.gen, r.seq, r.idx)
       order by p.device_id, p.t, p.gen, p.seq, p.idx
     ),
     rows_before as (select r.* from readings r join firsts f on r.device_id = f.device_id and r.t = f.t),
     promoted as (update readings r set ${values} from firsts f where r.device_id = f.device_id and r.t = f.t)
     update reading_repeats p set ${values.replaceAll("f.", "o.")}
     from firsts f join rows_before o on o.device_id = f.device_id and o.t = f.t
     where (p.stream, p.gen, p.seq, p.idx) = (f.stream, f.gen, f.seq, f.idx)`,
    [devices],
  );
  await tx.query(
    `with since as (
       select d.device_id, coalesce(e.gen, -1) as gen, coalesce(e.seq, -1) as seq
       from unnest($1::text[]) as d(device_id)
       left join lateral (select gen, seq from commands c where c.device_id = d.device_id and c.kind = '${ERASE_KIND}' order by gen desc, seq desc limit 1) e on true
     ),
     log as (
       select r.device_id, r.t, r.gen, r.seq, r.idx from readings r join since s on r.device_id = s.device_id where (r.gen, r.seq) > (s.gen, s.seq)
       union all
       select p.device_id, p.t, p.gen, p.seq, p.idx from reading_repeats p join since s on p.device_id = s.device_id where (p.gen, p.seq) > (s.gen, s.seq)
     ),
     ordered as (
       select device_id, t, gen, seq, idx, max(t) over (partition by device_id order by gen, seq, idx rows between unbounded preceding and 1 preceding) as newest_before from log
     ),
     firsts as (
       select distinct on (device_id, t) device_id, t, coalesce(newest_before > t, false) as late from ordered order by device_id, t, gen, seq, idx
     )
     update readings r set late = f.late from firsts f where r.device_id = f.device_id and r.t = f.t and r.late <> f.late`,
    [devices],
  );
}

export const ARCHIVED_OUTPUT_KINDS = new Set(["alert", "calibration", "aggregate", "report", "occupancy"]);

/** The event time of an output, by kind. */
function outputAt(kind: string, p: Record<string, unknown>): number {
  return num(p.at) ?? num(p.start) ?? num(p.day) ?? num(p.from) ?? 0;
}

/**
 * Closed aggregates travel batched per shard and commit (`<prefix>.out.aggregates.<shard>`,
 * `{ items: [aggregate, …] }`): each item is archived as the single message it was before
 * (`<prefix>.out.aggregate.<deviceId>`), which old streams still hold.
 */
function* expandBatches(root: string, messages: readonly OutputMessage[]): Generator<OutputMessage> {
  const batched = `${root}aggregates.`;
  for (const m of messages) {
    if (!m.subject.startsWith(batched)) {
      yield m;
      continue;
    }
    const items = (m.payload as { items?: unknown } | null)?.items;
    if (!Array.isArray(items)) continue;
    for (const payload of items) {
      const deviceId = (payload as { deviceId?: unknown } | null)?.deviceId;
      if (typeof deviceId === "string") yield { ...m, subject: `${root}aggregate.${deviceId}`, payload };
    }
  }
}

/** Outputs by id, and the closed aggregates into the rollup tables (upserted). */
export async function writeOutputs(tx: Queryable, prefix: string, messages: readonly OutputMessage[]): Promise<WriteCounts> {
  const counts = noCounts();
  const o = { id: [] as string[], kind: [] as string[], device: [] as string[], at: [] as number[], subject: [] as string[], payload: [] as string[], stored: [] as number[] };
  const roll = { hour: rollupColumns(), day: rollupColumns() };
  const root = `${prefix}.out.`;
  const seen = new Set<string>();
  for (const m of expandBatches(root, messages)) {
    if (!m.subject.startsWith(root)) continue;
    const [kind, deviceFromSubject] = m.subject.slice(root.length).split(".");
    if (kind === undefined || !ARCHIVED_OUTPUT_KINDS.has(kind)) continue;
    const p = (typeof m.payload === "object" && m.payload !== null ? m.payload : {}) as Record<string, unknown>;
    const id = typeof p.id === "string" ? p.id : undefined;
    const deviceId = typeof p.deviceId === "string" ? p.deviceId : deviceFromSubject;
    // a repeat in the same write (a batch published again after a crash) would update its rollup row twice
    if (id === undefined || deviceId === undefined || seen.has(id)) continue;
    seen.add(id);
    o.id.push(id);
    o.kind.push(kind);
    o.device.push(deviceId);
    o.at.push(outputAt(kind, p));
    o.subject.push(m.subject);
    o.payload.push(JSON.stringify(p));
    o.stored.push(m.storedAt);
    if (kind === "aggregate" && (p.resolution === "hour" || p.resolution === "day") && typeof p.channels === "object" && p.channels !== null) {
      const cols = roll[p.resolution];
      for (const [channel, b] of Object.entries(p.channels as Record<string, Record<string, unknown>>)) {
        const start = num(b?.start) ?? num(p.start);
        if (start === null || num(b.count) === null) continue;
        cols.device.push(deviceId);
        cols.channel.push(channel);
        cols.start.push(start);
        cols.count.push(b.count as number);
        cols.mean.push(num(b.mean) ?? 0);
        cols.min.push(num(b.min) ?? 0);
        cols.max.push(num(b.max) ?? 0);
        cols.topMax.push(num(b.topMaxMean));
        cols.topMin.push(num(b.topMinMean));
      }
    }
  }
  if (o.id.length > 0) {
    const r = await tx.query(
      `insert into outputs (id, kind, device_id, at, subject, payload, stored_at)
       select u.id, u.kind, u.device, u.at, u.subject, u.payload::jsonb, u.stored
       from unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[]) as u(id, kind, device, at, subject, payload, stored)
       on conflict (id) do nothing`,
      [o.id, o.kind, o.device, o.at, o.subject, o.payload, o.stored],
    );
    counts.outputs = r.rowCount;
  }
  for (const [resolution, cols] of Object.entries(roll)) {
    if (cols.start.length === 0) continue;
    const r = await tx.query(
      `insert into ${resolution === "hour" ? "rollups_hourly" : "rollups_daily"} (device_id, channel, start, count, mean, min, max, top_max_mean, top_min_mean)
       select * from unnest($1::text[], $2::text[], $3::int8[], $4::int[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[])
       on conflict (device_id, start, channel) do update set count = excluded.count, mean = excluded.mean, min = excluded.min, max = excluded.max,
         top_max_mean = excluded.top_max_mean, top_min_mean = excluded.top_min_mean`,
      [cols.device, cols.channel, cols.start, cols.count, cols.mean, cols.min, cols.max, cols.topMax, cols.topMin],
    );
    counts.rollups += r.rowCount;
  }
  return counts;
}

function rollupColumns() {
  return { device: [] as string[], channel: [] as string[], start: [] as number[], count: [] as number[], mean: [] as number[], min: [] as number[], max: [] as number[], topMax: [] as (number | null)[], topMin: [] as (number | null)[] };
}

/** Registry entries (values are already hashed-credential records), newest revision wins. */
export async function writeRegistry(tx: Queryable, messages: readonly KvMessage[], now: number): Promise<WriteCounts> {
  const counts = noCounts();
  const latest = new Map<string, KvMessage>();
  for (const m of messages) latest.set(m.key, m);
  const e = { key: [] as string[], gen: [] as number[], rev: [] as number[], hex: [] as (string | null)[] };
  for (const m of latest.values()) {
    e.key.push(m.key);
    e.gen.push(m.gen);
    e.rev.push(m.seq);
    e.hex.push(m.value === null ? null : Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength).toString("hex"));
  }
  if (e.key.length === 0) return counts;
  const r = await tx.query(
    `insert into registry (key, gen, revision, value, stored_at)
     select u.key, u.gen, u.rev, decode(u.hex, 'hex'), $5 from unnest($1::text[], $2::int8[], $3::int8[], $4::text[]) as u(key, gen, rev, hex)
     on conflict (key) do update set gen = excluded.gen, revision = excluded.revision, value = excluded.value, stored_at = excluded.stored_at
     where (excluded.gen, excluded.revision) > (registry.gen, registry.revision)`,
    [e.key, e.gen, e.rev, e.hex, now],
  );
  counts.registry = r.rowCount;
  return counts;
}
