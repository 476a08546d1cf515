// The twin's learned state (docs/design.md §4 "Learned state"): occupancy, and per channel a seasonal
// model that yields the expected value, a 60-minute forecast, anomaly alerts and forecast alerts.
// Online (one O(1) update per reading), deterministic (event time only), in one fixed-size buffer
// (layout.ts). This file composes the models; each lives in its own file.

import type { Alert, Channel, OccupancyChange, Reading } from "../types.ts";
import { CHANNELS } from "../types.ts";
import { detectAnomaly } from "./anomaly.ts";
import { updateChannel, forecastChannel } from "./channel-model.ts";
import { forecastAlert } from "./forecast-alerts.ts";
import type { RuleContext } from "./forecast-alerts.ts";
import { C_LAST_S, channelBase, clearLearned, DECIDED, f32, O_FLAGS, O_PROBABILITY, O_SINCE, OCCUPIED, SCALE_FLOOR, SEASON_SCALE, setF32, u32, view } from "./layout.ts";
import type { LearnedState } from "./layout.ts";
import { occupancyFeatures } from "./occupancy-features.ts";
import { nextOccupied, occupancyProbability } from "./occupancy-model.ts";

export { createLearned } from "./layout.ts";
export type { LearnedState } from "./layout.ts";
export type { RuleContext } from "./forecast-alerts.ts";

const FEATURES = new Float64Array(8);
const SEASON_SCALES = CHANNELS.map((ch) => SEASON_SCALE[ch]);
const SCALE_FLOORS = CHANNELS.map((ch) => SCALE_FLOOR[ch]);

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
  const tS = Math.floor(t / 1000);
  featuresValid = occupancyFeatures(v, r, tS, FEATURES);
  if (featuresValid) decideOccupancy(v, deviceId, t, FEATURES, occupancy);
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    const ch = CHANNELS[ci] as Channel;
    const x = r[ch];
    if (x === undefined) continue;
    const step = updateChannel(v, ci, x + 0, t, tS, SEASON_SCALES[ci] as number, SCALE_FLOORS[ci] as number);
    if (step === undefined) continue;
    const anomaly = detectAnomaly(v, ci, deviceId, ch, x, t, tS, step);
    if (anomaly !== undefined) alerts.push(anomaly);
    if (rules !== undefined) {
      const f = forecastAlert(v, ci, deviceId, ch, x, t, SEASON_SCALES[ci] as number, rules);
      if (f !== undefined) alerts.push(f);
    }
  }
}

function decideOccupancy(v: DataView, deviceId: string, t: number, features: Float64Array, out: OccupancyChange[]): void {
  const p = occupancyProbability(features);
  setF32(v, O_PROBABILITY, p);
  const flags = v.getUint8(O_FLAGS);
  const was = (flags & OCCUPIED) !== 0;
  const now = nextOccupied(was, p);
  if ((flags & DECIDED) === 0) {
    v.setUint8(O_FLAGS, DECIDED | (now ? OCCUPIED : 0));
    v.setFloat64(O_SINCE, t, true);
    if (!now) return; // a twin starts empty: only a first "occupied" is news
  } else if (now === was) return;
  else {
    v.setUint8(O_FLAGS, DECIDED | (now ? OCCUPIED : 0));
    v.setFloat64(O_SINCE, t, true);
  }
  out.push({ id: `${deviceId}:occupancy:${t}`, deviceId, at: t, occupied: now, probability: Math.round(p * 1000) / 1000 });
}

/** Whether the room is occupied as the twin holds it now (false until a co2 reading decided it). */
export function isOccupied(learned: LearnedState): boolean {
  return (view(learned).getUint8(O_FLAGS) & OCCUPIED) !== 0;
}

/** The view's `occupancy`: undefined until the first co2 reading. */
export function occupancyView(learned: LearnedState): { occupied: boolean; probability: number; since: number } | undefined {
  const v = view(learned);
  const flags = v.getUint8(O_FLAGS);
  if ((flags & DECIDED) === 0) return undefined;
  return { occupied: (flags & OCCUPIED) !== 0, probability: Math.round(f32(v, O_PROBABILITY) * 1000) / 1000, since: v.getFloat64(O_SINCE, true) };
}

/** Forecast horizons of the view (minutes ahead of the channel's last reading). */
export const FORECAST_HORIZONS_MIN = [15, 30, 45, 60] as const;

/** The view's learned part of one channel: `expected` now and the forecast; undefined if never read. */
export function channelLearnedView(learned: LearnedState, ch: Channel): { expected: number; forecast: Array<{ at: number; value: number }> } | undefined {
  const v = view(learned);
  const ci = CHANNELS.indexOf(ch);
  const lastS = u32(v, channelBase(ci) + C_LAST_S);
  if (lastS === 0) return undefined;
  const ss = SEASON_SCALES[ci] as number;
  const lastT = lastS * 1000;
  const round = (x: number): number => Math.round(x * ss) / ss;
  return {
    expected: round(forecastChannel(v, ci, lastT, ss) as number),
    forecast: FORECAST_HORIZONS_MIN.map((m) => ({ at: lastT + m * 60_000, value: round(forecastChannel(v, ci, lastT + m * 60_000, ss) as number) })),
  };
}
