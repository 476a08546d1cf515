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

/** The logistic model's score (log-odds) of a reading's `features`. */
export function occupancyScore(features: Float64Array): number {
  let z = INTERCEPT;
  for (let i = 0; i < WEIGHTS.length; i++) z += (WEIGHTS[i] as number) * (features[i] as number);
  return z;
}

/** The probability of a score, computed as the decision has always computed it (snapshots hold it as f32). */
export function probabilityOf(score: number): number {
  return 1 / (1 + Math.exp(-score));
}

// The thresholds as scores, so that a reading needs no Math.exp; within SCORE_BAND of one (where the
// rounding of exp could tell otherwise) the probability decides, exactly as it always did.
const ENTER_SCORE = Math.log(ENTER_PROBABILITY / (1 - ENTER_PROBABILITY));
const LEAVE_SCORE = Math.log(LEAVE_PROBABILITY / (1 - LEAVE_PROBABILITY));
const SCORE_BAND = 1e-9;

/** The twin's occupancy after a reading's `score`, from `occupied` (hysteresis). */
export function decideOccupied(occupied: boolean, score: number): boolean {
  const at = occupied ? LEAVE_SCORE : ENTER_SCORE;
  if (score > at + SCORE_BAND) return true;
  if (score < at - SCORE_BAND) return false;
  const p = probabilityOf(score);
  return occupied ? p > LEAVE_PROBABILITY : p >= ENTER_PROBABILITY;
}
