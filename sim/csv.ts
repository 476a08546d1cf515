// Replaying real measurements: a CSV file with a header line, columns mapped to channels
// (`co2=CO2,tmp=Temperature,…`) and a time column, read into readings sorted by time. Rows one field
// longer than the header (the UCI Occupancy files' unnamed row id) drop their first field.
import { CHANNELS, validateReadings, type Channel, type Reading } from "../actors/device-twin/domain/mod.ts";
import type { Upload } from "./model/device.ts";
import type { UploadSource } from "./model/fleet.ts";
import { SimError } from "./errors.ts";

/** channel (or `t`) → CSV column name. */
export type CsvMap = Partial<Record<Channel | "t", string>>;

/** Column names understood without `--map` (case-insensitive). */
const KNOWN: Record<string, Channel | "t"> = {
  pm: "pm", pm25: "pm", "pm2.5": "pm", co2: "co2", voc: "voc", tvoc: "voc", tmp: "tmp", temperature: "tmp", temp: "tmp",
  hum: "hum", humidity: "hum", allpollu: "allpollu", t: "t", time: "t", date: "t", timestamp: "t", datetime: "t",
};

/** Parses `co2=CO2,tmp=Temperature`; keys are channels or `t`. */
export function parseCsvMap(spec: string): CsvMap {
  const map: CsvMap = {};
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const key = eq > 0 ? part.slice(0, eq).trim() : "";
    const column = part.slice(eq + 1).trim();
    if (!(key === "t" || (CHANNELS as readonly string[]).includes(key)) || column === "") {
      throw new SimError("OPTIONS_INVALID", `--map: "${part}" is not <channel>=<column> (channels: ${CHANNELS.join(", ")}, or t for the time column)`, { details: { field: "--map", value: part } });
    }
    map[key as Channel | "t"] = column;
  }
  return map;
}

/** Splits one CSV line (double quotes, "" inside quotes). */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((f) => f.trim());
}

/** Epoch ms of a time cell: epoch seconds or ms, or a date (without a zone: UTC). */
function parseTime(cell: string): number {
  if (/^-?\d+(\.\d+)?$/.test(cell)) {
    const n = Number(cell);
    return Math.round(n < 1e11 ? n * 1000 : n);
  }
  const iso = cell.replace(" ", "T");
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
}

/** Reads a CSV text into readings sorted by time; throws AIRTWIN_ERR_SIM_CSV_INVALID naming the bad lines. */
export function readCsvReadings(text: string, mapSpec: CsvMap | undefined, source = "CSV"): Reading[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((l) => l.trim() !== "");
  if (headerIndex < 0) throw new SimError("CSV_INVALID", `${source} is empty`);
  const header = fields(lines[headerIndex]!);
  const lower = header.map((h) => h.toLowerCase());
  const column = (name: string) => lower.indexOf(name.toLowerCase());
  const map: CsvMap = {};
  if (mapSpec === undefined || Object.keys(mapSpec).filter((k) => k !== "t").length === 0) {
    header.forEach((h) => {
      const key = KNOWN[h.toLowerCase()];
      if (key !== undefined && map[key] === undefined) map[key] = h;
    });
  }
  Object.assign(map, mapSpec);
  const timeColumn = map.t ?? header.find((h) => KNOWN[h.toLowerCase()] === "t");
  const problems: string[] = [];
  const missing = Object.entries(map).filter(([, col]) => column(col!) < 0).map(([k, col]) => `${k}=${col}`);
  if (timeColumn === undefined) problems.push(`no time column (name one with --map t=<column>; header: ${header.join(", ")})`);
  if (missing.length > 0) problems.push(`no column for ${missing.join(", ")} (header: ${header.join(", ")})`);
  const channels = (Object.keys(map) as Array<Channel | "t">).filter((k): k is Channel => k !== "t");
  if (channels.length === 0) problems.push(`no channel mapped (use --map co2=<column>,…; header: ${header.join(", ")})`);
  if (problems.length > 0) throw new SimError("CSV_INVALID", `${source}: ${problems.join("; ")}`, { details: { problems } });

  const tIndex = column(timeColumn!);
  const indexOf = channels.map((ch) => [ch, column(map[ch]!)] as const);
  const readings: Reading[] = [];
  const bad: string[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    if (lines[i]!.trim() === "") continue;
    let row = fields(lines[i]!);
    if (row.length === header.length + 1) row = row.slice(1);
    const t = parseTime(row[tIndex] ?? "");
    const reading: Record<string, number> = { t };
    for (const [ch, idx] of indexOf) {
      const cell = row[idx] ?? "";
      if (cell !== "" && cell.toUpperCase() !== "NA") reading[ch] = Number(cell);
    }
    const checked = validateReadings([reading]);
    if (!checked.ok || Object.keys(reading).length < 2) {
      if (bad.length < 5) bad.push(`line ${i + 1}: ${checked.ok ? "no value" : (checked.error.details ?? []).map((d) => `${d.field} ${d.message}`).join(", ")}`);
      else bad.push("");
      continue;
    }
    readings.push(checked.value[0]!);
  }
  if (bad.length > 0) {
    throw new SimError("CSV_INVALID", `${source}: ${bad.length} invalid row(s): ${bad.filter(Boolean).join("; ")}`, { details: { invalidRows: bad.length } });
  }
  return readings.sort((a, b) => a.t - b.t);
}

export interface CsvSourceOptions {
  readings: readonly Reading[];
  deviceIds: readonly string[];
  /** Event time the first reading is moved to (the others keep their spacing); default: times as in the file. */
  startMs?: number;
  /** Paced by event time (`--speed`), or all due at once: a backfill, batched and rate-limited by the sender. */
  paced: boolean;
}

/** Every device replays the same readings. */
export class CsvSource implements UploadSource {
  readonly deviceIds: readonly string[];
  private readonly readings: readonly Reading[];
  private readonly shiftMs: number;
  private readonly paced: boolean;
  private row = 0;
  private device = 0;

  constructor(o: CsvSourceOptions) {
    this.deviceIds = o.deviceIds;
    this.readings = o.readings;
    this.shiftMs = o.startMs === undefined || o.readings.length === 0 ? 0 : o.startMs - o.readings[0]!.t;
    this.paced = o.paced;
  }

  /** Event time of the first and last reading after the shift. */
  get span(): { from: number; to: number } | undefined {
    if (this.readings.length === 0) return undefined;
    return { from: this.readings[0]!.t + this.shiftMs, to: this.readings[this.readings.length - 1]!.t + this.shiftMs };
  }

  peekSendAt(): number | undefined {
    if (this.row >= this.readings.length || this.deviceIds.length === 0) return undefined;
    return this.paced ? this.readings[this.row]!.t + this.shiftMs : Number.NEGATIVE_INFINITY;
  }

  next(): Upload | undefined {
    const sendAt = this.peekSendAt();
    if (sendAt === undefined) return undefined;
    const r = this.readings[this.row]!;
    const upload: Upload = { deviceId: this.deviceIds[this.device]!, sendAt, readings: [{ ...r, t: r.t + this.shiftMs }], kind: this.paced ? "live" : "backfill" };
    if (++this.device >= this.deviceIds.length) {
      this.device = 0;
      this.row++;
    }
    return upload;
  }
}
