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

/** The hourly statistics (mean |Δ|, slow level, anchor, their usual gap) move once per hour: weights tabled up to this many hours. */
export const HOURLY_TABLE = 8 * 24;
/**
 * Per whole hours h (0…HOURLY_TABLE) since the statistics last moved, at [3h, 3h + 2]: the weights of
 * τ scale (mean |Δ|), τ slow and τ anchor (also the drift scale's). Read inline by the channel update
 * (helpers in its rarely taken hourly branch are not inlined by V8, and their numbers would be boxed).
 */
export const HOURLY_WEIGHTS = Float64Array.from({ length: 3 * (HOURLY_TABLE + 1) }, (_, i) => hourlyWeight(Math.floor(i / 3), [TAU.scale, TAU.slow, TAU.anchor][i % 3] as number));

/** The weight 1 − exp(−h·3600/τ) of `hours` whole hours for time constant `tauS`. */
export function hourlyWeight(hours: number, tauS: number): number {
  return 1 - Math.exp((-hours * 3600) / tauS);
}
