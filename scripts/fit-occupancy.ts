// Offline fit of the occupancy model (actors/device-twin/domain/learned/occupancy-model.ts):
// replays data/uci-occupancy/datatraining.txt through a fresh twin's learned state, collects the online
// features of every co2 reading with the file's Occupancy label, fits an L2-regularized logistic
// regression by Newton's method (deterministic: no random init, no shuffling), chooses the hysteresis
// (the probabilities at which the room becomes occupied and empty) by online accuracy on the same
// training file, and writes both to learned/occupancy-coefficients.ts. Light is not used (a Foobot has
// no light sensor); the test file is never read.
//
//   npx tsx scripts/fit-occupancy.ts            fit, print training/test accuracy, write the file
//   npx tsx scripts/fit-occupancy.ts --dry-run  fit and print only

import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { applyReadingToLearned, createLearned, lastOccupancyFeatures } from "../actors/device-twin/domain/learned/learned-state.ts";
import { OCCUPANCY_FEATURES } from "../actors/device-twin/domain/learned/occupancy-features.ts";
import type { Alert, OccupancyChange } from "../actors/device-twin/domain/types.ts";
import { loadUciRows, UCI_TRAINING } from "../test/domain/uci.ts";

/** L2 penalty on the (standardized) weights, not the intercept. */
const L2 = 1;
const ITERATIONS = 30;

/** Online features and labels of a file, as a fresh twin computes them. */
export function featuresOf(path: string): { x: number[][]; y: number[] } {
  const learned = createLearned();
  const alerts: Alert[] = [];
  const occupancy: OccupancyChange[] = [];
  const x: number[][] = [];
  const y: number[] = [];
  for (const row of loadUciRows(path)) {
    applyReadingToLearned(learned, "fit", row.reading, undefined, alerts, occupancy);
    const f = lastOccupancyFeatures();
    if (f === undefined) continue;
    x.push(Array.from(f.subarray(0, OCCUPANCY_FEATURES.length)));
    y.push(row.occupied ? 1 : 0);
  }
  return { x, y };
}

/** Solves A·s = g (small dense system, Gaussian elimination with partial pivoting). */
function solve(a: number[][], g: number[]): number[] {
  const n = g.length;
  const m = a.map((row, i) => [...row, g[i] as number]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const k = m[r]![c]! / m[c]![c]!;
      for (let j = c; j <= n; j++) m[r]![j]! -= k * m[c]![j]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/** Logistic regression (intercept first) on standardized features; returns weights for the raw features. */
export function fitLogistic(x: number[][], y: number[]): { intercept: number; weights: number[] } {
  const d = x[0]!.length;
  const mean = Array.from({ length: d }, (_, j) => x.reduce((s, r) => s + r[j]!, 0) / x.length);
  const sd = Array.from({ length: d }, (_, j) => Math.sqrt(x.reduce((s, r) => s + (r[j]! - mean[j]!) ** 2, 0) / x.length) || 1);
  const z = x.map((r) => [1, ...r.map((v, j) => (v - mean[j]!) / sd[j]!)]);
  let beta = new Array<number>(d + 1).fill(0);
  for (let it = 0; it < ITERATIONS; it++) {
    const grad = new Array<number>(d + 1).fill(0);
    const hess = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
    for (let i = 0; i < z.length; i++) {
      const zi = z[i]!;
      const p = 1 / (1 + Math.exp(-zi.reduce((s, v, j) => s + v * beta[j]!, 0)));
      const w = p * (1 - p);
      for (let j = 0; j <= d; j++) {
        grad[j]! += (y[i]! - p) * zi[j]!;
        for (let k = 0; k <= d; k++) hess[j]![k]! += w * zi[j]! * zi[k]!;
      }
    }
    for (let j = 1; j <= d; j++) {
      grad[j]! -= L2 * beta[j]!;
      hess[j]![j]! += L2;
    }
    const step = solve(hess, grad);
    beta = beta.map((b, j) => b + step[j]!);
  }
  const weights = Array.from({ length: d }, (_, j) => beta[j + 1]! / sd[j]!);
  const intercept = beta[0]! - weights.reduce((s, w, j) => s + w * mean[j]!, 0);
  return { intercept, weights };
}

/**
 * Hysteresis candidates: enter at p ≥ `enter`, leave at p ≤ `leave` (leave ≤ enter). A room becomes
 * occupied only when the model finds it at least as likely as not (enter ≥ 0.5): lower thresholds
 * scored a hair better on the training file by calling a fresh twin's merely stale air (co2 a little
 * over its first baseline, not rising) occupied.
 */
const ENTER_GRID = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8];
const LEAVE_GRID = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5];

