// The learned state's benchmark (docs/ml.md): every model next to named baselines in the same run.
//   occupancy  online accuracy, precision, recall, state changes on the UCI files vs always-unoccupied,
//              a co2 threshold and a temperature threshold (both fitted on the training file)
//   forecast   30-minute MAE vs persistence and seasonal-naive (UCI; simulated fleet); forecast
//              alerts' precision, recall and lead time before event.start (simulated fleet)
//   anomaly    NAB standard-profile score vs NAB's windowed Gaussian on labelled injections (UCI +
//              simulated fleet), and false alarms per device-week on the clean series
//   cost       the learned state's snapshot bytes, and CPU per reading next to the twin without it and
//              the statistics alone, interleaved rounds (heap: bench/domain-footprint.ts); with
//              --before DIR (a copy of another commit's tree, e.g. `git archive main | tar -x -C DIR`),
//              that tree's learned state too, in the same process, round for round
//
//   npm run bench -- ml [--quick] [--devices 12] [--days 21] [--only occupancy,forecast,anomaly,cost] [--before DIR]

import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { applyReadingToLearned, createLearned } from "../actors/device-twin/domain/learned/learned-state.ts";
import type { RuleContext } from "../actors/device-twin/domain/learned/learned-state.ts";
import type * as LearnedStateModule from "../actors/device-twin/domain/learned/learned-state.ts";
import { encodeLearned } from "../actors/device-twin/domain/learned/learned-snapshot.ts";
import { applyInput, createTwin } from "../actors/device-twin/domain/mod.ts";
import { DEFAULT_RULES } from "../actors/device-twin/domain/rules.ts";
import { applyReadingToStats, createStats } from "../actors/device-twin/domain/stats.ts";
import type { Alert, Channel, OccupancyChange } from "../actors/device-twin/domain/types.ts";
import { UCI_TEST, UCI_TRAINING } from "../test/domain/uci.ts";
import { emit, median, note, round } from "./lib/report.ts";
import { falseAlarms, gaussianDetections, nabSeries, twinDetections } from "./ml/anomaly.ts";
import { injectAnomalies } from "./ml/inject.ts";
import { forecastAlertScore, forecastErrors } from "./ml/forecast.ts";
import type { ForecastErrors } from "./ml/forecast.ts";
import { nabScore, nabTotals } from "./ml/nab.ts";
import { evaluateOccupancy, fitThreshold } from "./ml/occupancy.ts";
import { simDevices, uciDevices } from "./ml/series.ts";
import type { DeviceSeries } from "./ml/series.ts";

const SUITE = "ml";
const GAUSSIAN_THRESHOLDS = [1.5, 2, 2.5, 3, 3.5, 4, 5, 6];

function occupancy(): void {
  const co2 = fitThreshold(UCI_TRAINING, "co2");
  const tmp = fitThreshold(UCI_TRAINING, "tmp");
  for (const [file, path] of [["datatraining", UCI_TRAINING], ["datatest", UCI_TEST]] as const) {
    const [twin, ...baselines] = evaluateOccupancy(path, co2, tmp);
    for (const b of baselines) {
      emit({ suite: SUITE, name: `occupancy-accuracy-${file}`, value: round(twin!.accuracy, 4), unit: "share", baseline: { name: b.name, value: round(b.accuracy, 4) } });
    }
    for (const s of [twin!, ...baselines]) {
      emit({ suite: SUITE, name: `occupancy-${file}-${s.name}`, value: round(s.accuracy, 4), unit: "accuracy", detail: { precision: round(s.precision, 4), recall: round(s.recall, 4), stateChanges: s.changes, changesPerTrueTransition: round(s.changesPerTransition, 3) } });
    }
  }
  emit({ suite: SUITE, name: "occupancy-paper-temperature-only-lda", value: 0.85, unit: "accuracy", detail: { source: "Candanedo & Feldheim 2016, datatest, 83-85% with temperature alone (cited, not run)" } });
}

function addErrors(into: Record<string, ForecastErrors>, from: Record<string, ForecastErrors>): void {
  for (const [ch, e] of Object.entries(from)) {
    const t = (into[ch] ??= { points: 0, twin: 0, persistence: 0, seasonalNaive: 0 });
    t.points += e.points;
    t.twin += e.twin;
    t.persistence += e.persistence;
    t.seasonalNaive += e.seasonalNaive;
  }
}

