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

/** Best single threshold on `channel` (occupied at or above it) for the rows of a file, by accuracy. */
export function fitThreshold(path: string, channel: "co2" | "tmp"): number {
  const rows = loadUciRows(path);
  const values = [...new Set(rows.map((r) => r.reading[channel] as number))].sort((a, b) => a - b);
  let best = { threshold: 0, correct: -1 };
  const step = Math.max(1, Math.floor(values.length / 400));
  for (let i = 0; i < values.length; i += step) {
    const th = values[i] as number;
    let correct = 0;
    for (const r of rows) if (((r.reading[channel] as number) >= th) === r.occupied) correct++;
    if (correct > best.correct) best = { threshold: th, correct };
  }
  return best.threshold;
}

/**
 * The twin (fresh, readings one at a time, as a Foobot uploads) and the baselines on one file:
 * always unoccupied, and fixed co2 / tmp thresholds (fitted on the training file by the caller).
 */
export function evaluateOccupancy(path: string, co2Threshold: number, tmpThreshold: number): OccupancyScore[] {
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
    score(`co2-at-least-${co2Threshold}ppm`, truth, rows.map((r) => (r.reading.co2 as number) >= co2Threshold)),
    score(`tmp-at-least-${tmpThreshold}C`, truth, rows.map((r) => (r.reading.tmp as number) >= tmpThreshold)),
  ];
}
