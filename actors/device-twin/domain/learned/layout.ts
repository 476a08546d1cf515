// The packed learned state of one twin: LEARNED_BYTES (603) inside the twin's statistics buffer, right
// after the statistics' STATS_BYTES (stats.ts createStats(LEARNED_BYTES)), reached through the same
// DataView — so the learned state costs its bytes and no object of its own (an ArrayBuffer and a view
// of its own were ~170 B more per twin). A snapshot restores exactly the numbers the models compute with
// (each is stored at the width it is computed at: f32 values are rounded once, on write).
//
//   header (occupancy)  f64 since (NaN: never decided) · f32 co2 baseline (NaN: none) · f32 smoothed
//                       rates of co2 (ppm/min), tmp (°C/h), hum (%/h) · f64 score of the last decision
//                       (flag SCORED), or f32 probability in its first 4 bytes (as a snapshot holds it) · u8 flags
//   channel ×6 (CHANNELS order, CHANNEL_BYTES each)
//     u32 lastS (s, see secondsOf) · f32 last, level, trend (/h), scale (mean |residual|), move (mean
//     |Δ|), slow (deseasonalized level over a day), anchor (over a week), drift scale (mean |slow −
//     anchor|) · u32 stuckSinceS, anomalyS (last anomaly alert) ·
//     u16 learned minutes (saturating; at most 60 per reading, so a gap does not count; 0: never read) ·
//     u8 flags (FORECAST_FIRED, ANOMALY_SENT, OUTLIER, DRIFTING, ROSE, ROSE_BEFORE, FELL, FELL_BEFORE) ·
//     i16 ×24 season (deviation from the level per UTC hour, SEASON_SCALE units; UNLEARNED: not yet)
// Offsets are absolute in the shared DataView. DataView access, not typed arrays: a typed-array view is
// ~75 B of heap per twin, and the budget is ~600 B.

import { STATS_BYTES } from "../stats.ts";
import { createStats } from "../stats.ts";
import type { TwinStats } from "../stats.ts";
import { CHANNELS } from "../types.ts";
import type { Channel } from "../types.ts";

/** Where the learned state starts in the twin's statistics buffer. */
export const LEARNED_AT = STATS_BYTES;
export const O_SINCE = LEARNED_AT + 0;
export const O_BASELINE = LEARNED_AT + 8;
export const O_CO2_RATE = LEARNED_AT + 12;
export const O_TMP_RATE = LEARNED_AT + 16;
export const O_HUM_RATE = LEARNED_AT + 20;
/** The last decision's score (f64; O_FLAGS has SCORED), or its probability (f32) as a snapshot restored it. */
export const O_SCORE = LEARNED_AT + 24;
export const O_PROBABILITY = O_SCORE;
export const O_FLAGS = LEARNED_AT + 32;
/** O_FLAGS bits: occupied now; occupancy decided at least once; O_SCORE holds the score (not a probability). */
export const OCCUPIED = 1;
export const DECIDED = 2;
export const SCORED = 4;
const HEADER_BYTES = 33;

export const C_LAST_S = 0;
export const C_LAST = 4;
export const C_LEVEL = 8;
export const C_TREND = 12;
export const C_SCALE = 16;
export const C_MOVE = 20;
export const C_SLOW = 24;
export const C_ANCHOR = 28;
export const C_DRIFT_SCALE = 32;
export const C_STUCK_SINCE_S = 36;
export const C_ANOMALY_S = 40;
export const C_LEARNED_MIN = 44;
export const C_FLAGS = 46;
export const C_SEASON = 47;
export const SEASON_SLOTS = 24;
/** A season slot holding this has not been visited yet (learned values are clamped to ±32767). */
export const UNLEARNED = -32768;
/** C_FLAGS bit set while a forecast alert of this channel has fired and its episode has not ended. */
export const FORECAST_FIRED = 1;
/** C_FLAGS bit: C_ANOMALY_S holds the time of an anomaly alert. */
export const ANOMALY_SENT = 2;
/** C_FLAGS bit: the last reading was an outlier (its residual was clipped). */
export const OUTLIER = 4;
/** C_FLAGS bit: a drift was reported and the level has not come back yet. */
export const DRIFTING = 8;
/** C_FLAGS bits: the last reading was above (ROSE) / below (FELL) the one before it; *_BEFORE: the same of the reading before (forecast alerts fire on a sustained move). */
export const ROSE = 16;
export const ROSE_BEFORE = 32;
export const FELL = 64;
export const FELL_BEFORE = 128;
// module-local (an exported binding is read through its cell, with a TDZ check, even in its own module)
const CHANNEL_STRIDE = 95;
export const CHANNEL_BYTES = CHANNEL_STRIDE;
export const LEARNED_BYTES = HEADER_BYTES + CHANNELS.length * CHANNEL_BYTES;

