// Time-aware exponential smoothing for the learned state: the weight a new observation gets after Δt
// of event time, 1 − exp(−Δt/τ), so models behave the same at a 1-minute (UCI) or 5-minute (Foobot)
// cadence and across gaps. Readings of one twin usually share their Δt, so the weights of every time
// constant are computed once per distinct Δt (a tiny memo, shared and deterministic: a weight depends
// on Δt and τ only).

/** Time constants (seconds) of the learned models; an index into the weights {@link weightsFor} returns. */
export const TAU = {
  /** Smoothed rates of change (co2, tmp, hum) for occupancy. */
  rate: 600,
  /** Level of each channel's Holt-Winters model. */
  level: 600,
  /** Its trend (both chosen by the forecast sweep in docs/ml.md). */
  trend: 1800,
  /** A season slot's level (the slot sees ~1 h of readings a day: ~3 days of memory). */
  season: 3 * 3600,
  /** Residual scale and typical movement (spike and stuck detection). */
  scale: 12 * 3600,
  /** Slow level (drift detection)… */
  slow: 86400,
  /** …and the anchor it is compared with. */
  anchor: 7 * 86400,
  /** The co2 baseline's rise toward higher values (it falls at once). */
  baselineUp: 12 * 3600,
} as const;

const TAUS = Object.values(TAU);
export const W_RATE = 0;
export const W_LEVEL = 1;
export const W_TREND = 2;
export const W_SEASON = 3;
export const W_SCALE = 4;
export const W_SLOW = 5;
export const W_ANCHOR = 6;
export const W_BASELINE_UP = 7;

/** After the weights, {@link weightsFor} holds Δt in hours… */
export const W_DT_H = TAUS.length;
/** …and the minutes Δt adds to a channel's learned time (at most 60: a gap does not count). */
export const W_MINUTES = TAUS.length + 1;

let memoDtS = NaN;
const memo = new Float64Array(TAUS.length + 2);

/**
 * The weights 1 − exp(−Δt/τ) of every τ in {@link TAU} order, then Δt in hours and in learned minutes
 * (a shared array: read it before the next call).
 */
export function weightsFor(dtS: number): Float64Array {
  if (dtS !== memoDtS) {
    for (let i = 0; i < TAUS.length; i++) memo[i] = 1 - Math.exp(-dtS / (TAUS[i] as number));
    memo[W_DT_H] = dtS / 3600;
    memo[W_MINUTES] = Math.min(60, Math.ceil(dtS / 60));
    memoDtS = dtS;
  }
  return memo;
}

/** The hourly statistics (mean |Δ|, slow level, anchor, their usual gap) move once per hour: at most this many hours' weights are tabled. */
const HOURLY_TABLE = 8 * 24;
const SLOW_HOURLY = Float64Array.from({ length: HOURLY_TABLE + 1 }, (_, h) => 1 - Math.exp((-h * 3600) / TAU.slow));
const SCALE_HOURLY = Float64Array.from({ length: HOURLY_TABLE + 1 }, (_, h) => 1 - Math.exp((-h * 3600) / TAU.scale));
const ANCHOR_HOURLY = Float64Array.from({ length: HOURLY_TABLE + 1 }, (_, h) => 1 - Math.exp((-h * 3600) / TAU.anchor));

/** The scale time constant's weight after `hours` whole hours (≥ 1; the hourly mean |Δ|). */
export const scaleWeightHours = (hours: number): number => (hours <= HOURLY_TABLE ? (SCALE_HOURLY[hours] as number) : 1 - Math.exp((-hours * 3600) / TAU.scale));
/** The slow level's weight after `hours` whole hours (≥ 1). */
export const slowWeightHours = (hours: number): number => (hours <= HOURLY_TABLE ? (SLOW_HOURLY[hours] as number) : 1 - Math.exp((-hours * 3600) / TAU.slow));
/** The anchor's (and the drift scale's) weight after `hours` whole hours (≥ 1). */
export const anchorWeightHours = (hours: number): number => (hours <= HOURLY_TABLE ? (ANCHOR_HOURLY[hours] as number) : 1 - Math.exp((-hours * 3600) / TAU.anchor));
