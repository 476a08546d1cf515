// Validation of reading batches (docs/design.md §4/§5): `{ readings: [...] }` and the Foobot datapoints shape.
// A batch is accepted whole or rejected whole with a Problem naming every offending index and field.

import { problem } from "./errors.ts";
import { CHANNELS, CHANNEL_RANGES, type Channel, type Problem, type Reading, type Result } from "./types.ts";

/** Default and usual limit of readings in one request. */
export const MAX_READINGS_PER_REQUEST = 1000;
/** Latest accepted `t`: 2200-01-01T00:00:00Z, in epoch ms. */
export const MAX_READING_T_MS = 7_258_118_400_000;

export interface ReadingsOptions {
  /** Most readings accepted in one batch (default 1000); more → AIRTWIN_ERR_READINGS_TOO_MANY. */
  maxReadings?: number;
}

type Detail = NonNullable<Problem["details"]>[number];

const isChannel = (k: string): k is Channel => (CHANNELS as readonly string[]).includes(k);
const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Validates an array of readings: each an object with an integer `t` (epoch ms, 0 … 2200-01-01) and at
 * least one channel, every channel a finite number within CHANNEL_RANGES, no other fields. Returns
 * copies (channels only, −0 as 0) sorted by `t`, stable; or AIRTWIN_ERR_READING_INVALID with one detail
 * per offending index and field, or AIRTWIN_ERR_READINGS_TOO_MANY.
 */
export function validateReadings(input: unknown, opts: ReadingsOptions = {}): Result<Reading[]> {
  if (!Array.isArray(input)) {
    return { ok: false, error: problem("READING_INVALID", undefined, [{ field: "readings", message: "must be an array" }]) };
  }
  const max = opts.maxReadings ?? MAX_READINGS_PER_REQUEST;
  if (input.length > max) {
    return { ok: false, error: problem("READINGS_TOO_MANY", `${input.length} readings in one request; at most ${max}`, [{ field: "readings", message: `at most ${max} readings` }]) };
  }
  const details: Detail[] = [];
  const out: Reading[] = [];
  input.forEach((x, index) => {
    const r = checkReading(x, index, details);
    if (r) out.push(r);
  });
  if (details.length > 0) {
    const indexes = new Set(details.map((d) => d.index)).size;
    return { ok: false, error: problem("READING_INVALID", `${indexes} of ${input.length} readings are invalid`, details) };
  }
  return { ok: true, value: out.sort((a, b) => a.t - b.t) };
}

function checkReading(x: unknown, index: number, details: Detail[]): Reading | undefined {
  if (!isRecord(x)) {
    details.push({ index, field: "reading", message: "must be an object" });
    return undefined;
  }
  const before = details.length;
  const t = x.t;
  if (t === undefined) details.push({ index, field: "t", message: "is required (epoch ms)" });
  else if (typeof t !== "number") details.push({ index, field: "t", message: `must be a number (epoch ms), got ${typeName(t)}` });
  else if (!Number.isFinite(t)) details.push({ index, field: "t", message: `must be finite, got ${t}` });
  else if (!Number.isInteger(t)) details.push({ index, field: "t", message: `must be an integer (epoch ms), got ${t}` });
  else if (t < 0 || t > MAX_READING_T_MS) details.push({ index, field: "t", message: `must be between 0 and ${MAX_READING_T_MS} (2200-01-01), got ${t}` });
  let channels = 0;
  for (const key of Object.keys(x)) {
    if (key === "t") continue;
    if (!isChannel(key)) {
      details.push({ index, field: key, message: "unknown field" });
      continue;
    }
    const value = x[key];
    if (value === undefined) continue;
    channels++;
    const range = CHANNEL_RANGES[key];
    if (typeof value !== "number") details.push({ index, field: key, message: `must be a number, got ${typeName(value)}` });
    else if (!Number.isFinite(value)) details.push({ index, field: key, message: `must be finite, got ${value}` });
    else if (value < range.min || value > range.max) details.push({ index, field: key, message: `must be between ${range.min} and ${range.max}, got ${value}` });
  }
  if (channels === 0) details.push({ index, field: "reading", message: `must carry at least one channel (${CHANNELS.join(", ")})` });
  if (details.length > before) return undefined;
  const r: Reading = { t: t as number };
  for (const ch of CHANNELS) {
    const value = x[ch];
    if (value !== undefined) r[ch] = (value as number) + 0;
  }
  return r;
}

function typeName(x: unknown): string {
  return x === null ? "null" : Array.isArray(x) ? "array" : typeof x;
}

const FOOBOT_TIME = "time";