/** Online accuracy of the fitted model with a hysteresis, replayed over features and labels (the room starts empty). */
export function hysteresisAccuracy(x: number[][], y: number[], fit: { intercept: number; weights: readonly number[] }, enter: number, leave: number): number {
  let occupied = false;
  let right = 0;
  for (let i = 0; i < x.length; i++) {
    let z = fit.intercept;
    for (let j = 0; j < fit.weights.length; j++) z += fit.weights[j]! * x[i]![j]!;
    const p = 1 / (1 + Math.exp(-z));
    occupied = occupied ? p > leave : p >= enter;
    if ((occupied ? 1 : 0) === y[i]) right++;
  }
  return right / x.length;
}

/** The hysteresis with the best online accuracy on the training features (the first of equals, in grid order). */
export function chooseHysteresis(x: number[][], y: number[], fit: { intercept: number; weights: readonly number[] }): { enter: number; leave: number; accuracy: number } {
  let best = { enter: 0.5, leave: 0.5, accuracy: -1 };
  for (const enter of ENTER_GRID) {
    for (const leave of LEAVE_GRID) {
      if (leave > enter) continue;
      const accuracy = hysteresisAccuracy(x, y, fit, enter, leave);
      if (accuracy > best.accuracy) best = { enter, leave, accuracy };
    }
  }
  return best;
}

export function main(args: string[] = process.argv.slice(2)): void {
  const { x, y } = featuresOf(UCI_TRAINING);
  const fit = fitLogistic(x, y);
  const round = (n: number): number => Number(n.toPrecision(6));
  // chosen with the rounded coefficients, which are what the twin runs
  const rounded = { intercept: round(fit.intercept), weights: fit.weights.map(round) };
  const hysteresis = chooseHysteresis(x, y, rounded);
  console.log(JSON.stringify({ rows: x.length, occupiedShare: y.reduce((a, b) => a + b, 0) / y.length, intercept: rounded.intercept, weights: Object.fromEntries(OCCUPANCY_FEATURES.map((f, j) => [f, rounded.weights[j]!])), hysteresis }));
  if (args.includes("--dry-run")) return;
  const file = fileURLToPath(new URL("../actors/device-twin/domain/learned/occupancy-coefficients.ts", import.meta.url));
  writeFileSync(
    file,
    `// Generated by scripts/fit-occupancy.ts from data/uci-occupancy/datatraining.txt (${x.length} co2 readings,\n` +
      `// L2 ${L2} on standardized features; hysteresis: the best online accuracy on the same file) — do not\n` +
      `// edit by hand; rerun the script to refit.\n` +
      `// Features (occupancy-features.ts): ${OCCUPANCY_FEATURES.join(", ")}.\n` +
      `export const OCCUPANCY_COEFFICIENTS = {\n  intercept: ${rounded.intercept},\n  weights: [${rounded.weights.join(", ")}],\n` +
      `  /** The room becomes occupied at this probability or more, and empty at \`leave\` or less. */\n` +
      `  enter: ${hysteresis.enter},\n  leave: ${hysteresis.leave},\n} as const;\n`,
  );
  console.log(`wrote ${file}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
