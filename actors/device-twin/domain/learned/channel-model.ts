// Per-channel model: additive Holt-Winters with a daily season kept as 24 hourly slots (UTC hours),
// updated online with time-aware weights (decay.ts). It gives the value the device's own behaviour
// expects now (`expected`), a forecast up to an hour ahead, and the statistics the anomaly detector
// scores against: `scale` (mean |one-step residual|), `move` (mean |Δ| between readings), `slow` and
// `anchor` (the deseasonalized level over a day and over a week) and `driftScale` (their usual gap).
// A lone outlier is clipped to HUBER_K scales, so a spike does not drag the model with it; a second
// one in a row on the same side is a real change and counts in full (otherwise a step change, e.g. a
// window opened, would take hours to learn).

import * as snapshot from "../snapshot.ts";
import type { Reading } from "../types.ts";
import { CHANNELS } from "../types.ts";
import * as decay from "./decay.ts";
import * as layout from "./layout.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use (a load, a compare and a branch
// per constant); a module-local const folds to an immediate. (Bit-identical either way.)
const { HOUR_MS } = snapshot;
const { HOURLY_TABLE, HOURLY_WEIGHTS, hourlyWeight, TAU, W_DT_H, W_LEVEL, W_MINUTES, W_RATE, W_SCALE, W_SEASON, W_TREND, weightsFor } = decay;
const { C_ANCHOR, C_DRIFT_SCALE, C_LAST, C_LAST_S, C_LEVEL, C_FLAGS, C_MOVE, C_LEARNED_MIN, C_SCALE, C_SEASON, C_SLOW, C_STUCK_SINCE_S, C_TREND, ANOMALY_SENT, channelBase, DRIFTING, elapsedS, f32, FELL, FELL_BEFORE, FORECAST_FIRED, O_CO2_RATE, O_HUM_RATE, O_TMP_RATE, OUTLIER, ROSE, ROSE_BEFORE, SCALE_FLOOR_AT, SEASON_SCALE_AT, SEASON_SLOTS, secondsOf, setF32, setU32, u32, UNLEARNED } = layout;

/** Residuals count at most this many scales in an update unless the previous reading was an outlier too. */
const HUBER_K = 4;
/** The trend's forecast contribution fades with this time constant (hours): a damped trend. */
export const TREND_DAMPING_H = 0.25;

/** What one update saw, for the anomaly detector and forecast alerts (a shared scratch object). */
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
  /** This reading's value, its time (ms) and its time in layout.ts seconds. */
  value: number;
  t: number;
  tS: number;
  /** The channel's learned minutes and flags (C_FLAGS) after the update, and its new trend (/h, as stored). */
  learnedMin: number;
  flags: number;
  trend: number;
  /** The drift statistics were updated with this reading (its first in a new hour). */
  driftUpdated: boolean;
  /** Seconds the value has been unchanged when this reading left it so and made it 2 h or more (else 0). */
  stuckRunS: number;
}
// Times live here rather than in arguments: a time in seconds is not a small integer, and a double
// passed to a function V8 does not inline is boxed (an allocation per call).
const STEP: StepResult = { expected: 0, residual: 0, scale: 0, dtS: 1, previous: 0, previousOutlier: false, value: 0, t: 0, tS: 0, learnedMin: 0, flags: 0, trend: 0, driftUpdated: false, stuckRunS: 0 };

/** A flat line this long (s) on a moving channel is stuck (anomaly.ts judges the rest). */
const STUCK_MIN_S = 2 * 3600;
/** Learned minutes a channel needs before it may raise anomaly alerts (a day). */
const ANOMALY_WARM_MIN = 1440;

// The flags a reading's update leaves as they are (the others it sets).
const KEPT_FLAGS = FORECAST_FIRED | ANOMALY_SENT | DRIFTING;

// Where each channel's occupancy rate lives (0: none) and its unit (s): co2 ppm/min, tmp °C/h, hum %/h.
const RATE_AT = Float64Array.from(CHANNELS, (ch) => (ch === "co2" ? O_CO2_RATE : ch === "tmp" ? O_TMP_RATE : ch === "hum" ? O_HUM_RATE : 0));
const RATE_UNIT_S = Float64Array.from(CHANNELS, (ch) => (ch === "co2" ? 60 : 3600));