/** Season resolution: a slot holds round(deviation · scale) as an i16. */
export const SEASON_SCALE: Readonly<Record<Channel, number>> = { pm: 10, co2: 4, voc: 2, tmp: 100, hum: 100, allpollu: 10 };
/** The least residual scale assumed per channel (about the sensor's resolution and noise floor). */
export const SCALE_FLOOR: Readonly<Record<Channel, number>> = { pm: 1, co2: 10, voc: 10, tmp: 0.05, hum: 0.3, allpollu: 1 };

/** {@link SEASON_SCALE} and {@link SCALE_FLOOR} by channel index (CHANNELS order), for the per-reading path. */
export const SEASON_SCALE_AT = Float64Array.from(CHANNELS, (ch) => SEASON_SCALE[ch]);
export const SCALE_FLOOR_AT = Float64Array.from(CHANNELS, (ch) => SCALE_FLOOR[ch]);

/** The learned state: an opaque handle over the packed layout (the twin's statistics' DataView). */
export interface LearnedState {
  readonly __learned: unique symbol;
}
export const view = (s: LearnedState): DataView => s as unknown as DataView;
export const wrap = (v: DataView): LearnedState => v as unknown as LearnedState;

/**
 * Times are whole seconds modulo 2^32 (u32; readings span 1970–2200, more than a u32 of seconds) and
 * only ever subtracted: {@link elapsedS} is right for any two times less than 136 years apart. Whether
 * a channel was ever read is C_LEARNED_MIN ≠ 0, not a time.
 */
export const secondsOf = (t: number): number => Math.floor(t / 1000) >>> 0;
export const elapsedS = (later: number, earlier: number): number => (later - earlier) >>> 0;

const FIRST_CHANNEL_AT = STATS_BYTES + HEADER_BYTES;
export const channelBase = (ci: number): number => FIRST_CHANNEL_AT + ci * CHANNEL_STRIDE;

export const f32 = (v: DataView, at: number): number => v.getFloat32(at, true);
export const setF32 = (v: DataView, at: number, x: number): void => v.setFloat32(at, x, true);
export const u32 = (v: DataView, at: number): number => v.getUint32(at, true);
export const setU32 = (v: DataView, at: number, x: number): void => v.setUint32(at, x, true);

/** A fresh learned state inside `stats`, which must have been created with room for it (createStats(LEARNED_BYTES)). */
export function createLearnedIn(stats: TwinStats): LearnedState {
  const v = stats as unknown as DataView;
  if (v.byteLength < LEARNED_AT + LEARNED_BYTES) throw new RangeError("the statistics have no room for the learned state");
  clearLearned(v);
  return wrap(v);
}

/** A fresh learned state on its own (scripts, benches, tests: statistics created for it and unused). */
export function createLearned(): LearnedState {
  return createLearnedIn(createStats(LEARNED_BYTES));
}

/** Back to nothing learned. */
export function clearLearned(v: DataView): void {
  new Uint8Array(v.buffer, v.byteOffset + LEARNED_AT, LEARNED_BYTES).fill(0);
  v.setFloat64(O_SINCE, NaN, true);
  setF32(v, O_BASELINE, NaN);
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    const at = channelBase(ci) + C_SEASON;
    for (let s = 0; s < SEASON_SLOTS; s++) v.setInt16(at + s * 2, UNLEARNED, true);
  }
}