function forecast(sim: DeviceSeries[]): void {
  const sets: Array<[string, DeviceSeries[], Channel[]]> = [
    ["uci-training", uciDevices().slice(0, 1), ["co2", "tmp", "hum"]],
    ["uci-test", uciDevices().slice(1), ["co2", "tmp", "hum"]],
    ["sim", sim, ["pm", "co2", "voc", "tmp", "hum", "allpollu"]],
  ];
  for (const [name, devices, channels] of sets) {
    const total: Record<string, ForecastErrors> = {};
    for (const d of devices) addErrors(total, forecastErrors(d, channels));
    for (const [ch, e] of Object.entries(total)) {
      if (e.points === 0) continue;
      const mae = e.twin / e.points;
      emit({ suite: SUITE, name: `forecast-mae-30min-${name}-${ch}`, value: round(mae), unit: "abs error", baseline: { name: "persistence", value: round(e.persistence / e.points) }, detail: { seasonalNaive: round(e.seasonalNaive / e.points), ratioToPersistence: round(mae / (e.persistence / e.points)), ratioToSeasonalNaive: round(mae / (e.seasonalNaive / e.points)), points: e.points } });
    }
  }
  const alerts = forecastAlertScore(sim);
  emit({ suite: SUITE, name: "forecast-alert-precision-sim", value: round(alerts.truePositives / Math.max(1, alerts.alerts)), unit: "share", detail: { alerts: alerts.alerts, truePositives: alerts.truePositives, eventStarts: alerts.eventStarts, forewarnedStarts: alerts.forewarned, recall: round(alerts.forewarned / Math.max(1, alerts.eventStarts)), medianLeadMin: round(median(alerts.leadMs) / 60_000) } });
}

function anomaly(sim: DeviceSeries[]): void {
  const clean = [...uciDevices(), ...sim];
  const labelled = clean.map((d, i) => injectAnomalies(d, 1000 + i));
  const twinSeries = labelled.flatMap((d) => nabSeries(d, twinDetections(d.readings)));
  const twin = nabTotals(twinSeries);
  let best = { threshold: 0, score: -Infinity, totals: twin };
  for (const th of GAUSSIAN_THRESHOLDS) {
    const totals = nabTotals(labelled.flatMap((d) => nabSeries(d, gaussianDetections(d.readings, th))));
    const s = nabScore(totals);
    if (s > best.score) best = { threshold: th, score: s, totals };
  }
  const twinScore = nabScore(twin);
  emit({ suite: SUITE, name: "anomaly-nab-standard", value: round(twinScore), unit: "score", baseline: { name: `windowed-gaussian-z${best.threshold}`, value: round(best.score) }, detail: { ratio: round(twinScore / best.score), windows: twin.windows, twinTruePositives: twin.truePositives, twinFalsePositives: twin.falsePositives, gaussianTruePositives: best.totals.truePositives, gaussianFalsePositives: best.totals.falsePositives, devices: labelled.length } });
  for (const kind of ["spike", "stuck", "drift"] as const) {
    const only = labelled.map((d) => ({ ...d, labels: d.labels.filter((l) => l.kind === kind) }));
    const t = nabTotals(only.flatMap((d) => nabSeries(d, twinDetections(d.readings))));
    emit({ suite: SUITE, name: `anomaly-recall-${kind}`, value: round(t.truePositives / Math.max(1, t.windows)), unit: "share", detail: { windows: t.windows } });
  }
  const fa = falseAlarms(clean, twinDetections);
  const faG = falseAlarms(clean, (rs) => gaussianDetections(rs, best.threshold));
  emit({ suite: SUITE, name: "anomaly-false-alarms-per-device-week-clean", value: round(fa.alarms / fa.deviceWeeks), unit: "alarms", baseline: { name: `windowed-gaussian-z${best.threshold}`, value: round(faG.alarms / faG.deviceWeeks) }, detail: { deviceWeeks: round(fa.deviceWeeks), alarms: fa.alarms } });
}