/**
 * Channel `ci`'s value in `r` (which carries it), −0 as 0 so that equal states stay equal bytes. Named
 * loads rather than r[CHANNELS[ci]], whose varying key makes the load megamorphic; the reading is passed
 * down instead of its numbers, which would be boxed at every call that is not inlined.
 */
function channelValue(r: Reading, ci: number): number {
  switch (ci) {
    case 0: return (r.pm as number) + 0;
    case 1: return (r.co2 as number) + 0;
    case 2: return (r.voc as number) + 0;
    case 3: return (r.tmp as number) + 0;
    case 4: return (r.hum as number) + 0;
    default: return (r.allpollu as number) + 0;
  }
}

export function seasonAt(v: DataView, b: number, slot: number, seasonScale: number): number {
  const q = v.getInt16(b + C_SEASON + slot * 2, true);
  return q !== UNLEARNED ? q / seasonScale : 0;
}

const clampI16 = (x: number): number => (x > 32767 ? 32767 : x < -32767 ? -32767 : x);
const abs = (x: number): number => (x < 0 ? -x : x);

// The last slot computed and the hour it holds for ([from, until) in ms): consecutive readings mostly
// fall in the same hour, and the slot's float modulo is the dearest operation of a reading.
const SLOT_HOUR = new Float64Array([0, -1]);
let lastSlot = 0;

/** The season slot (UTC hour) of time `t` (ms). */
export function seasonSlot(t: number): number {
  if (t >= (SLOT_HOUR[0] as number) && t < (SLOT_HOUR[1] as number)) return lastSlot;
  const hour = Math.floor(t / HOUR_MS);
  SLOT_HOUR[0] = hour * HOUR_MS;
  SLOT_HOUR[1] = (hour + 1) * HOUR_MS;
  lastSlot = hour % SEASON_SLOTS;
  return lastSlot;
}

/** Starts a reading at time `t` (ms) for {@link updateChannel}: sets the shared step's `t` and `tS`. */
export function startReading(t: number): void {
  STEP.t = t;
  STEP.tS = secondsOf(t);
}

// updateChannel's answers, module-local: an exported binding is a cell, and the function's own module
// reads it with a TDZ check at each use just as an importer would (so are HUBER_K and the others here:
// not exported for that reason).
const FIRST = -1;
/** updateChannel's answer for a step with nothing for the anomaly detector (`STEP`'s value, previous, trend, flags and learned minutes are set). */
const STEPPED = 0;
const MAY_BE = 1;
/** {@link updateChannel}'s answer: the channel's first reading (nothing to compare with), STEPPED (above)… */
export const FIRST_READING = FIRST;
/** …or one the anomaly detector must see (every field of `STEP` is set). */
export const MAY_BE_ANOMALY = MAY_BE;

/** The shared step of the last {@link updateChannel} (valid until the next call). */
export const step = (): StepResult => STEP;

/**
 * Feeds channel `ci` of reading `r` (which carries it, and was started with {@link startReading}) to
 * the channel's model; `slot` is its {@link seasonSlot}. Returns {@link FIRST_READING}, STEPPED
 * or {@link MAY_BE_ANOMALY}: a reading after an outlier (spike), one that made a flat line
 * {@link STUCK_MIN_S} long (stuck) or one that moved the drift statistics (drift), after a learned day.
 * Every field is read once and written once: this runs for each channel of each reading. The drift
 * statistics (slow level, anchor, their usual gap: time constants of a day and a week) and the mean
 * |Δ| between readings (`move`, which only tells a channel that moves from one that does not) are
 * updated once per hour, at the hour's first reading, with the weight of the whole hours since —
 * per reading they cost a third of the update. co2, tmp and hum also update their occupancy rate
 * (occupancy-features.ts) here, where Δt and the previous value are at hand.
 */
