// Occupancy: a logistic model over the features of occupancy-features.ts, with hysteresis so that a
// probability hovering around the threshold does not flap the room's state. The coefficients and the
// hysteresis are code, written by scripts/fit-occupancy.ts (a reproducible fit on data/uci-occupancy/datatraining.txt);
// docs/ml.md reports how the model scores on data it was not fitted on.

import { OCCUPANCY_COEFFICIENTS } from "./occupancy-coefficients.ts";

/** The room becomes occupied at this probability or more… */
export const ENTER_PROBABILITY = OCCUPANCY_COEFFICIENTS.enter;
/** …and empty again at this or less (both chosen by the fit, on the training file). */
export const LEAVE_PROBABILITY = OCCUPANCY_COEFFICIENTS.leave;

/** P(occupied | features): the logistic of the fitted linear score. */
export function occupancyProbability(features: Float64Array): number {
  const c = OCCUPANCY_COEFFICIENTS;
  let z = c.intercept;
  for (let i = 0; i < c.weights.length; i++) z += (c.weights[i] as number) * (features[i] as number);
  return 1 / (1 + Math.exp(-z));
}

/** The state after seeing probability `p`, from `occupied` (hysteresis). */
export function nextOccupied(occupied: boolean, p: number): boolean {
  return occupied ? p > LEAVE_PROBABILITY : p >= ENTER_PROBABILITY;
}