async function cost(sim: DeviceSeries[], quick: boolean, beforeDir: string | undefined): Promise<void> {
  const week = sim[0]!.readings;
  const learned = createLearned();
  const alerts: Alert[] = [];
  const occ: OccupancyChange[] = [];
  for (const r of week) applyReadingToLearned(learned, "d", r, undefined, alerts, occ);
  const bytes = encodeLearned(learned);
  emit({ suite: SUITE, name: "learned-snapshot-bytes", value: bytes.length, unit: "bytes", detail: { readings: week.length } });
  // CPU time (not wall time: the machine is shared) per reading, rounds interleaved so that load
  // changes hit every variant alike; medians over the rounds. The learned state runs as the twin runs
  // it (default rules, none busy), so its time is what it adds to a twin.
  const rules: RuleContext = { rules: DEFAULT_RULES, busy: [] };
  const variants: Record<string, () => void> = {
    learned: () => {
      const l = createLearned();
      for (const r of week) {
        applyReadingToLearned(l, "d", r, rules, alerts, occ);
        // emptied only when filled, as the twin does (setting .length every reading was 4% of this loop)
        if (alerts.length !== 0) alerts.length = 0;
        if (occ.length !== 0) occ.length = 0;
      }
    },
    stats: () => {
      const s = createStats();
      for (const r of week) applyReadingToStats(s, "d", r);
    },
    twin: () => {
      const twin = createTwin("d");
      for (let i = 0; i < week.length; i += 12) applyInput(twin, { type: "readings", readings: week.slice(i, i + 12), receivedAt: week[Math.min(week.length - 1, i + 11)]!.t });
    },
  };
  if (beforeDir !== undefined) {
    // another tree's learned state, its own module instances, measured round for round beside this
    // one's: both see the same load, so their ratio holds on a busy machine where separate runs do not.
    // Both trees are loaded and run alike (a dynamic import each, one loop function for both), so
    // neither is favoured: an A/A run (the same tree twice) gives 1.00 ± 0.02.
    const learnedOf = async (dir: string): Promise<typeof LearnedStateModule> =>
      (await import(pathToFileURL(resolve(dir, "actors/device-twin/domain/learned/learned-state.ts")).href)) as typeof LearnedStateModule;
    const runOf = (m: typeof LearnedStateModule) => (): void => {
      const l = m.createLearned();
      for (const r of week) {
        m.applyReadingToLearned(l, "d", r, rules, alerts, occ);
        if (alerts.length !== 0) alerts.length = 0;
        if (occ.length !== 0) occ.length = 0;
      }
    };
    variants.pairedThis = runOf(await learnedOf(resolve(dirname(fileURLToPath(import.meta.url)), "..")));
    variants.pairedBefore = runOf(await learnedOf(beforeDir));
  }
  const cpuNs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  const rounds = quick ? 30 : 100;
  // every other round in reverse order: a variant's place in the round moves its time (an A/A run of
  // --before with the same tree gave 0.94 with a fixed order; what runs before it leaves garbage and caches)
  const order = Object.entries(variants);
  const reversed = [...order].reverse();
  for (let k = 0; k < rounds + 5; k++) {
    for (const [name, run] of k % 2 === 0 ? order : reversed) {
      const t0 = cpuNs();
      run();
      if (k >= 5) samples[name]!.push((cpuNs() - t0) / week.length);
    }
  }
  const learnedNs = median(samples.learned!);
  const twinNs = median(samples.twin!);
  emit({
    suite: SUITE, name: "learned-apply-ns-per-reading", value: round(learnedNs), unit: "ns (CPU)",
    baseline: { name: "twin without the learned state (whole twin − learned)", value: round(twinNs - learnedNs) },
    detail: { wholeTwinNs: round(twinNs), statsAloneNs: round(median(samples.stats!)), rounds, readings: week.length, loadAverage1m: round(loadavg()[0]!), note: "shared 2-core machine: compare within one run" },
  });
  if (beforeDir !== undefined) {
    const a = samples.pairedThis!;
    const b = samples.pairedBefore!;
    emit({
      suite: SUITE, name: "learned-apply-ns-per-reading-vs-before", value: round(median(a)), unit: "ns (CPU)",
      baseline: { name: `learned state of ${beforeDir}`, value: round(median(b)) },
      detail: { ratioMedianOfRounds: round(median(a.map((x, i) => x / b[i]!)), 3), statsAloneNs: round(median(samples.stats!)), rounds, loadAverage1m: round(loadavg()[0]!), note: "both trees through one loop function (a polymorphic call): compare the two, not with learned-apply-ns-per-reading" },
    });
  }
  // heap bytes per twin: bench/domain-footprint.ts (learned-heap-bytes-per-twin), which forces GC
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: "boolean", default: false }, devices: { type: "string" }, days: { type: "string" }, only: { type: "string" }, before: { type: "string" } } });
  const devices = Number(values.devices ?? (values.quick ? 4 : 12));
  const days = Number(values.days ?? (values.quick ? 14 : 21));
  const only = new Set((values.only ?? "occupancy,forecast,anomaly,cost").split(","));
  note("simulating", { devices, days });
  const sim = simDevices(devices, days);
  if (only.has("occupancy")) occupancy();
  if (only.has("forecast")) forecast(sim);
  if (only.has("anomaly")) anomaly(sim);
  if (only.has("cost")) await cost(sim, values.quick, values.before);
}
