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
import * as decay from "./decay.ts";
import * as layout from "./layout.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use (a load, a compare and a branch
// per constant); a module-local const folds to an immediate. (Bit-identical either way.)
const { TAU, W_BASELINE_UP, weightsFor } = decay;
const { f32, O_BASELINE, O_CO2_RATE, O_HUM_RATE, O_TMP_RATE, setF32 } = layout;

/** Names of the features, in the order of the vector {@link occupancyFeatures} fills. */
export const OCCUPANCY_FEATURES = ["excess", "co2Rate", "tmpRate", "humRate", "excessFalling"] as const;

/** A co2 baseline never starts above this (ppm): a twin first seen in an occupied room must not learn that room as empty. */
export const BASELINE_START_MAX = 450;

/**
 * Updates the co2 baseline with the co2 of `r` (which carries it), `dtS` after the channel's previous
 * reading. The three rates are updated with each channel's model (channel-model.ts updateChannel),
 * where Δt and the previous value are at hand.
 */
export function updateBaseline(v: DataView, r: Reading, dtS: number): void {
  const x = (r.co2 as number) + 0;
  let base = f32(v, O_BASELINE);
  if (Number.isNaN(base)) base = Math.min(x, BASELINE_START_MAX);
  else if (x < base) base = x;
  else base += (weightsFor(dtS)[W_BASELINE_UP] as number) * (x - base);
  setF32(v, O_BASELINE, base);
}

/**
 * The feature vector of a reading carrying `co2`, into `out`, after its channels and the baseline
 * took it.
 */
export function occupancyFeatures(v: DataView, co2: number, out: Float64Array): void {
  out[0] = (co2 - f32(v, O_BASELINE)) / 100;
  out[1] = f32(v, O_CO2_RATE);
  out[2] = f32(v, O_TMP_RATE);
  out[3] = f32(v, O_HUM_RATE);
  out[4] = out[1] < 0 ? out[0] : 0;
}

/** The baseline's rise time constant, for docs and the fit script's report. */
export const BASELINE_UP_TAU_S = TAU.baselineUp;
