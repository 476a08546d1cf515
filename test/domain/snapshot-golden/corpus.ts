// Test support (imported only by ./twin-snapshot.golden.test.ts): a seeded, varied corpus of twins whose
// snapshots were recorded by the encoder of commit 327c28c, so a change of the snapshot byte format — or
// of the state a given input log produces — fails a test instead of slipping through a refactor.
//
// Twins: a week of 5-minute data on all channels; gappy raw-float data on random channel subsets with
// duplicates, late readings, multi-day silences, range extremes and −0; rules, events, subscriptions,
// recalibration and reset commands; a long co2 history that moves baseline and offset; a twin that never
// had a reading. Each twin is snapshotted at several checkpoints of its log.
//
// The generators (the PRNG, the reading shapes) are this file's own copies on purpose, not imports of
// test/harness/rng.ts or bench/lib/fleet.ts: the recorded hashes depend on every generated value, so a
// change to a shared test or bench helper must not move them.

import { applyInput, createTwin } from "../../../actors/device-twin/domain/twin.ts";
import type { TwinInput, TwinState } from "../../../actors/device-twin/domain/twin.ts";
import { CHANNELS, CHANNEL_RANGES } from "../../../actors/device-twin/domain/types.ts";
import type { Command, Reading } from "../../../actors/device-twin/domain/types.ts";

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** mulberry32, as in test/harness/rng.ts (copied: see the header). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One corpus twin: its name and the input log, cut into segments after each of which it is snapshotted. */
export interface CorpusTwin {
  name: string;
  segments: TwinInput[][];
}

function week5min(seed: number): CorpusTwin {
  const rand = rng(seed);
  const q = (x: number, step: number) => Math.round(x / step) * step;
  const start = Date.UTC(2025, 0, 6) + Math.floor(rand() * 288) * 5 * MIN;
  const segments: TwinInput[][] = [];
  for (let day = 0; day < 8; day++) {
    const seg: TwinInput[] = [];
    for (let b = 0; b < 288; b += 12) {
      const readings: Reading[] = [];
      for (let k = b; k < b + 12; k++) {
        const t = start + (day * 288 + k) * 5 * MIN;
        readings.push({
          t,
          pm: q(4 + rand() * 24, 0.1),
          co2: Math.round(450 + rand() * 700),
          voc: Math.round(120 + rand() * 250),
          tmp: q(19 + rand() * 5, 0.01),
          hum: q(32 + rand() * 25, 0.01),
          allpollu: q(8 + rand() * 30, 0.1),
        });
      }
      seg.push({ type: "readings", readings, receivedAt: (readings.at(-1) as Reading).t + 2000 });
    }
    segments.push(seg);
  }
  return { name: `week5min-${seed}`, segments };
}

