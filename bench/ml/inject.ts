// The labelled anomaly generator: injects spikes, stuck segments and drifts into clean series, and
// dropouts (gaps with no readings: not anomalies to report, but a detector must not raise false alarms
// after them). Seeded; each injected anomaly is a label {channel, start, end, kind}.

import type { AnomalyReason, Channel, Reading } from "../../actors/device-twin/domain/types.ts";
import { CHANNEL_RANGES } from "../../actors/device-twin/domain/types.ts";
import { createRandom } from "../../sim/model/random.ts";
import type { DeviceSeries } from "./series.ts";

/** One injected anomaly: readings with t in [start, end] of `channel` were altered. */
export interface AnomalyLabel {
  channel: Channel;
  kind: AnomalyReason;
  start: number;
  end: number;
}

export interface LabelledSeries extends DeviceSeries {
  labels: AnomalyLabel[];
}

const HOUR = 3_600_000;

/** Typical spread of a channel's values in a series (median absolute deviation × 1.4826, floored). */
function spread(readings: readonly Reading[], ch: Channel): number {
  const xs = readings.map((r) => r[ch]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const med = xs[Math.floor(xs.length / 2)] ?? 0;
  const dev = xs.map((x) => Math.abs(x - med)).sort((a, b) => a - b);
  return Math.max(1.4826 * (dev[Math.floor(dev.length / 2)] ?? 0), ch === "tmp" ? 0.3 : ch === "hum" ? 1 : 5);
}

const clamp = (ch: Channel, x: number): number => Math.min(CHANNEL_RANGES[ch].max, Math.max(CHANNEL_RANGES[ch].min, x));
const resolution = (ch: Channel): number => (ch === "tmp" ? 100 : ch === "hum" || ch === "pm" || ch === "allpollu" ? 10 : 1);
const quantize = (ch: Channel, x: number): number => Math.round(clamp(ch, x) * resolution(ch)) / resolution(ch);

/**
 * Injects `perChannelWeek` anomalies per channel and week (kinds in turn: spike, stuck, drift), after
 * `warmUpMs` (the detectors' learning time), at least 12 h apart, plus `dropoutsPerWeek` gaps of 1–6 h.
 */
export function injectAnomalies(series: DeviceSeries, seed: number, options: { perChannelWeek?: number; dropoutsPerWeek?: number; warmUpMs?: number } = {}): LabelledSeries {
  const rand = createRandom(seed);
  const readings = series.readings.map((r) => ({ ...r }));
  const first = readings[0]!.t;
  const last = readings[readings.length - 1]!.t;
  const weeks = (last - first) / (7 * 24 * HOUR);
  const warmUp = options.warmUpMs ?? 36 * HOUR;
  const channels = (Object.keys(CHANNEL_RANGES) as Channel[]).filter((ch) => readings.some((r) => r[ch] !== undefined));
  const labels: AnomalyLabel[] = [];
  const kinds: AnomalyReason[] = ["spike", "stuck", "drift"];
  const idxAt = (t: number): number => {
    let lo = 0, hi = readings.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (readings[mid]!.t < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  for (const ch of channels) {
    const s = spread(series.readings, ch);
    const n = Math.max(1, Math.round((options.perChannelWeek ?? 3) * weeks));
    const taken: number[] = [];
    for (let k = 0; k < n; k++) {
      const kind = kinds[(k + channels.indexOf(ch)) % kinds.length]!;
      let start = 0;
      for (let attempt = 0; attempt < 50; attempt++) {
        start = first + warmUp + rand.next() * (last - first - warmUp - 14 * HOUR);
        if (taken.every((t) => Math.abs(t - start) > 14 * HOUR)) break;
      }
      taken.push(start);
      const i0 = idxAt(start);
      const base = readings[i0]!;
      if (base[ch] === undefined) continue;
      if (kind === "spike") {
        // a one-reading jump of 6–12 typical spreads, up (or down when that leaves the range)
        const jump = (6 + 6 * rand.next()) * s;
        const up = clamp(ch, (base[ch] as number) + jump) - (base[ch] as number) > jump / 2;
        base[ch] = quantize(ch, (base[ch] as number) + (up ? jump : -jump));
        labels.push({ channel: ch, kind, start: base.t, end: base.t });
      } else if (kind === "stuck") {
        // the sensor repeats one value for 3–8 h
        const end = base.t + (3 + 5 * rand.next()) * HOUR;
        const v = base[ch] as number;
        let i = i0;
        for (; i < readings.length && readings[i]!.t <= end; i++) if (readings[i]![ch] !== undefined) readings[i]![ch] = v;
        labels.push({ channel: ch, kind, start: base.t, end: readings[i - 1]!.t });
      } else {
        // a drift: an offset growing linearly to 3–5 spreads over 6–12 h, then held for as long again
        const rampMs = (6 + 6 * rand.next()) * HOUR;
        const size = (3 + 2 * rand.next()) * s * (rand.next() < 0.5 ? -1 : 1);
        let i = i0;
        for (; i < readings.length && readings[i]!.t <= base.t + 2 * rampMs; i++) {
          const r = readings[i]!;
          if (r[ch] === undefined) continue;
          r[ch] = quantize(ch, (r[ch] as number) + size * Math.min(1, (r.t - base.t) / rampMs));
        }
        labels.push({ channel: ch, kind, start: base.t, end: readings[i - 1]!.t });
      }
    }
  }
  // dropouts: remove 1–6 h of readings, away from labelled anomalies
  const drop = new Set<number>();
  for (let k = 0, n = Math.round((options.dropoutsPerWeek ?? 2) * weeks); k < n; k++) {
    const start = first + warmUp + rand.next() * (last - first - warmUp - 6 * HOUR);
    const end = start + (1 + 5 * rand.next()) * HOUR;
    if (labels.some((l) => l.end >= start - 2 * HOUR && l.start <= end + 2 * HOUR)) continue;
    for (let i = idxAt(start); i < readings.length && readings[i]!.t < end; i++) drop.add(i);
  }
  return { name: series.name, readings: readings.filter((_, i) => !drop.has(i)), labels: labels.sort((a, b) => a.start - b.start) };
}
