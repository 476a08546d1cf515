// The packed learned state of one twin: one small ArrayBuffer (LEARNED_BYTES, 620) behind a DataView,
// as the statistics are, so it costs a fixed ~790 bytes of heap with the two objects however long the
// twin lives, and a snapshot restores exactly the numbers the models compute with (each is stored at
// the width it is computed at: f32 values are rounded once, on write).
//
//   header (occupancy)  f64 since (NaN: never decided) · f32 co2 baseline (NaN: none) · f32 smoothed
//                       rates of co2 (ppm/min), tmp (°C/h), hum (%/h) · f32 probability · u8 flags
//   channel ×6 (CHANNELS order, CHANNEL_BYTES each)
//     u32 lastS (s, see secondsOf) · f32 last, level, trend (/h), scale (mean |residual|), move (mean
//     |Δ|), slow (deseasonalized level over a day), anchor (over a week), drift scale (mean |slow −
//     anchor|) · u32 stuckSinceS, anomalyS (last anomaly alert) ·
//     u32 mask (bit h: season slot h learned; FORECAST_FIRED, ANOMALY_SENT, OUTLIER, DRIFTING) ·
//     u16 learned minutes (saturating; at most 60 per reading, so a gap does not count; 0: never read) ·
//     i16 ×24 season (deviation from the level per UTC hour, SEASON_SCALE units)

import { CHANNELS } from "../types.ts";
import type { Channel } from "../types.ts";

export const O_SINCE = 0;
export const O_BASELINE = 8;
export const O_CO2_RATE = 12;
export const O_TMP_RATE = 16;
export const O_HUM_RATE = 20;
export const O_PROBABILITY = 24;
export const O_FLAGS = 28;
/** O_FLAGS bits: occupied now; occupancy decided at least once. */
export const OCCUPIED = 1;
export const DECIDED = 2;
const HEADER_BYTES = 32;

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
export const C_MASK = 44;
export const C_LEARNED_MIN = 48;
export const C_SEASON = 50;
export const SEASON_SLOTS = 24;
/** C_MASK bit set while a forecast alert of this channel has fired and its episode has not ended. */
export const FORECAST_FIRED = 1 << 24;
/** C_MASK bit: C_ANOMALY_S holds the time of an anomaly alert. */
export const ANOMALY_SENT = 1 << 25;
/** C_MASK bit: the last reading was an outlier (its residual was clipped). */
export const OUTLIER = 1 << 26;
/** C_MASK bit: a drift was reported and the level has not come back yet. */
export const DRIFTING = 1 << 27;
export const CHANNEL_BYTES = 98;
export const LEARNED_BYTES = HEADER_BYTES + CHANNELS.length * CHANNEL_BYTES;

/** Season resolution: a slot holds round(deviation · scale) as an i16. */
export const SEASON_SCALE: Readonly<Record<Channel, number>> = { pm: 10, co2: 4, voc: 2, tmp: 100, hum: 100, allpollu: 10 };
/** The least residual scale assumed per channel (about the sensor's resolution and noise floor). */
export const SCALE_FLOOR: Readonly<Record<Channel, number>> = { pm: 1, co2: 10, voc: 10, tmp: 0.05, hum: 0.3, allpollu: 1 };

/** {@link SEASON_SCALE} and {@link SCALE_FLOOR} by channel index (CHANNELS order), for the per-reading path. */
export const SEASON_SCALE_AT = Float64Array.from(CHANNELS, (ch) => SEASON_SCALE[ch]);
export const SCALE_FLOOR_AT = Float64Array.from(CHANNELS, (ch) => SCALE_FLOOR[ch]);

/** The learned state: an opaque handle over the packed layout. */
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

export const channelBase = (ci: number): number => HEADER_BYTES + ci * CHANNEL_BYTES;

export const f32 = (v: DataView, at: number): number => v.getFloat32(at, true);
export const setF32 = (v: DataView, at: number, x: number): void => v.setFloat32(at, x, true);
export const u32 = (v: DataView, at: number): number => v.getUint32(at, true);
export const setU32 = (v: DataView, at: number, x: number): void => v.setUint32(at, x, true);

/** A fresh learned state (nothing seen). */
export function createLearned(): LearnedState {
  const v = new DataView(new ArrayBuffer(LEARNED_BYTES));
  clearLearned(v);
  return wrap(v);
}

/** Back to nothing learned. */
export function clearLearned(v: DataView): void {
  new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
  v.setFloat64(O_SINCE, NaN, true);
  setF32(v, O_BASELINE, NaN);
}
