// What the archive answers about history: raw readings, rollups and outputs of one device in a time
// range, oldest first, in pages (each answer says where the next page starts). Pure SQL over the
// archive's tables; the NATS service (query-service.ts) and `airtwin archive export` call these.
import type { AggregateBucket, Reading } from "../../actors/device-twin/domain/mod.ts";
import type { Queryable } from "./db/mod.ts";
import { CHANNEL_NAMES } from "./writer.ts";

/** One archived reading as the API shows it; `late` only when the twin counted it late. */
export interface ArchivedReading extends Reading {
  acceptedAt: number;
  late?: true;
  /** Resends of this (device, t) from other requests (the twin counted them as duplicates). */
  repeats?: number;
}

export interface ReadingsQuery {
  deviceId: string;
  fromMs: number;
  toMs: number;
  limit: number;
  /** Continue after this `t` (the previous page's last). */
  afterT?: number;
}

/** Readings with from <= t < to (and t > afterT), oldest first; `more` when the page was cut by `limit`. */
export async function queryReadings(db: Queryable, q: ReadingsQuery): Promise<{ readings: ArchivedReading[]; more: boolean }> {
  const from = q.afterT === undefined ? q.fromMs : Math.max(q.fromMs, q.afterT + 1);
  const { rows } = await db.query<Record<string, number | boolean | null> & { t: number; accepted_at: number; late: boolean; repeats: number }>(
    `select r.t, r.pm, r.co2, r.voc, r.tmp, r.hum, r.allpollu, r.accepted_at, r.late,
       (select count(*)::int from reading_repeats x where x.device_id = r.device_id and x.t = r.t) as repeats
     from readings r where r.device_id = $1 and r.t >= $2 and r.t < $3 order by r.t limit $4`,
    [q.deviceId, from, q.toMs, q.limit + 1],
  );
  const readings = rows.slice(0, q.limit).map((row) => {
    const r: ArchivedReading = { t: row.t, acceptedAt: row.accepted_at };
    for (const ch of CHANNEL_NAMES) {
      const v = row[ch];
      if (typeof v === "number") r[ch] = v;
    }
    if (row.late) r.late = true;
    if (row.repeats > 0) r.repeats = row.repeats;
    return r;
  });
  return { readings, more: rows.length > q.limit };
}

/** One rollup bucket of one channel. */
export interface RollupBucket extends AggregateBucket {
  channel: string;
}

export interface RollupsQuery {
  deviceId: string;
  resolution: "hour" | "day";
  fromMs: number;
  toMs: number;
  /** Most bucket starts per page (all channels of a start come together). */
  limit: number;
  afterStart?: number;
}

/** Buckets with from <= start < to, by start then channel; at most `limit` distinct starts. */
export async function queryRollups(db: Queryable, q: RollupsQuery): Promise<{ buckets: RollupBucket[]; more: boolean }> {
  const table = q.resolution === "day" ? "rollups_daily" : "rollups_hourly";
  const from = q.afterStart === undefined ? q.fromMs : Math.max(q.fromMs, q.afterStart + 1);
  const { rows } = await db.query<{ channel: string; start: number; count: number; mean: number; min: number; max: number; top_max_mean: number | null; top_min_mean: number | null }>(
    `with starts as (select distinct start from ${table} where device_id = $1 and start >= $2 and start < $3 order by start limit $4)
     select r.channel, r.start, r.count, r.mean, r.min, r.max, r.top_max_mean, r.top_min_mean
     from ${table} r join starts s on s.start = r.start where r.device_id = $1 order by r.start, r.channel`,
    [q.deviceId, from, q.toMs, q.limit + 1],
  );
  const starts = [...new Set(rows.map((r) => r.start))];
  const more = starts.length > q.limit;
  const last = more ? starts[q.limit - 1]! : Number.POSITIVE_INFINITY;
  const buckets = rows
    .filter((r) => r.start <= last)
    .map((r) => {
      const b: RollupBucket = { channel: r.channel, start: r.start, count: r.count, mean: r.mean, min: r.min, max: r.max };
      if (r.top_max_mean !== null) b.topMaxMean = r.top_max_mean;
      if (r.top_min_mean !== null) b.topMinMean = r.top_min_mean;
      return b;
    });
  return { buckets, more };
}

export interface OutputsQuery {
  deviceId: string;
  /** Output kinds ("alert", "report", …). */
  kinds: readonly string[];
  fromMs: number;
  toMs: number;
  limit: number;
  /** Continue after this (at, id). */
  after?: { at: number; id: string };
  /** Only outputs stored at or after this wall-clock time (ms): a device id registered again sees none of an earlier device's. */
  storedSinceMs?: number;
  /** Only outputs whose payload `kind` is one of these (e.g. "report.day"). */
  payloadKinds?: readonly string[];
}

/** Outputs (their payloads) with from <= at < to, ordered by (at, id). */
export async function queryOutputs(db: Queryable, q: OutputsQuery): Promise<{ outputs: Record<string, unknown>[]; more: boolean }> {
  const after = q.after ?? { at: -1, id: "" };
  const { rows } = await db.query<{ payload: Record<string, unknown> | string }>(
    `select payload from outputs where device_id = $1 and kind = any($2::text[]) and at >= $3 and at < $4 and (at, id) > ($5, $6)
       and stored_at >= $8 and ($9::text[] is null or payload->>'kind' = any($9::text[]))
     order by at, id limit $7`,
    [q.deviceId, q.kinds, q.fromMs, q.toMs, after.at, after.id, q.limit + 1, q.storedSinceMs ?? 0, q.payloadKinds ?? null],
  );
  const outputs = rows.slice(0, q.limit).map((r) => (typeof r.payload === "string" ? (JSON.parse(r.payload) as Record<string, unknown>) : r.payload));
  return { outputs, more: rows.length > q.limit };
}
