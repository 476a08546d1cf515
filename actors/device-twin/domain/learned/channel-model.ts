// Per-channel model: additive Holt-Winters with a daily season kept as 24 hourly slots (UTC hours),
// updated online with time-aware weights (decay.ts). It gives the value the device's own behaviour
// expects now (`expected`), a forecast up to an hour ahead, and the statistics the anomaly detector
// scores against: `scale` (mean |one-step residual|), `move` (mean |Δ| between readings), `slow` and
// `anchor` (the deseasonalized level over a day and over a week) and `driftScale` (their usual gap).
// A lone outlier is clipped to HUBER_K scales, so a spike does not drag the model with it; a second
// one in a row on the same side is a real change and counts in full (otherwise a step change, e.g. a
// window opened, would take hours to learn).

import { HOUR_MS } from "../snapshot.ts";
import { W_ANCHOR, W_LEVEL, W_SCALE, W_SEASON, W_SLOW, W_TREND, weightsFor } from "./decay.ts";
import {
  C_ANCHOR, C_DRIFT_SCALE, C_LAST, C_LAST_S, C_LEVEL, C_MASK, C_MOVE, C_LEARNED_MIN, C_SCALE, C_SEASON, C_SLOW, C_STUCK_SINCE_S, C_TREND,
  channelBase, elapsedS, f32, OUTLIER, SEASON_SLOTS, secondsOf, setF32, setU32, u32,
} from "./layout.ts";

/** Residuals count at most this many scales in an update unless the previous reading was an outlier too. */
export const HUBER_K = 4;
/** The trend's forecast contribution fades with this time constant (hours): a damped trend. */
export const TREND_DAMPING_H = 0.25;

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
  /** The previous reading's value, and whether it was an outlier. */
  previous: number;
  previousOutlier: boolean;
}
const STEP: StepResult = { expected: 0, residual: 0, scale: 0, dtS: 1, previous: 0, previousOutlier: false };

export function seasonAt(v: DataView, b: number, slot: number, seasonScale: number): number {
  return (u32(v, b + C_MASK) & (1 << slot)) !== 0 ? v.getInt16(b + C_SEASON + slot * 2, true) / seasonScale : 0;
}

const clampI16 = (x: number): number => (x > 32767 ? 32767 : x < -32767 ? -32767 : x);
const abs = (x: number): number => (x < 0 ? -x : x);

/**
 * Feeds value `x` at `tS` (layout.ts seconds; `t` ms) to channel `ci`. Returns undefined on the
 * channel's first reading, else the step's prediction and residual (valid until the next call).
 */
export function updateChannel(v: DataView, ci: number, x: number, t: number, tS: number, seasonScale: number, scaleFloor: number): StepResult | undefined {
  const b = channelBase(ci);
  const lastS = u32(v, b + C_LAST_S);
  const slot = Math.floor(t / HOUR_MS) % SEASON_SLOTS;
  const n = v.getUint16(b + C_LEARNED_MIN, true);
  if (n === 0) {
    setU32(v, b + C_LAST_S, tS);
    setF32(v, b + C_LAST, x);
    setF32(v, b + C_LEVEL, x);
    setF32(v, b + C_SLOW, x);
    setF32(v, b + C_ANCHOR, x);
    setU32(v, b + C_STUCK_SINCE_S, tS);
    v.setUint16(b + C_LEARNED_MIN, 1, true);
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
  const previousOutlier = (mask & OUTLIER) !== 0;
  const r = outlier && !previousOutlier ? (residual > 0 ? limit : -limit) : residual;
  const newLevel = prior + (w[W_LEVEL] as number) * r;
  setF32(v, b + C_LEVEL, newLevel);
  setF32(v, b + C_TREND, trend + (w[W_TREND] as number) * ((newLevel - level) / dtH - trend));
  // a slot's first visit starts it at what the level leaves unexplained; later visits move it slowly
  const seasonNew = (mask & (1 << slot)) === 0 ? expected + r - newLevel : season + (w[W_SEASON] as number) * (expected + r - newLevel - season);
  v.setInt16(b + C_SEASON + slot * 2, clampI16(Math.round(seasonNew * seasonScale)), true);
  setU32(v, b + C_MASK, (outlier ? mask | OUTLIER : mask & ~OUTLIER) | (1 << slot));
  const wScale = w[W_SCALE] as number;
  const absR = abs(residual);
  setF32(v, b + C_SCALE, scaleNow + wScale * ((absR < 3 * limit ? absR : 3 * limit) - scaleNow));
  const last = f32(v, b + C_LAST);
  setF32(v, b + C_MOVE, f32(v, b + C_MOVE) + wScale * (abs(x - last) - f32(v, b + C_MOVE)));
  const slow = f32(v, b + C_SLOW) + (w[W_SLOW] as number) * (newLevel - f32(v, b + C_SLOW));
  setF32(v, b + C_SLOW, slow);
  const wAnchor = w[W_ANCHOR] as number;
  const anchor = f32(v, b + C_ANCHOR) + wAnchor * (newLevel - f32(v, b + C_ANCHOR));
  setF32(v, b + C_ANCHOR, anchor);
  setF32(v, b + C_DRIFT_SCALE, f32(v, b + C_DRIFT_SCALE) + wAnchor * (abs(slow - anchor) - f32(v, b + C_DRIFT_SCALE)));
  if (Math.fround(x) !== last) setU32(v, b + C_STUCK_SINCE_S, tS);
  setF32(v, b + C_LAST, x);
  setU32(v, b + C_LAST_S, tS);
  // learned time, not readings: warm-ups mean the same at any cadence
  const minutes = n + Math.min(60, Math.ceil(dtS / 60));
  v.setUint16(b + C_LEARNED_MIN, minutes < 65535 ? minutes : 65535, true);
  STEP.expected = expected;
  STEP.residual = residual;
  STEP.scale = scale;
  STEP.dtS = dtS;
  STEP.previous = last;
  STEP.previousOutlier = previousOutlier;
  return STEP;
}

/** What the model expects for channel `ci` at its last reading (level + season); undefined if never read. */
export function expectedNow(v: DataView, ci: number, lastT: number, seasonScale: number): number | undefined {
  const b = channelBase(ci);
  if (v.getUint16(b + C_LEARNED_MIN, true) === 0) return undefined;
  return f32(v, b + C_LEVEL) + seasonAt(v, b, Math.floor(lastT / HOUR_MS) % SEASON_SLOTS, seasonScale);
}

/**
 * The forecast for channel `ci` at time `t` (ms, after its last reading): the last value plus the
 * damped trend. The season's change between the two hours is left out on purpose: learned from a few
 * weeks it added more error than it removed at 30 minutes (docs/ml.md, forecast sweep). Undefined if
 * never read.
 */
export function forecastChannel(v: DataView, ci: number, t: number): number | undefined {
  const b = channelBase(ci);
  if (v.getUint16(b + C_LEARNED_MIN, true) === 0) return undefined;
  return f32(v, b + C_LAST) + f32(v, b + C_TREND) * dampedHours(elapsedS(secondsOf(t), u32(v, b + C_LAST_S)));
}

// The damped trend's hours for a horizon, memoized: forecasts are asked mostly for the same horizons.
let dampedForS = -1;
let dampedValue = 0;
function dampedHours(horizonS: number): number {
  if (horizonS !== dampedForS) {
    dampedValue = TREND_DAMPING_H * (1 - Math.exp(-horizonS / 3600 / TREND_DAMPING_H));
    dampedForS = horizonS;
  }
  return dampedValue;
}
