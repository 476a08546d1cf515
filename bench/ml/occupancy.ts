// Occupancy evaluation: each UCI reading's occupancy as the twin holds it right after applying that
// reading (online), against the file's Occupancy label; next to baselines scored in the same run.

import { applyInput, createTwin } from "../../actors/device-twin/domain/mod.ts";
import { isOccupied } from "../../actors/device-twin/domain/learned/learned-state.ts";
import { loadUciRows } from "../../test/domain/uci.ts";

/** Accuracy, precision, recall and state changes of one predictor on one file. */
export interface OccupancyScore {
  name: string;
  accuracy: number;
  precision: number;
  recall: number;
  /** Times the prediction changed, and how many per true transition of the label. */
  changes: number;
  changesPerTransition: number;
}

function score(name: string, truth: readonly boolean[], predicted: readonly boolean[]): OccupancyScore {
  let tp = 0, fp = 0, fn = 0, tn = 0, changes = 0, transitions = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] as boolean;
    const p = predicted[i] as boolean;
    if (t && p) tp++;
    else if (p) fp++;
    else if (t) fn++;
    else tn++;
    if (i > 0 && p !== predicted[i - 1]) changes++;
    if (i > 0 && t !== truth[i - 1]) transitions++;
  }
  return { name, accuracy: (tp + tn) / truth.length, precision: tp + fp === 0 ? 0 : tp / (tp + fp), recall: tp + fn === 0 ? 0 : tp / (tp + fn), changes, changesPerTransition: changes / Math.max(1, transitions) };
}

/** The twin (fresh, readings one batch of 1 at a time, as a Foobot uploads) and the baselines on one file. */
export function evaluateOccupancy(path: string, co2Threshold = 700): OccupancyScore[] {
  const rows = loadUciRows(path);
  const truth = rows.map((r) => r.occupied);
  const twin = createTwin("uci");
  const model: boolean[] = [];
  for (const row of rows) {
    applyInput(twin, { type: "readings", readings: [row.reading], receivedAt: row.reading.t });
    model.push(isOccupied(twin));
  }
  return [
    score("twin", truth, model),
    score("always-unoccupied", truth, rows.map(() => false)),
    score(`co2-above-${co2Threshold}`, truth, rows.map((r) => (r.reading.co2 as number) >= co2Threshold)),
  ];
}
