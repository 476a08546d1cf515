// Occupancy: a logistic model over the features of occupancy-features.ts, with hysteresis so that a
// probability hovering around the threshold does not flap the room's state. The coefficients and the
// hysteresis are code, written by scripts/fit-occupancy.ts (a reproducible fit on data/uci-occupancy/datatraining.txt);
// docs/ml.md reports how the model scores on data it was not fitted on.

import { OCCUPANCY_COEFFICIENTS } from "./occupancy-coefficients.ts";

/** The room becomes occupied at this probability or more… */
const ENTER_PROBABILITY = OCCUPANCY_COEFFICIENTS.enter;
/** …and empty again at this or less (both chosen by the fit, on the training file). */
const LEAVE_PROBABILITY = OCCUPANCY_COEFFICIENTS.leave;

// module-local consts, not the imported object's fields: they fold to immediates in optimized code
const INTERCEPT = OCCUPANCY_COEFFICIENTS.intercept;
const WEIGHTS = Float64Array.from(OCCUPANCY_COEFFICIENTS.weights);

/**
 * The twin's occupancy after a reading's `features`, from `occupied` (hysteresis), with the probability
 * written to `probability[0]` — numbers through arrays rather than returned, so that nothing is boxed
 * per reading when V8 does not inline this.
 */
export function decideOccupied(occupied: boolean, features: Float64Array, probability: Float64Array): boolean {
  let z = INTERCEPT;
  for (let i = 0; i < WEIGHTS.length; i++) z += (WEIGHTS[i] as number) * (features[i] as number);
  const p = 1 / (1 + Math.exp(-z));
  probability[0] = p;
  return occupied ? p > LEAVE_PROBABILITY : p >= ENTER_PROBABILITY;
}