/**
 * Converts the Foobot API datapoints shape `{ sensors, units?, datapoints }` (time in SECONDS; sensors
 * in any order, any subset of the channels plus the required "time"; a tmp unit "F" is converted to °C)
 * to readings, then validates them like validateReadings (details name the datapoint index and the
 * sensor, "time" for t). A malformed shape → AIRTWIN_ERR_FOOBOT_SHAPE_INVALID. Other top-level fields
 * Foobot sends (uuid, start, end) are ignored.
 */
export function fromFoobotDatapoints(body: unknown, opts: ReadingsOptions = {}): Result<Reading[]> {
  const shapeError = (details: Detail[]): Result<Reading[]> => ({ ok: false, error: problem("FOOBOT_SHAPE_INVALID", undefined, details) });
  if (!isRecord(body)) return shapeError([{ field: "body", message: "must be an object" }]);
  const { sensors, units, datapoints } = body;
  const details: Detail[] = [];
  if (!Array.isArray(sensors)) {
    details.push({ field: "sensors", message: "must be an array of sensor names" });
  } else {
    sensors.forEach((s, i) => {
      if (typeof s !== "string" || !(s === FOOBOT_TIME || isChannel(s))) details.push({ field: `sensors[${i}]`, message: `unknown sensor ${JSON.stringify(s)}; expected time, ${CHANNELS.join(", ")}` });
      else if (sensors.indexOf(s) !== i) details.push({ field: `sensors[${i}]`, message: `duplicate sensor "${s}"` });
    });
    if (!sensors.includes(FOOBOT_TIME)) details.push({ field: "sensors", message: 'must include "time"' });
  }
  let fahrenheit = false;
  if (units !== undefined) {
    if (!Array.isArray(units) || (Array.isArray(sensors) && units.length !== sensors.length)) {
      details.push({ field: "units", message: "must be an array with one unit per sensor" });
    } else if (Array.isArray(sensors)) {
      const unit = units[sensors.indexOf("tmp")];
      if (unit === "F" || unit === "°F") fahrenheit = true;
      else if (sensors.includes("tmp") && !(unit === "C" || unit === "°C")) details.push({ field: `units[${sensors.indexOf("tmp")}]`, message: 'tmp unit must be "C" or "F"' });
    }
  }
  if (!Array.isArray(datapoints)) {
    details.push({ field: "datapoints", message: "must be an array of arrays" });
  } else if (Array.isArray(sensors)) {
    datapoints.forEach((p, index) => {
      if (!Array.isArray(p) || p.length !== sensors.length) details.push({ index, field: "datapoints", message: `must be an array of ${sensors.length} values` });
    });
  }
  if (details.length > 0) return shapeError(details);
  const names = sensors as string[];
  const points = datapoints as unknown[][];
  const max = opts.maxReadings ?? MAX_READINGS_PER_REQUEST;
  if (points.length > max) {
    return { ok: false, error: problem("READINGS_TOO_MANY", `${points.length} datapoints in one request; at most ${max}`, [{ field: "datapoints", message: `at most ${max} datapoints` }]) };
  }
  const readings = points.map((p) => {
    const r: Record<string, unknown> = {};
    names.forEach((name, i) => {
      const value = p[i];
      if (name === FOOBOT_TIME) r.t = typeof value === "number" ? Math.round(value * 1000) : value;
      else r[name] = name === "tmp" && fahrenheit && typeof value === "number" ? ((value - 32) * 5) / 9 : value;
    });
    return r;
  });
  const result = validateReadings(readings, opts);
  if (result.ok) return result;
  const renamed = result.error.details?.map((d) => (d.field === "t" ? { ...d, field: FOOBOT_TIME } : d));
  return { ok: false, error: { ...result.error, ...(renamed ? { details: renamed } : {}) } };
}

/** Accepts `{ readings: [...] }` or the Foobot datapoints shape (see fromFoobotDatapoints). */
export function parseReadingsBody(body: unknown, opts: ReadingsOptions = {}): Result<Reading[]> {
  if (!isRecord(body)) {
    return { ok: false, error: problem("READING_INVALID", undefined, [{ field: "body", message: "must be an object: { readings } or Foobot { sensors, datapoints }" }]) };
  }
  if (Object.hasOwn(body, "readings")) {
    const extra = Object.keys(body).filter((k) => k !== "readings");
    if (extra.length > 0) return { ok: false, error: problem("READING_INVALID", undefined, extra.map((field) => ({ field, message: "unknown field" }))) };
    return validateReadings(body.readings, opts);
  }
  if (Object.hasOwn(body, "sensors") || Object.hasOwn(body, "datapoints")) return fromFoobotDatapoints(body, opts);
  return { ok: false, error: problem("READING_INVALID", undefined, [{ field: "readings", message: "is required (or the Foobot sensors/datapoints shape)" }]) };
}
