import { describe, expect, it } from "vitest";
import { applyInput, createTwin, isOccupied } from "../../actors/device-twin/domain/mod.ts";
import type { OccupancyChange } from "../../actors/device-twin/domain/types.ts";
import { loadUciRows, UCI_TEST } from "./uci.ts";

// The occupancy model on data it was not fitted on (scripts/fit-occupancy.ts fits on datatraining.txt),
// scored online: each reading's occupancy as the twin holds it right after applying that reading.
// docs/ml.md has the full evaluation (npm run bench -- ml); this guards against regressions.

describe("occupancy on the UCI test file (2,665 readings, one office)", () => {
  const rows = loadUciRows(UCI_TEST);
  const twin = createTwin("uci-office");
  const predicted: boolean[] = [];
  const changes: OccupancyChange[] = [];
  for (const row of rows) {
    for (const o of applyInput(twin, { type: "readings", readings: [row.reading], receivedAt: row.reading.t }).outputs) if (o.type === "occupancy") changes.push(o.occupancy);
    predicted.push(isOccupied(twin));
  }

  it("is right for at least 94% of readings, far above always-unoccupied (63.5%)", () => {
    const correct = rows.filter((r, i) => r.occupied === predicted[i]).length;
    expect(correct / rows.length).toBeGreaterThanOrEqual(0.94);
    expect(rows.filter((r) => !r.occupied).length / rows.length).toBeCloseTo(0.635, 3);
  });

  it("changes state at most twice per true transition, and each change is one output with the reading's time", () => {
    const transitions = rows.filter((r, i) => i > 0 && r.occupied !== rows[i - 1]!.occupied).length;
    const flips = predicted.filter((p, i) => i > 0 && p !== predicted[i - 1]).length;
    expect(flips).toBeLessThanOrEqual(2 * transitions);
    // the first output is the first "occupied" (a twin starts empty), then one per flip
    expect(changes.length).toBe(flips + (predicted[0] ? 1 : 0));
    for (const c of changes) {
      expect(c.id).toBe(`uci-office:occupancy:${c.at}`);
      const i = rows.findIndex((r) => r.reading.t === c.at);
      expect(predicted[i]).toBe(c.occupied);
      expect(c.probability).toBeGreaterThanOrEqual(0);
      expect(c.probability).toBeLessThanOrEqual(1);
    }
  });
});
