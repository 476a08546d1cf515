// The occupancy model's features, computed online from co2, tmp and hum as each reading arrives (the
// offline fit in scripts/fit-occupancy.ts replays its training data through this very code, so the
// model sees the same numbers in training and in the twin):
//   excess   co2 above the device's own learned baseline, in 100 ppm (people breathe co2 into a room)
//   co2Rate  smoothed rate of change of co2, ppm/min (rising while people are in, decaying after)
//   tmpRate  smoothed rate of change of tmp, °C/h (bodies and office heating)
//   humRate  smoothed rate of change of hum, %/h (people exhale water vapour)
// The baseline adapts per device: it drops to any lower co2 at once and creeps up with a time constant
// of 12 h (TAU.baselineUp; 12 h, 1, 3 and 4 days were tried, see docs/ml.md), so it sits near the room's recent empty level
// whatever the sensor's offset or the room; a long occupied stretch lifts it, which the rate features
// and the fit account for.

import type { Reading } from "../types.ts";
import { TAU, W_BASELINE_UP, W_RATE, weightsFor } from "./decay.ts";
import { C_LAST, C_LAST_S, C_LEARNED_MIN, channelBase, elapsedS, f32, O_BASELINE, O_CO2_RATE, O_HUM_RATE, O_TMP_RATE, setF32, u32 } from "./layout.ts";

/** Names of the features, in the order of the vector {@link occupancyFeatures} fills. */
export const OCCUPANCY_FEATURES = ["excess", "co2Rate", "tmpRate", "humRate", "excessFalling"] as const;

/** A co2 baseline never starts above this (ppm): a twin first seen in an occupied room must not learn that room as empty. */
export const BASELINE_START_MAX = 450;

const CI_CO2 = 1;
const CI_TMP = 3;
const CI_HUM = 4;

/** A smoothed rate (per `unitS` seconds) at `rateAt` from the channel block's last value; undefined x: untouched. */
function updateRate(v: DataView, ci: number, rateAt: number, x: number, tS: number, unitS: number): void {
  const b = channelBase(ci);
  if (v.getUint16(b + C_LEARNED_MIN, true) === 0) return;
  const dtS = elapsedS(tS, u32(v, b + C_LAST_S)) || 1;
  const w = weightsFor(dtS)[W_RATE] as number;
  const rate = f32(v, rateAt);
  setF32(v, rateAt, rate + w * (((x - f32(v, b + C_LAST)) * unitS) / dtS - rate));
}

/**
 * Updates the occupancy features with a reading (before the channel models take it: the rates need
 * each channel's previous value) and, when it carries co2, writes the feature vector into `out` and
 * returns true. `tS`: the reading's time (layout.ts secondsOf).
 */
export function occupancyFeatures(v: DataView, r: Reading, tS: number, out: Float64Array): boolean {
  if (r.tmp !== undefined) updateRate(v, CI_TMP, O_TMP_RATE, r.tmp, tS, 3600);
  if (r.hum !== undefined) updateRate(v, CI_HUM, O_HUM_RATE, r.hum, tS, 3600);
  const co2 = r.co2;
  if (co2 === undefined) return false;
  updateRate(v, CI_CO2, O_CO2_RATE, co2, tS, 60);
  let base = f32(v, O_BASELINE);
  if (Number.isNaN(base)) base = Math.min(co2, BASELINE_START_MAX);
  else if (co2 < base) base = co2;
  else {
    base += (weightsFor(elapsedS(tS, u32(v, channelBase(CI_CO2) + C_LAST_S)) || 1)[W_BASELINE_UP] as number) * (co2 - base);
  }
  setF32(v, O_BASELINE, base);
  out[0] = (co2 - f32(v, O_BASELINE)) / 100;
  out[1] = f32(v, O_CO2_RATE);
  out[2] = f32(v, O_TMP_RATE);
  out[3] = f32(v, O_HUM_RATE);
  out[4] = out[1] < 0 ? out[0] : 0;
  return true;
}

/** The baseline's rise time constant, for docs and the fit script's report. */
export const BASELINE_UP_TAU_S = TAU.baselineUp;
