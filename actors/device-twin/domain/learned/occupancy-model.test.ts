import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OCCUPANCY_COEFFICIENTS } from "./occupancy-coefficients.ts";
import { decideOccupied, probabilityOf } from "./occupancy-model.ts";

const { enter, leave } = OCCUPANCY_COEFFICIENTS;
/** The decision as it was made before the score was stored: on the probability. */
const byProbability = (occupied: boolean, score: number): boolean => {
  const p = probabilityOf(score);
  return occupied ? p > leave : p >= enter;
};
const logit = (p: number): number => Math.log(p / (1 - p));

describe("occupancy decided on the score", () => {
  it("decides as the probability thresholds do, anywhere and within a hair of either threshold", () => {
    const near = fc.constantFrom(logit(enter), logit(leave)).chain((at) => fc.integer({ min: -5000, max: 5000 }).map((k) => at + k * 1e-13));
    fc.assert(
      fc.property(fc.boolean(), fc.oneof(fc.double({ min: -40, max: 40, noNaN: true }), near), (occupied, score) => {
        expect(decideOccupied(occupied, score)).toBe(byProbability(occupied, score));
      }),
      { numRuns: 20_000 },
    );
  });

  it("keeps the hysteresis: a score between the thresholds keeps the state", () => {
    const between = (logit(enter) + logit(leave)) / 2;
    expect(decideOccupied(true, between)).toBe(true);
    expect(decideOccupied(false, between)).toBe(false);
  });
});
