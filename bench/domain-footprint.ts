// Footprint of the twin statistics (actors/device-twin/domain/stats.ts) and of its learned state
// (actors/device-twin/domain/learned/, next to the statistics' figures): snapshot bytes and heap bytes
// per twin holding a week of 5-minute readings on all six channels, each next to a naive baseline
// measured in the same run (JSON of the plain view; a plain-object state). Prints one JSON line per figure.
//
//   npx tsx bench/domain-footprint.ts [--twins 10000] [--distinct 200] [--seed 1] [--build decode|apply]
//   node --expose-gc --import tsx bench/domain-footprint.ts   (same; gc is otherwise enabled via v8 flags)

import { pack } from "msgpackr";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parseArgs } from "node:util";
import {
  applyReadingToStats,
  calibrationView,
  channelView,
  createStats,
  decodeStats,
  encodeStats,
  type ChannelView,
  type TwinStats,
} from "../actors/device-twin/domain/stats.ts";
import { applyInput, createTwin, decodeTwin, encodeTwin, type TwinState } from "../actors/device-twin/domain/mod.ts";
import { CHANNELS, type Alert, type Channel, type OccupancyChange, type Reading } from "../actors/device-twin/domain/types.ts";
import { applyReadingToLearned, createLearned, LEARNED_BYTES } from "../actors/device-twin/domain/learned/learned-state.ts";
import { decodeLearned, encodeLearned } from "../actors/device-twin/domain/learned/learned-snapshot.ts";
import { DEFAULT_RULES } from "../actors/device-twin/domain/rules.ts";
import { rng } from "../test/harness/rng.ts";

const { values: args } = parseArgs({
  options: {
    twins: { type: "string", default: "10000" },
    distinct: { type: "string", default: "200" },
    seed: { type: "string", default: "1" },
    // decode: heap twins are decoded from `distinct` snapshots (fast); apply: each replays its own week
    build: { type: "string", default: "decode" },
  },
});
const TWINS = Number(args.twins);
const DISTINCT = Math.min(Number(args.distinct), TWINS);
const SEED = Number(args.seed);

const FIVE_MIN = 300_000;
const READINGS_PER_WEEK = 7 * 288;
const MONDAY = Date.UTC(2024, 0, 1);

function emit(name: string, value: number, unit: string, baseline?: { name: string; value: number }): void {
  const round = (n: number) => Math.round(n * 10) / 10;
  console.log(JSON.stringify({ suite: "domain", name, value: round(value), unit, ...(baseline ? { baseline: { name: baseline.name, value: round(baseline.value) } } : {}) }));
}


/**
 * A week of an office or home Foobot: occupancy drives co2/voc/pm, temperature and humidity follow the
 * day, plus noise and the odd cooking spike. `raw`: unrounded doubles instead of sensor resolution.
 */
function deviceWeek(seed: number, raw: boolean): Reading[] {
  const rand = rng(seed);
  const noise = () => rand() + rand() - 1;
  const start = MONDAY + Math.floor(rand() * 288) * FIVE_MIN;
  const outdoorCo2 = 410 + rand() * 60;
  const office = rand() < 0.5;
  const round = (x: number, scale: number) => (raw ? x * (1 + 1e-7 * noise()) : Math.round(x * scale) / scale);
  const out: Reading[] = [];
  let pmSpike = 0;
  for (let i = 0; i < READINGS_PER_WEEK; i++) {
    const t = start + i * FIVE_MIN;
    const hour = (t / 3_600_000) % 24;
    const weekday = Math.floor(t / 86_400_000 + 3) % 7 < 5;
    const occupied = office ? weekday && hour >= 8 && hour < 18 : hour >= 17 || hour < 8;
    const occ = occupied ? 0.6 + 0.4 * rand() : 0;
    if (rand() < 0.004) pmSpike = 40 + 80 * rand();
    pmSpike *= 0.8;
    const pm = Math.max(0, 4 + 10 * occ + pmSpike + 1.5 * noise());
    const co2 = outdoorCo2 + 700 * occ + 25 * noise();
    const voc = Math.max(0, 120 + 300 * occ + 20 * noise());
    const diurnal = Math.sin((2 * Math.PI * (hour - 9)) / 24);
    out.push({
      t,
      pm: round(pm, 10),
      co2: round(co2, 1),
      voc: round(voc, 1),
      tmp: round(20.5 + 1.8 * diurnal + 0.8 * occ + 0.1 * noise(), 100),
      hum: round(42 + 6 * diurnal + 0.5 * noise(), 100),
      allpollu: round(Math.min(1000, (pm / 25 + co2 / 1300 + voc / 500) * 30), 10),
    });
  }
  return out;
}