export function updateChannel(v: DataView, ci: number, r: Reading, slot: number): number {
  const x = channelValue(r, ci);
  const tS = STEP.tS;
  const b = channelBase(ci);
  const n = v.getUint16(b + C_LEARNED_MIN, true);
  if (n === 0) {
    setU32(v, b + C_LAST_S, tS);
    setF32(v, b + C_LAST, x);
    setF32(v, b + C_LEVEL, x);
    setF32(v, b + C_SLOW, x);
    setF32(v, b + C_ANCHOR, x);
    setU32(v, b + C_STUCK_SINCE_S, tS);
    v.setUint16(b + C_LEARNED_MIN, 1, true);
    STEP.dtS = elapsedS(tS, 0) || 1;
    return FIRST;
  }
  const seasonScale = SEASON_SCALE_AT[ci] as number;
  const scaleFloor = SCALE_FLOOR_AT[ci] as number;
  const dtS = elapsedS(tS, u32(v, b + C_LAST_S)) || 1;
  const w = weightsFor(dtS);
  const dtH = w[W_DT_H] as number;
  const level = f32(v, b + C_LEVEL);
  const trend = f32(v, b + C_TREND);
  const flags = v.getUint8(b + C_FLAGS);
  const seasonOffset = b + C_SEASON + slot * 2;
  const seasonQ = v.getInt16(seasonOffset, true);
  const slotLearned = seasonQ !== UNLEARNED;
  const season = slotLearned ? seasonQ / seasonScale : 0;
  const prior = level + trend * dtH;
  const expected = prior + season;
  const residual = x - expected;
  const scaleNow = f32(v, b + C_SCALE);
  const scale = scaleNow > scaleFloor ? scaleNow : scaleFloor;
  const limit = HUBER_K * scale;
  const outlier = residual > limit || residual < -limit;
  const previousOutlier = (flags & OUTLIER) !== 0;
  const clipped = outlier && !previousOutlier ? (residual > 0 ? limit : -limit) : residual;
  const newLevel = prior + (w[W_LEVEL] as number) * clipped;
  setF32(v, b + C_LEVEL, newLevel);
  const newTrend = Math.fround(trend + (w[W_TREND] as number) * ((newLevel - level) / dtH - trend));
  setF32(v, b + C_TREND, newTrend);
  // a slot's first visit starts it at what the level leaves unexplained; later visits move it slowly
  const seasonNew = slotLearned ? season + (w[W_SEASON] as number) * (expected + clipped - newLevel - season) : expected + clipped - newLevel;
  v.setInt16(seasonOffset, clampI16(Math.round(seasonNew * seasonScale)), true);
  const last = f32(v, b + C_LAST);
  const xF = Math.fround(x);
  // the direction of the last two moves (forecast alerts want a sustained rise or fall)
  const newFlags = (flags & KEPT_FLAGS) | (outlier ? OUTLIER : 0) | (xF > last ? ROSE : 0) | (xF < last ? FELL : 0) | ((flags & ROSE) !== 0 ? ROSE_BEFORE : 0) | ((flags & FELL) !== 0 ? FELL_BEFORE : 0);
  if (newFlags !== flags) v.setUint8(b + C_FLAGS, newFlags);
  const absR = abs(residual);
  setF32(v, b + C_SCALE, scaleNow + (w[W_SCALE] as number) * ((absR < 3 * limit ? absR : 3 * limit) - scaleNow));
  const rateAt = RATE_AT[ci] as number;
  if (rateAt !== 0) {
    const rate = f32(v, rateAt);
    setF32(v, rateAt, rate + (w[W_RATE] as number) * (((x - last) * (RATE_UNIT_S[ci] as number)) / dtS - rate));
  }
  // the first reading of a new hour (of the u32 clock: UTC hours until 2106) moves the hourly statistics
  const intoHourS = tS % 3600;
  const hourly = dtS > intoHourS;
  if (hourly) {
    // raw DataView calls and table reads: V8 does not inline helpers in a branch this rarely taken
    const hours = Math.floor((dtS - intoHourS - 1) / 3600) + 1;
    let wMove: number;
    let wSlow: number;
    let wAnchor: number;
    if (hours <= HOURLY_TABLE) {
      wMove = HOURLY_WEIGHTS[3 * hours] as number;
      wSlow = HOURLY_WEIGHTS[3 * hours + 1] as number;
      wAnchor = HOURLY_WEIGHTS[3 * hours + 2] as number;
    } else {
      wMove = hourlyWeight(hours, TAU.scale);
      wSlow = hourlyWeight(hours, TAU.slow);
      wAnchor = hourlyWeight(hours, TAU.anchor);
    }
    const move = v.getFloat32(b + C_MOVE, true);
    v.setFloat32(b + C_MOVE, move + wMove * (Math.abs(x - last) - move), true);
    const slowNow = v.getFloat32(b + C_SLOW, true);
    const slow = Math.fround(slowNow + wSlow * (newLevel - slowNow));
    v.setFloat32(b + C_SLOW, slow, true);
    const anchorNow = v.getFloat32(b + C_ANCHOR, true);
    const anchor = Math.fround(anchorNow + wAnchor * (newLevel - anchorNow));
    v.setFloat32(b + C_ANCHOR, anchor, true);
    const driftScale = v.getFloat32(b + C_DRIFT_SCALE, true);
    v.setFloat32(b + C_DRIFT_SCALE, driftScale + wAnchor * (Math.abs(slow - anchor) - driftScale), true);
  }
  let stuckRunS = 0;
  if (xF !== last) setU32(v, b + C_STUCK_SINCE_S, tS);
  else {
    const run = elapsedS(tS, u32(v, b + C_STUCK_SINCE_S));
    if (run >= STUCK_MIN_S && run - dtS < STUCK_MIN_S) stuckRunS = run;
  }
  setF32(v, b + C_LAST, x);
  setU32(v, b + C_LAST_S, tS);
  // learned time, not readings: warm-ups mean the same at any cadence
  const minutes = n + (w[W_MINUTES] as number);
  const learnedMin = minutes < 65535 ? minutes : 65535;
  v.setUint16(b + C_LEARNED_MIN, learnedMin, true);
  STEP.value = x;
  STEP.previous = last;
  STEP.dtS = dtS;
  STEP.learnedMin = learnedMin;
  STEP.flags = newFlags;
  STEP.trend = newTrend;
  if (learnedMin < ANOMALY_WARM_MIN || !(previousOutlier || stuckRunS !== 0 || hourly)) return STEPPED;
  STEP.expected = expected;
  STEP.residual = residual;
  STEP.scale = scale;
  STEP.previousOutlier = previousOutlier;
  STEP.driftUpdated = hourly;
  STEP.stuckRunS = stuckRunS;
  return MAY_BE;
}

