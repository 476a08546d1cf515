// The twin's learned state (docs/design.md §4.8; the models and their scores: docs/ml.md): occupancy,
// and per channel a seasonal model that yields the expected value, a 60-minute forecast, anomaly alerts
// and forecast alerts.
// Online (one O(1) update per reading), deterministic (event time only), in one fixed-size buffer
// (layout.ts). This file composes the models; each lives in its own file.

import type { Alert, Channel, OccupancyChange, Reading } from "../types.ts";
import { CHANNELS } from "../types.ts";
import * as anomaly from "./anomaly.ts";
import * as channelModel from "./channel-model.ts";
import * as forecastAlerts from "./forecast-alerts.ts";
import type { RuleContext } from "./forecast-alerts.ts";
import * as layout from "./layout.ts";
import type { LearnedState } from "./layout.ts";
import * as occupancyFeaturesModule from "./occupancy-features.ts";
import * as occupancyModel from "./occupancy-model.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use (a load, a compare and a branch
// per constant); a module-local const folds to an immediate. (Bit-identical either way.)
const { detectAnomaly } = anomaly;
const { expectedNow, FIRST_READING, forecastChannel, MAY_BE_ANOMALY, seasonSlot, startReading, step: stepOf, updateChannel } = channelModel;
const { forecastAlert, mayForecast, prepareForecastRules } = forecastAlerts;
const { C_LEARNED_MIN, channelBase, clearLearned, DECIDED, f32, O_BASELINE, O_FLAGS, O_PROBABILITY, O_SCORE, O_SINCE, OCCUPIED, SCORED, SEASON_SCALE_AT, view } = layout;
const { occupancyFeatures, updateBaseline } = occupancyFeaturesModule;
const { decideOccupied, occupancyScore, probabilityOf } = occupancyModel;

export { createLearned, createLearnedIn, LEARNED_BYTES } from "./layout.ts";
export type { LearnedState } from "./layout.ts";
export type { RuleContext } from "./forecast-alerts.ts";

const FEATURES = new Float64Array(8);

let featuresValid = false;

/** Forgets everything learned (the `reset` command). */
export function resetLearned(learned: LearnedState): void {
  clearLearned(view(learned));
}

/** The occupancy features of the last reading applied (for scripts/fit-occupancy.ts); undefined if it had no co2. */
export function lastOccupancyFeatures(): Float64Array | undefined {
  return featuresValid ? FEATURES : undefined;
}

/**
 * Learns from one applied reading (in increasing `t`). Appends an occupancy change to `occupancy`
 * when the state flips, and anomaly / forecast alerts to `alerts`.
 */
export function applyReadingToLearned(
  learned: LearnedState,
  deviceId: string,
  r: Reading,
  rules: RuleContext | undefined,
  alerts: Alert[],
  occupancy: OccupancyChange[],
): void {
  const v = view(learned);
  const t = r.t;
  startReading(t);
  const slot = seasonSlot(t);
  if (rules !== undefined) prepareForecastRules(rules.rules);
  if (r.pm !== undefined) learnChannel(v, 0, r, deviceId, slot, rules, alerts);
  if (r.co2 !== undefined) learnChannel(v, 1, r, deviceId, slot, rules, alerts);
  if (r.voc !== undefined) learnChannel(v, 2, r, deviceId, slot, rules, alerts);
  if (r.tmp !== undefined) learnChannel(v, 3, r, deviceId, slot, rules, alerts);
  if (r.hum !== undefined) learnChannel(v, 4, r, deviceId, slot, rules, alerts);
  if (r.allpollu !== undefined) learnChannel(v, 5, r, deviceId, slot, rules, alerts);
  featuresValid = r.co2 !== undefined;
  if (featuresValid) {
    occupancyFeatures(v, (r.co2 as number) + 0, FEATURES);
    decideOccupancy(v, deviceId, r, FEATURES, occupancy);
  }
}

