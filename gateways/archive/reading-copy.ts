// Readings into the archive's `readings` table by COPY: rows in COPY's text format made as the COPY
// consumes them, straight into `readings` for keys that are free, through a staging table for keys that
// may be taken (resends, late readings, redeliveries), so the late and duplicate flags stay exact.
import type { Queryable } from "./db/mod.ts";
import type { InputMessage } from "./writer.ts";

export const CHANNEL_NAMES = ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const;

/** Latest `t` a month partition can be named for (readings_pYYYYMM). */
const MAX_PARTITION_T = Date.UTC(10_000, 0, 1) - 1;
/** A reading time the readings table can hold: integer epoch ms of years 0–9999 (the gateway allows far less). */
export const readingTime = (v: unknown): number | null => (Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_PARTITION_T ? (v as number) : null);

export const READING_COLUMNS = ["device_id", "t", ...CHANNEL_NAMES, "accepted_at", "late", "stream", "gen", "seq", "idx"];

/** The readings of one item of one message, and how its device id is written in COPY text. */
export interface ReadingSpan {
  device: string;
  m: InputMessage;
  item: number;
  /** The item's payload as the log holds it: read in place, never converted ({@link ReadingForm}). */
  payload: readonly unknown[];
  form: ReadingForm;
}

/**
 * How a readings payload is laid out: the log's arrays (`[t, pm, co2, voc, tmp, hum, allpollu]`,
 * docs/design.md §5.1) or the older maps (`{ t, pm, … }`). The form is the first reading's; in the
 * array form anything but an array is no reading, in the map form anything without a valid `t` is none
 * (both skipped). Readings are read where they are: a record per reading made to read it cost an
 * allocation per reading.
 */
export type ReadingForm = "arrays" | "maps";

export const readingForm = (payload: readonly unknown[]): ReadingForm => (payload.length > 0 && Array.isArray(payload[0]) ? "arrays" : "maps");

/** Position of each channel in the array form (`t` is at 0). */
const ARRAY_INDEX = { t: 0, pm: 1, co2: 2, voc: 3, tmp: 4, hum: 5, allpollu: 6 } as const;

/** Field `name` of a reading of the given form (undefined when it is no reading of that form). */
export function readingField(r: unknown, form: ReadingForm, name: keyof typeof ARRAY_INDEX): unknown {
  if (form === "arrays") return Array.isArray(r) ? r[ARRAY_INDEX[name]] : undefined;
  return typeof r === "object" && r !== null ? (r as Record<string, unknown>)[name] : undefined;
}

/** A text value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyText(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (ch) => (ch === "\\" ? "\\\\" : ch === "\t" ? "\\t" : ch === "\n" ? "\\n" : "\\r")) : s;
}

/** A channel value in COPY's text format: a finite number, else NULL. */
const cell = (v: unknown): string | number => (typeof v === "number" && Number.isFinite(v) ? v : "\\N");

/** The six channels of an array-form reading in COPY text. */
const arrayChannels = (a: readonly unknown[]): string => `${cell(a[1])}\t${cell(a[2])}\t${cell(a[3])}\t${cell(a[4])}\t${cell(a[5])}\t${cell(a[6])}`;

/** Flags of a reading (first pass): the twin counted it late; its key may already be archived. */
export const LATE = 1;
export const SUSPECT = 2;

/** Which of a batch's readings: all of them, those whose key is free, those whose key may be taken. */
export type ReadingPart = "all" | "free" | "suspect";

/**
 * The readings' rows in COPY's text format ({@link READING_COLUMNS}), a chunk of 2,000 at a time, made
 * as the COPY consumes them: the client builds the next chunk while the server parses the last. Skips
 * what the first pass skipped (a reading without a valid time), so `flags[n]` is the n-th reading's.
 */
export function* readingRows(spans: readonly ReadingSpan[], flags: readonly number[], part: ReadingPart): Generator<string> {
  // one template per row, joined a chunk at a time: appending piece by piece left a rope of ~400k
  // strings per batch whose flattening and collection cost more than the COPY itself
  let rows: string[] = [];
  let n = 0;
  for (const { device, m, item, payload, form } of spans) {
    const place = `\t${m.stream}\t${m.gen}\t${m.seq}\t`;
    const at = m.batch.acceptedAt;
    const arrays = form === "arrays";
    let k = 0;
    for (const r of payload) {
      const t = readingTime(readingField(r, form, "t"));
      if (t === null) continue;
      // index of the reading in the message: item index × 2^16 + position (≤ 1000 readings per item)
      const idx = item * 65_536 + k++;
      const f = flags[n++]!;
      if (part !== "all" && (part === "suspect") !== ((f & SUSPECT) !== 0)) continue;
      const channels = arrays
        ? arrayChannels(r as readonly unknown[])
        : `${cell((r as Record<string, unknown>).pm)}\t${cell((r as Record<string, unknown>).co2)}\t${cell((r as Record<string, unknown>).voc)}\t${cell((r as Record<string, unknown>).tmp)}\t${cell((r as Record<string, unknown>).hum)}\t${cell((r as Record<string, unknown>).allpollu)}`;
      rows.push(`${device}\t${t}\t${channels}\t${at}\t${f & LATE ? "t" : "f"}${place}${idx}\n`);
      if (rows.length === 2000) {
        yield rows.join("");
        rows = [];
      }
    }
  }
  if (rows.length > 0) yield rows.join("");
}