function gappy(seed: number, withCommands: boolean): CorpusTwin {
  const rand = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)] as T;
  const presence = CHANNELS.map(() => (rand() < 0.3 ? 0 : rand() < 0.5 ? 1 : rand()));
  const value = (ch: (typeof CHANNELS)[number]): number => {
    const { min, max } = CHANNEL_RANGES[ch];
    const r = rand();
    if (r < 0.03) return min;
    if (r < 0.06) return max;
    if (r < 0.08 && min === 0) return -0;
    if (r < 0.3) return min + rand() * (max - min);
    if (r < 0.6) return Math.round((min + rand() * (max - min) * 0.05) * 100) / 100;
    return Math.round((min + (max - min) * (0.02 + rand() * 0.03)) * 10) / 10;
  };
  const command = (): Command =>
    pick<Command>([
      {
        type: "putRule",
        rule: {
          id: pick(["u1", "u2", "default-co2", "default-pm"]), channel: pick(CHANNELS), direction: pick(["above", "below"] as const),
          enter: Math.round(rand() * 60), exit: Math.round(rand() * 30), minDurationMs: pick([0, MIN, 10 * MIN]), clearDurationMs: pick([0, MIN, 10 * MIN]),
        },
      },
      { type: "deleteRule", ruleId: pick(["u1", "u2", "default-voc", "default-allpollu"]) },
      {
        type: "subscribe",
        subscription: {
          id: pick(["s1", "s2"]), provider: pick(["webhook", "push", "thermostat"] as const), target: "https://example.com/h",
          match: rand() < 0.5 ? {} : { kinds: ["event.start", "event.end"], channels: ["co2", "pm", "device"] },
        },
      },
      { type: "unsubscribe", subscriptionId: pick(["s1", "s2"]) },
      { type: "recalibrate", channel: pick(["co2", "voc"] as const) },
      rand() < 0.3 ? { type: "reset" } : { type: "recalibrate", channel: "voc" },
    ]);
  let t = Date.UTC(2015, 1, 2) + Math.floor(rand() * 3 * DAY);
  let wall = t;
  const segments: TwinInput[][] = [];
  for (let s = 0; s < 6; s++) {
    const seg: TwinInput[] = [];
    for (let step = 0; step < 25; step++) {
      const r = rand();
      if (withCommands && r < 0.08) {
        seg.push({ type: "command", command: command(), at: wall });
        continue;
      }
      if (r < 0.11) {
        seg.push({ type: "tick", now: (wall += Math.floor(rand() * HOUR)) });
        continue;
      }
      const readings: Reading[] = [];
      for (let i = 0, n = 1 + Math.floor(rand() * 40); i < n; i++) {
        const g = rand();
        if (g < 0.02) t += Math.floor(rand() * 10 * DAY);
        else if (g < 0.05) t += Math.floor(rand() * 5 * HOUR);
        else if (g < 0.08) t -= Math.floor(rand() * 10 * MIN);
        else if (g >= 0.1) t += 1000 + Math.floor(rand() * 15 * MIN);
        const reading: Reading = { t };
        CHANNELS.forEach((ch, ci) => {
          if (rand() < (presence[ci] as number)) reading[ch] = value(ch);
        });
        if (Object.keys(reading).length === 1) reading.co2 = value("co2");
        readings.push(reading);
      }
      wall = Math.max(wall, t) + Math.floor(rand() * MIN);
      seg.push({ type: "readings", readings, receivedAt: wall });
    }
    segments.push(seg);
  }
  return { name: `gappy-${seed}${withCommands ? "-commands" : ""}`, segments };
}

/** Three weeks of co2 with a drifting low, so lows, baseline and the co2 offset all move; then silence. */
function calibrating(): CorpusTwin {
  const rand = rng(77);
  const start = Date.UTC(2024, 5, 3, 0, 7);
  const segments: TwinInput[][] = [];
  for (let week = 0; week < 3; week++) {
    const seg: TwinInput[] = [];
    for (let d = 0; d < 7; d++) {
      const readings: Reading[] = [];
      for (let k = 0; k < 96; k++) {
        const t = start + (week * 7 + d) * DAY + k * 15 * MIN;
        readings.push({ t, co2: Math.round(380 + week * 20 + rand() * 900), voc: Math.round(50 + rand() * 400) });
      }
      seg.push({ type: "readings", readings, receivedAt: (readings.at(-1) as Reading).t });
    }
    segments.push(seg);
  }
  const later = start + 40 * DAY;
  segments.push([{ type: "readings", readings: [{ t: later, co2: 420, tmp: -12.5 }], receivedAt: later }]);
  return { name: "calibrating", segments };
}

/** The corpus (deterministic: the same inputs on every run). */
export function goldenCorpus(): CorpusTwin[] {
  return [
    { name: "never-read", segments: [[], [{ type: "tick", now: 1_700_000_000_000 }]] },
    week5min(1),
    week5min(2),
    gappy(11, false),
    gappy(12, false),
    gappy(21, true),
    gappy(22, true),
    gappy(23, true),
    calibrating(),
  ];
}

/** Replays a corpus twin, calling `checkpoint` with the state after each segment. */
export function replayCorpusTwin(twin: CorpusTwin, checkpoint: (state: TwinState, index: number) => void): void {
  const state = createTwin(`golden-${twin.name}`);
  twin.segments.forEach((seg, i) => {
    for (const input of seg) applyInput(state, input);
    checkpoint(state, i);
  });
}

/** cyrb53, a 53-bit string hash (the domain has no crypto), as 14 hex digits. */
export function hash53(bytes: Uint8Array): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}