function buildStats(readings: readonly Reading[], deviceId: string): TwinStats {
  const s = createStats();
  for (const r of readings) applyReadingToStats(s, deviceId, r);
  return s;
}

/** A whole twin (stats, default rules, events, presence) fed the week an hour (12 readings) at a time. */
function buildTwin(readings: readonly Reading[], deviceId: string): TwinState {
  const twin = createTwin(deviceId);
  for (let i = 0; i < readings.length; i += 12) {
    const batch = readings.slice(i, i + 12);
    applyInput(twin, { type: "readings", readings: batch, receivedAt: (batch[batch.length - 1] as Reading).t + 1000 });
  }
  return twin;
}

/** The naive persistence baseline: the plain view of every channel and the calibration, as JSON. */
function plainView(s: TwinStats): { channels: Partial<Record<Channel, ChannelView>>; calibration: ReturnType<typeof calibrationView> } {
  const channels: Partial<Record<Channel, ChannelView>> = {};
  for (const ch of CHANNELS) {
    const v = channelView(s, ch);
    if (v) channels[ch] = v;
  }
  return { channels, calibration: calibrationView(s) };
}

/** The naive in-memory baseline: what a plain-object implementation keeps (buckets as objects, running sums, top-5 arrays, lows). */
function plainState(s: TwinStats): unknown {
  const { channels, calibration } = plainView(s);
  const state: Record<string, unknown> = { latestT: 0 };
  for (const [ch, v] of Object.entries(channels)) {
    const open = v.daily[v.daily.length - 1];
    state[ch] = {
      ...v,
      m2: v.stddev ** 2 * v.count,
      hourSum: v.mean * 12,
      daySum: v.mean * 288,
      hourly: v.hourly.map((b) => ({ ...b })),
      daily: v.daily.map((b) => ({ ...b })),
      topHigh: [open?.max, v.max, v.mean, v.ewma, v.last],
      topLow: [open?.min, v.min, v.mean, v.ewma, v.last],
    };
  }
  state.calibration = { co2: { ...calibration.co2, lows: [1, 2, 3, 4, 5, 6, 7].map((d) => d * 400.5) }, voc: { ...calibration.voc, lows: [1, 2, 3, 4, 5, 6, 7].map((d) => d * 200.5) } };
  return state;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const max = (xs: number[]) => Math.max(...xs);

function gcFunction(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}
const gc = gcFunction();

function retainedBytesPerItem(n: number, make: (i: number) => unknown): number {
  const keep = new Array<unknown>(n).fill(null);
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  for (let i = 0; i < n; i++) keep[i] = make(i);
  const after = used();
  if (keep.length !== n) throw new Error("unreachable");
  return (after - before) / n;
}

function main(): void {
  for (const raw of [false, true]) {
    const fleet = Array.from({ length: DISTINCT }, (_, i) => buildStats(deviceWeek(SEED * 100_000 + i, raw), `dev-${i}`));
    const snap = fleet.map((s) => encodeStats(s).length);
    const json = fleet.map((s) => Buffer.byteLength(JSON.stringify(plainView(s))));
    const suffix = raw ? "-raw-floats" : "";
    emit(`stats-snapshot-bytes-median${suffix}`, median(snap), "bytes", { name: "json-of-view", value: median(json) });
    emit(`stats-snapshot-bytes-max${suffix}`, max(snap), "bytes", { name: "json-of-view", value: max(json) });
    if (!raw) emit("view-msgpack-bytes-median", median(fleet.map((s) => pack(plainView(s)).length)), "bytes");
  }

  const fleet = Array.from({ length: DISTINCT }, (_, i) => buildStats(deviceWeek(SEED * 100_000 + i, false), `dev-${i}`));
  const snapshots = fleet.map(encodeStats);
  const packed =
    args.build === "apply"
      ? retainedBytesPerItem(TWINS, (i) => buildStats(deviceWeek(SEED * 100_000 + i, false), `dev-${i}`))
      : retainedBytesPerItem(TWINS, (i) => decodeStats(snapshots[i % DISTINCT] as Uint8Array));
  const plain = retainedBytesPerItem(TWINS, (i) => plainState(fleet[i % DISTINCT] as TwinStats));
  emit("stats-heap-bytes-per-twin", packed, "bytes", { name: "plain-object-state", value: plain });

  // The whole twin as twin.ts composes it: the budget is 2 KB of snapshot and 4 KB of heap.
  const twins = Array.from({ length: DISTINCT }, (_, i) => encodeTwin(buildTwin(deviceWeek(SEED * 100_000 + i, false), `dev-${i}`)));
  emit("twin-snapshot-bytes-median", median(twins.map((b) => b.length)), "bytes");
  emit("twin-snapshot-bytes-max", max(twins.map((b) => b.length)), "bytes");
  emit("twin-heap-bytes-per-twin", retainedBytesPerItem(TWINS, (i) => decodeTwin(twins[i % DISTINCT] as Uint8Array)), "bytes");

  // The learned state's share (learned/): its snapshot section, and its heap — it lives in the statistics'
  // buffer (one buffer and view per twin), so its heap is statistics with it minus statistics alone.
  const learnedTwins = Array.from({ length: DISTINCT }, (_, i) => buildTwin(deviceWeek(SEED * 100_000 + i, false), `dev-${i}`));
  const learned = learnedTwins.map((t) => encodeLearned(t.learned));
  const statsOfTwins = learnedTwins.map((t) => encodeStats(t.stats));
  emit("learned-snapshot-bytes-median", median(learned.map((b) => b.length)), "bytes", { name: "stats-section", value: median(fleet.map((s) => encodeStats(s).length)) });
  emit("learned-snapshot-bytes-max", max(learned.map((b) => b.length)), "bytes");
  const statsAlone = retainedBytesPerItem(TWINS, (i) => decodeStats(statsOfTwins[i % DISTINCT] as Uint8Array));
  const statsWithLearned = retainedBytesPerItem(TWINS, (i) => {
    const stats = decodeStats(statsOfTwins[i % DISTINCT] as Uint8Array, LEARNED_BYTES);
    decodeLearned(learned[i % DISTINCT] as Uint8Array, stats);
    return stats;
  });
  emit("learned-heap-bytes-per-twin", statsWithLearned - statsAlone, "bytes", { name: "stats", value: statsAlone });

  const week = deviceWeek(SEED, false);
  const rounds = 50;
  buildStats(week, "warm");
  let t0 = performance.now();
  for (let k = 0; k < rounds; k++) buildStats(week, "dev");
  const statsNs = ((performance.now() - t0) * 1e6) / (rounds * week.length);
  emit("stats-apply-ns-per-reading", statsNs, "ns");
  const learnWeek = (): void => {
    const l = createLearned();
    const alerts: Alert[] = [];
    const occupancy: OccupancyChange[] = [];
    for (const r of week) {
      applyReadingToLearned(l, "dev", r, { rules: DEFAULT_RULES, busy: [] }, alerts, occupancy);
      alerts.length = occupancy.length = 0;
    }
  };
  learnWeek();
  t0 = performance.now();
  for (let k = 0; k < rounds; k++) learnWeek();
  emit("learned-apply-ns-per-reading", ((performance.now() - t0) * 1e6) / (rounds * week.length), "ns", { name: "stats-apply", value: statsNs });
  const s = buildStats(week, "dev");
  t0 = performance.now();
  for (let k = 0; k < 2000; k++) encodeStats(s);
  emit("stats-encode-us", ((performance.now() - t0) * 1000) / 2000, "us");
  const bytes = encodeStats(s);
  t0 = performance.now();
  for (let k = 0; k < 2000; k++) decodeStats(bytes);
  emit("stats-decode-us", ((performance.now() - t0) * 1000) / 2000, "us");
}

main();