/**
 * Writes the readings `rows(part)` makes (COPY text). The batch's readings are split by the first pass:
 * a reading newer than its device's head — everything archived and everything before it in the batch —
 * has a free key (most of them, when the archive keeps up), any other ("suspect": a resend, a late
 * reading, a redelivery, a reading after an erase) may collide with an archived row.
 *
 * The free ones are COPYed straight into `readings` under a savepoint — COPY is the fastest way in, but
 * has no ON CONFLICT; the suspect ones go through a staging table ({@link stageReadings}). Should the
 * COPY still meet a taken key (rows kept from before an erase; another archive process writing the
 * same messages), it is rolled back to the savepoint and the whole batch is staged. Staging every batch
 * was measured too: about four times slower than the COPY (docs/BENCHMARKS.md).
 */
export async function copyReadings(tx: Queryable, rows: (part: ReadingPart) => Iterable<string>, suspects: "none" | "some" | "all"): Promise<{ readings: number; repeats: number }> {
  if (suspects === "all") return stageReadings(tx, rows("all"));
  await tx.query("savepoint copy_readings");
  let readings: number;
  try {
    readings = await tx.copyFrom("readings", READING_COLUMNS, rows("free"));
  } catch (err) {
    if ((err as { code?: string }).code !== "23505") throw err;
    await tx.query("rollback to savepoint copy_readings");
    return stageReadings(tx, rows("all"));
  }
  await tx.query("release savepoint copy_readings");
  if (suspects === "none") return { readings, repeats: 0 };
  const staged = await stageReadings(tx, rows("suspect"));
  return { readings: readings + staged.readings, repeats: staged.repeats };
}

/**
 * The idempotent way in: the rows are COPYed into a temporary staging table and moved with one
 * `INSERT … SELECT … ON CONFLICT DO NOTHING` in log order (the first copy of a key in the log is the
 * row); the inserted ones leave the staging table in the same statement, and of those left, the copies
 * whose key another log position holds are resends (reading_repeats) — the others were written before
 * (a redelivery). The repeats are looked up one key at a time (a join would read the whole partition).
 */
async function stageReadings(tx: Queryable, rows: Iterable<string>): Promise<{ readings: number; repeats: number }> {
  // dropped at commit; created at most once per transaction unless writeInputs runs twice in one
  await tx.exec("drop table if exists pg_temp.readings_staging; create temp table readings_staging (like readings) on commit drop");
  await tx.copyFrom("readings_staging", READING_COLUMNS, rows);
  const columns = READING_COLUMNS.join(", ");
  const inserted = await tx.query<{ n: number }>(
    `with ins as (
       insert into readings (${columns}) select ${columns} from readings_staging order by gen, seq, idx
       on conflict (device_id, t) do nothing returning stream, gen, seq, idx
     ),
     gone as (delete from readings_staging u using ins where (u.stream, u.gen, u.seq, u.idx) = (ins.stream, ins.gen, ins.seq, ins.idx))
     select count(*)::int as n from ins`,
  );
  const repeatColumns = READING_COLUMNS.filter((col) => col !== "late").join(", ");
  const repeats = await tx.query(
    `insert into reading_repeats (${repeatColumns})
     select ${repeatColumns.replace(/(\w+)/g, "u.$1")} from readings_staging u
     cross join lateral (select r.stream, r.gen, r.seq, r.idx from readings r where r.device_id = u.device_id and r.t = u.t limit 1) r
     where (r.stream, r.gen, r.seq, r.idx) <> (u.stream, u.gen, u.seq, u.idx)
     on conflict do nothing`,
  );
  return { readings: inserted.rows[0]!.n, repeats: repeats.rowCount };
}

/** Output kinds the archive keeps: the token after `<prefix>.out.` (integration copies are not kept). */
