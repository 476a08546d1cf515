// What a restore replays on top of the archived snapshots when the input stream they refer to was lost:
// the archived inputs of one input stream after a log position, as the items they came in — a
// message's readings of one device gathered back into one `readings` input (the archived row first,
// then any resent copy of the same time, as the twin met them), commands and erasures as they were
// sent, keyed commands with their idempotency key — in log order (generation, sequence, index).
import type { ReplayInput } from "../../runtime/mod.ts";
import type { Queryable } from "./db/mod.ts";

/** One archived input of a device. */
export interface ArchivedInput extends ReplayInput {
  deviceId: string;
  gen: number;
}

/** A position in an input stream's log: its generation (creation time) and sequence. */
export interface LogPosition {
  gen: number;
  seq: number;
}

const CHANNELS = ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const;

type ReadingRow = { device_id: string; t: number; accepted_at: number; gen: number; seq: number; idx: number } & Record<(typeof CHANNELS)[number], number | null>;

/**
 * The archived inputs of entity type `entityType` in input stream `stream` after `from` and before
 * generation `beforeGen` (the live stream's: its inputs are still there), in log order.
 */
export async function archivedInputs(db: Queryable, stream: number, from: LogPosition, beforeGen: number, entityType: string): Promise<ArchivedInput[]> {
  const after = "stream = $1 and ((gen = $2 and seq > $3) or (gen > $2 and gen < $4))";
  const params = [stream, from.gen, from.seq, beforeGen];
  const readings = await db.query<ReadingRow>(
    `select device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, gen, seq, idx from (
       select device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, gen, seq, idx, 0 as copy from readings where ${after}
       union all
       select device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, gen, seq, idx, 1 as copy from reading_repeats where ${after}
     ) r order by gen, seq, idx, copy`,
    params,
  );
  const commands = await db.query<{ device_id: string; kind: string; payload: unknown; accepted_at: number; gen: number; seq: number; idx: number; idem_key: string | null }>(
    `select device_id, kind, payload, accepted_at, gen, seq, idx, idem_key from commands where ${after} and entity_type = $5 order by gen, seq, idx`,
    [...params, entityType],
  );
  const out: ArchivedInput[] = [];
  let last: ArchivedInput | undefined;
  for (const r of readings.rows) {
    const reading: Record<string, number> = { t: r.t };
    for (const c of CHANNELS) if (r[c] !== null) reading[c] = r[c];
    if (last !== undefined && last.deviceId === r.device_id && last.gen === r.gen && last.seq === r.seq && last.index === r.idx) {
      (last.payload as Record<string, number>[]).push(reading);
      continue;
    }
    last = { deviceId: r.device_id, gen: r.gen, seq: r.seq, index: r.idx, kind: "readings", payload: [reading], acceptedAt: r.accepted_at };
    out.push(last);
  }
  for (const c of commands.rows) {
    out.push({
      deviceId: c.device_id,
      gen: c.gen,
      seq: c.seq,
      index: c.idx,
      kind: c.kind,
      payload: c.payload,
      acceptedAt: c.accepted_at,
      ...(c.idem_key === null ? {} : { idempotencyKey: c.idem_key }),
    });
  }
  return out.sort((a, b) => a.gen - b.gen || a.seq - b.seq || a.index - b.index);
}

/** True when `p` is after `from` in the log. */
export const isAfter = (p: LogPosition, from: LogPosition): boolean => p.gen > from.gen || (p.gen === from.gen && p.seq > from.seq);
