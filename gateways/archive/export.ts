// `airtwin archive export`: archived readings with from <= t < to (of one device, or all), as CSV or
// JSON lines, in (device_id, t) order. Pages by keyset (never OFFSET) and waits for the sink before the
// next page, so memory stays constant whatever the range.
import type { Queryable } from "./db/mod.ts";
import { CHANNEL_NAMES } from "./writer.ts";

export type ExportFormat = "csv" | "jsonl";

export interface ExportOptions {
  fromMs: number;
  toMs: number;
  deviceId?: string;
  format: ExportFormat;
  /** Rows per query. Default 5000. */
  pageSize?: number;
  /** Takes each chunk of text; resolves when the sink can take more. */
  write: (chunk: string) => Promise<void>;
}

export const EXPORT_CSV_HEADER = `device_id,t,${CHANNEL_NAMES.join(",")},accepted_at,late\n`;

type Row = { device_id: string; t: number; accepted_at: number; late: boolean } & Record<string, number | null | string | boolean>;

/** Writes the readings; resolves with how many. */
export async function exportReadings(db: Queryable, o: ExportOptions): Promise<number> {
  const pageSize = o.pageSize ?? 5000;
  if (o.format === "csv") await o.write(EXPORT_CSV_HEADER);
  let after: { device: string; t: number } = { device: "", t: -1 };
  let n = 0;
  for (;;) {
    const { rows } = await db.query<Row>(
      `select device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, late from readings
       where t >= $1 and t < $2 and ($3::text is null or device_id = $3) and (device_id, t) > ($4, $5)
       order by device_id, t limit $6`,
      [o.fromMs, o.toMs, o.deviceId ?? null, after.device, after.t, pageSize],
    );
    if (rows.length === 0) return n;
    let chunk = "";
    for (const r of rows) {
      if (o.format === "csv") {
        chunk += `${r.device_id},${r.t},${CHANNEL_NAMES.map((c) => (r[c] === null ? "" : String(r[c]))).join(",")},${r.accepted_at},${r.late}\n`;
      } else {
        const line: Record<string, unknown> = { deviceId: r.device_id, t: r.t };
        for (const c of CHANNEL_NAMES) if (r[c] !== null) line[c] = r[c];
        line.acceptedAt = r.accepted_at;
        if (r.late) line.late = true;
        chunk += `${JSON.stringify(line)}\n`;
      }
    }
    await o.write(chunk);
    n += rows.length;
    const last = rows.at(-1)!;
    after = { device: last.device_id, t: last.t };
    if (rows.length < pageSize) return n;
  }
}