function learnChannel(v: DataView, ci: number, r: Reading, deviceId: string, slot: number, rules: RuleContext | undefined, alerts: Alert[]): void {
  const code = updateChannel(v, ci, r, slot);
  const step = stepOf();
  // the co2 baseline before co2's anomaly check reads it
  if (ci === 1) updateBaseline(v, r, step.dtS);
  if (code === FIRST_READING) return;
  if (code === MAY_BE_ANOMALY) {
    const anomaly = detectAnomaly(v, ci, deviceId, step);
    if (anomaly !== undefined) alerts.push(anomaly);
  }
  if (rules !== undefined && mayForecast(ci, step)) {
    const f = forecastAlert(v, ci, deviceId, step, rules);
    if (f !== undefined) alerts.push(f);
  }
}

// The score is stored, not its probability: no Math.exp per co2 reading (the probability is computed
// when asked for: a change, the view, a snapshot).
function decideOccupancy(v: DataView, deviceId: string, r: Reading, features: Float64Array, out: OccupancyChange[]): void {
  const flags = v.getUint8(O_FLAGS);
  const was = (flags & OCCUPIED) !== 0;
  const score = occupancyScore(features);
  const now = decideOccupied(was, score);
  v.setFloat64(O_SCORE, score, true);
  const newFlags = DECIDED | SCORED | (now ? OCCUPIED : 0);
  if (newFlags !== flags) v.setUint8(O_FLAGS, newFlags);
  if ((flags & DECIDED) === 0) {
    v.setFloat64(O_SINCE, r.t, true);
    if (!now) return; // a twin starts empty: only a first "occupied" is news
  } else if (now === was) return;
  else v.setFloat64(O_SINCE, r.t, true);
  const t = r.t;
  out.push({ id: `${deviceId}:occupancy:${t}`, deviceId, at: t, occupied: now, probability: Math.round(probabilityOf(score) * 1000) / 1000 });
}

/** The probability of the last occupancy decision as the state holds it (f32, as snapshots store it). */
export function storedProbability(v: DataView): number {
  return (v.getUint8(O_FLAGS) & SCORED) !== 0 ? Math.fround(probabilityOf(v.getFloat64(O_SCORE, true))) : f32(v, O_PROBABILITY);
}

/** True while nothing has been learned (a fresh or reset twin, or one that never had a reading). */
export function isLearnedEmpty(learned: LearnedState): boolean {
  const v = view(learned);
  if (v.getUint8(O_FLAGS) !== 0 || !Number.isNaN(f32(v, O_BASELINE))) return false;
  for (let ci = 0; ci < CHANNELS.length; ci++) if (v.getUint16(channelBase(ci) + C_LEARNED_MIN, true) !== 0) return false;
  return true;
}

/**
 * Whether the room is occupied as the twin (anything holding its learned state) holds it now, i.e.
 * after the last applied reading; false until a co2 reading decided it.
 */
export function isOccupied(state: { readonly learned: LearnedState }): boolean {
  return (view(state.learned).getUint8(O_FLAGS) & OCCUPIED) !== 0;
}

/** The view's `occupancy`: undefined until the first co2 reading. */
export function occupancyView(learned: LearnedState): { occupied: boolean; probability: number; since: number } | undefined {
  const v = view(learned);
  const flags = v.getUint8(O_FLAGS);
  if ((flags & DECIDED) === 0) return undefined;
  return { occupied: (flags & OCCUPIED) !== 0, probability: Math.round(storedProbability(v) * 1000) / 1000, since: v.getFloat64(O_SINCE, true) };
}

/** Forecast horizons of the view (minutes ahead of the channel's last reading). */
export const FORECAST_HORIZONS_MIN = [15, 30, 45, 60] as const;

/**
 * The view's learned part of one channel: `expected` at its last reading (`lastT`, from the statistics)
 * and the forecast after it; undefined if never read.
 */
export function channelLearnedView(learned: LearnedState, ch: Channel, lastT: number): { expected: number; forecast: Array<{ at: number; value: number }> } | undefined {
  const v = view(learned);
  const ci = CHANNELS.indexOf(ch);
  if (v.getUint16(channelBase(ci) + C_LEARNED_MIN, true) === 0) return undefined;
  const ss = SEASON_SCALE_AT[ci] as number;
  const round = (x: number): number => Math.round(x * ss) / ss;
  return {
    expected: round(expectedNow(v, ci, lastT, ss) as number),
    forecast: FORECAST_HORIZONS_MIN.map((m) => ({ at: lastT + m * 60_000, value: round(forecastChannel(v, ci, lastT + m * 60_000) as number) })),
  };
}