/** What the model expects for channel `ci` at its last reading (level + season); undefined if never read. */
export function expectedNow(v: DataView, ci: number, lastT: number, seasonScale: number): number | undefined {
  const b = channelBase(ci);
  if (v.getUint16(b + C_LEARNED_MIN, true) === 0) return undefined;
  return f32(v, b + C_LEVEL) + seasonAt(v, b, seasonSlot(lastT), seasonScale);
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
  return forecastAfter(v, ci, elapsedS(secondsOf(t), u32(v, b + C_LAST_S)));
}

/** The forecast `horizonS` seconds after channel `ci`'s last reading (the channel was read). */
export function forecastAfter(v: DataView, ci: number, horizonS: number): number {
  const b = channelBase(ci);
  return f32(v, b + C_LAST) + f32(v, b + C_TREND) * dampedHours(horizonS);
}

// The damped trend's hours for a horizon, memoized: forecasts are asked mostly for the same horizons.
let dampedForS = -1;
let dampedValue = 0;
export function dampedHours(horizonS: number): number {
  if (horizonS !== dampedForS) {
    dampedValue = TREND_DAMPING_H * (1 - Math.exp(-horizonS / 3600 / TREND_DAMPING_H));
    dampedForS = horizonS;
  }
  return dampedValue;
}
