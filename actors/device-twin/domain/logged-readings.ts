// The readings payload of a "readings" input in the log (docs/design.md §5.1): what the gateway writes,
// what the twin reads back (and restore replays). Since 2026-12-03 each reading is an array in channel
// order, `[t, pm, co2, voc, tmp, hum, allpollu]` (nil for an absent channel, trailing ones may be left
// out): decoding a MessagePack array is several times cheaper than a map with its keys, and ~100
// readings per request were ~100 maps. The older form, one map per reading (`{ t, pm, … }`), is still in
// the log and the archive, and is read as before.

import { CHANNEL_RANGES, CHANNELS, type Channel, type Reading } from "./types.ts";
import { MAX_READING_T_MS } from "./readings.ts";

/** One reading as logged: `[t, pm, co2, voc, tmp, hum, allpollu]`, null (nil) for an absent channel. */
export type LoggedReading = [t: number, ...channels: Array<number | null>];

/** The readings as the log carries them (validated readings in; the gateway's encoding). */
export function packReadings(readings: readonly Reading[]): LoggedReading[] {
  const out: LoggedReading[] = new Array(readings.length);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    out[i] = [r.t, r.pm ?? null, r.co2 ?? null, r.voc ?? null, r.tmp ?? null, r.hum ?? null, r.allpollu ?? null];
  }
  return out;
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const isChannel = (k: string): k is Channel => (CHANNELS as readonly string[]).includes(k);
const validT = (t: unknown): t is number => typeof t === "number" && Number.isInteger(t) && t >= 0 && t <= MAX_READING_T_MS;
const RANGES = CHANNELS.map((ch) => CHANNEL_RANGES[ch]);

/**
 * The readings of a logged payload, in either form, or why they are not valid ones (a string). The
 * gateway validated what it logged; this guards against any other writer of the log (a bug, a hostile
 * client with NATS access) — a bad value would corrupt the statistics for good. One pass; a payload of
 * arrays becomes readings of one shape (every channel a property, undefined when absent), a payload of
 * maps is returned as it is. The form is the first reading's: an array of arrays, else of maps.
 */
export function readLoggedReadings(x: unknown): Reading[] | string {
  if (!Array.isArray(x)) return "readings must be an array";
  if (x.length === 0 || !Array.isArray(x[0])) {
    const problem = mappedReadingsProblem(x);
    return problem === undefined ? (x as Reading[]) : problem;
  }
  const out: Reading[] = new Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const a: unknown = x[i];
    if (!Array.isArray(a)) return `reading ${i} must be an array`;
    if (a.length > 1 + CHANNELS.length) return `reading ${i} has more than ${1 + CHANNELS.length} fields`;
    const t: unknown = a[0];
    if (!validT(t)) return `reading ${i}: t must be epoch ms`;
    let channels = 0;
    for (let c = 1; c < a.length; c++) {
      const value: unknown = a[c];
      if (value === null || value === undefined) continue;
      const range = RANGES[c - 1]!;
      if (typeof value !== "number" || !(value >= range.min && value <= range.max)) return `reading ${i}: ${CHANNELS[c - 1]} must be a number from ${range.min} to ${range.max}`;
      channels++;
    }
    if (channels === 0) return `reading ${i} carries no channel`;
    out[i] = { t, pm: channel(a[1]), co2: channel(a[2]), voc: channel(a[3]), tmp: channel(a[4]), hum: channel(a[5]), allpollu: channel(a[6]) };
  }
  return out;
}

const channel = (v: unknown): number | undefined => (v === null ? undefined : (v as number | undefined));

/** Why readings taken from the input log are not valid ones, or undefined (either form; see {@link readLoggedReadings}). */
export function loggedReadingsProblem(x: unknown): string | undefined {
  const r = readLoggedReadings(x);
  return typeof r === "string" ? r : undefined;
}

/** The older form: one map per reading, `{ t, pm?, … }`, no other fields. */
function mappedReadingsProblem(x: readonly unknown[]): string | undefined {
  for (let i = 0; i < x.length; i++) {
    const r: unknown = x[i];
    if (!isRecord(r)) return `reading ${i} must be an object`;
    if (!validT(r.t)) return `reading ${i}: t must be epoch ms`;
    let channels = 0;
    for (const key in r) {
      if (key === "t") continue;
      const value = r[key];
      if (value === undefined) continue;
      if (!isChannel(key)) return `reading ${i}: unknown field "${key.slice(0, 32)}"`;
      const range = CHANNEL_RANGES[key];
      if (typeof value !== "number" || !(value >= range.min && value <= range.max)) return `reading ${i}: ${key} must be a number from ${range.min} to ${range.max}`;
      channels++;
    }
    if (channels === 0) return `reading ${i} carries no channel`;
  }
  return undefined;
}
