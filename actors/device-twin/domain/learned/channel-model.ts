// Per-channel model: additive Holt-Winters with a daily season kept as 24 hourly slots (UTC hours),
// updated online with time-aware weights (decay.ts). It gives the value the device's own behaviour
// expects now (`expected`), a forecast up to an hour ahead, and the residual statistics the anomaly
// detector scores against: `scale` (mean |one-step residual|), `move` (mean |Δ| between readings) and
// `slow` (the deseasonalized level over days). A lone outlier is clipped to HUBER_K scales, so a spike
// does not drag the model with it; a second one in a row on the same side is a real change and counts
// in full (otherwise a step change, e.g. a window opened, would take hours to learn).

import { HOUR_MS } from "../snapshot.ts";
import { W_ANCHOR, W_LEVEL, W_SCALE, W_SEASON, W_SLOW, W_TREND, weightsFor } from "./decay.ts";
import {
  C_ANCHOR, C_LAST, C_LAST_S, C_LEVEL, C_MASK, C_MOVE, C_N, C_SCALE, C_SEASON, C_SLOW, C_STUCK_SINCE_S, C_TREND,
  channelBase, elapsedS, f32, OUTLIER, secondsOf, SEASON_SLOTS, setF32, setU32, u32,
} from "./layout.ts";

/** Residuals count at most this many scales in an update. */
export const HUBER_K = 4;
/** The trend's forecast contribution fades with this time constant (hours): a damped trend. */
export const TREND_DAMPING_H = 0.5;

/** What one update saw, for the anomaly detector (a shared scratch object). */
export interface StepResult {
  /** The one-step prediction the reading was compared with (level + trend·Δt + season). */
  expected: number;
  /** Reading − expected. */
  residual: number;
  /** The residual scale before this reading, floored. */
  scale: number;
  /** Seconds since the channel's previous reading (≥ 1). */
  dtS: number;
}
const STEP: StepResult = { expected: 0, residual: 0, scale: 0, dtS: 1 };

export function seasonAt(v: DataView, b: number, slot: number, seasonScale: number): number {
  return (u32(v, b + C_MASK) & (1 << slot)) !== 0 ? v.getInt16(b + C_SEASON + slot * 2, true) / seasonScale : 0;
}

const clampI16 = (x: number): number => (x > 32767 ? 32767 : x < -32767 ? -32767 : x);

/**
 * Feeds value `x` at `tS` (whole seconds; `t` ms) to channel `ci`. Returns undefined on the channel's
 * first reading, else the step's prediction and residual (valid until the next call).
 */
export function updateChannel(v: DataView, ci: number, x: number, t: number, tS: number, seasonScale: number, scaleFloor: number): StepResult | undefined {
  const b = channelBase(ci);
  const lastS = u32(v, b + C_LAST_S);
  const slot = Math.floor(t / HOUR_MS) % SEASON_SLOTS;
  const n = v.getUint16(b + C_N, true);
  if (n === 0) {
    setU32(v, b + C_LAST_S, tS);
    setF32(v, b + C_LAST, x);
    setF32(v, b + C_LEVEL, x);
    setF32(v, b + C_SLOW, x);
    setU32(v, b + C_STUCK_SINCE_S, tS);
    v.setUint16(b + C_N, 1, true);
    return undefined;
  }
  const dtS = elapsedS(tS, lastS) || 1;
  const dtH = dtS / 3600;
  const w = weightsFor(dtS);
  const level = f32(v, b + C_LEVEL);
  const trend = f32(v, b + C_TREND);
  const season = seasonAt(v, b, slot, seasonScale);
  const prior = level + trend * dtH;
  const expected = prior + season;
  const residual = x - expected;
  const scaleNow = f32(v, b + C_SCALE);
  const scale = scaleNow > scaleFloor ? scaleNow : scaleFloor;
  const limit = HUBER_K * scale;
  const mask = u32(v, b + C_MASK);
  const outlier = residual > limit || residual < -limit;
  const r = outlier && (mask & OUTLIER) === 0 ? (residual > 0 ? limit : -limit) : residual;
  const newLevel = prior + (w[W_LEVEL] as number) * r;
  setF32(v, b + C_LEVEL, newLevel);
  setF32(v, b + C_TREND, trend + (w[W_TREND] as number) * ((newLevel - level) / dtH - trend));
  // a slot's first visit starts it at what the level leaves unexplained; later visits move it slowly
  const seasonNew = (mask & (1 << slot)) === 0 ? expected + r - newLevel : season + (w[W_SEASON] as number) * (expected + r - newLevel - season);
  v.setInt16(b + C_SEASON + slot * 2, clampI16(Math.round(seasonNew * seasonScale)), true);
  setU32(v, b + C_MASK, (outlier ? mask | OUTLIER : mask & ~OUTLIER) | (1 << slot));
  const absR = residual < 0 ? -residual : residual;
  setF32(v, b + C_SCALE, scaleNow + (w[W_SCALE] as number) * ((absR < 3 * limit ? absR : 3 * limit) - scaleNow));
  const last = f32(v, b + C_LAST);
  const move = f32(v, b + C_MOVE);
  const step = x - last;
  setF32(v, b + C_MOVE, move + (w[W_SCALE] as number) * ((step < 0 ? -step : step) - move));
  const slow = f32(v, b + C_SLOW);
  setF32(v, b + C_SLOW, slow + (w[W_SLOW] as number) * (newLevel - slow));
  const anchor = f32(v, b + C_ANCHOR);
  setF32(v, b + C_ANCHOR, anchor + (w[W_ANCHOR] as number) * (newLevel - anchor));
  if (Math.fround(x) !== last) setU32(v, b + C_STUCK_SINCE_S, tS);
  setF32(v, b + C_LAST, x);
  setU32(v, b + C_LAST_S, tS);
  if (n < 65535) v.setUint16(b + C_N, n + 1, true);
  STEP.expected = expected;
  STEP.residual = residual;
  STEP.scale = scale;
  STEP.dtS = dtS;
  return STEP;
}

/** Value the model expects for channel `ci` at time `t` (ms, not before its last reading); undefined if never read. */
export function forecastChannel(v: DataView, ci: number, t: number, seasonScale: number): number | undefined {
  const b = channelBase(ci);
  if (v.getUint16(b + C_N, true) === 0) return undefined;
  const hH = elapsedS(secondsOf(t), u32(v, b + C_LAST_S)) / 3600;
  const damped = TREND_DAMPING_H * (1 - Math.exp(-hH / TREND_DAMPING_H));
  return f32(v, b + C_LEVEL) + f32(v, b + C_TREND) * damped + seasonAt(v, b, Math.floor(t / HOUR_MS) % SEASON_SLOTS, seasonScale);
}
