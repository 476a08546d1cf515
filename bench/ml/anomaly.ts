// Anomaly evaluation: the twin's detector (alerts of kind `anomaly`) and NAB's windowed-Gaussian
// baseline on the same labelled series, scored NAB-style per (device, channel) series, and both
// detectors' false alarms per device-week on the clean series.

import { applyInput, createTwin } from "../../actors/device-twin/domain/mod.ts";
import { CHANNELS } from "../../actors/device-twin/domain/types.ts";
import type { Channel, Reading } from "../../actors/device-twin/domain/types.ts";
import type { LabelledSeries } from "./inject.ts";
import type { NabSeries } from "./nab.ts";
import type { DeviceSeries } from "./series.ts";

const HOUR = 3_600_000;
/** Alarms in a series' first PROBATION_MS are not scored (both detectors are still learning; NAB's probationary period). */
export const PROBATION_MS = 36 * HOUR;

/** Alarm times per channel of one device. */
export type Detections = Partial<Record<Channel, number[]>>;

/** The twin: a fresh twin fed the series an upload (one reading) at a time; its anomaly alerts. */
export function twinDetections(readings: readonly Reading[]): Detections {
  const twin = createTwin("bench");
  const out: Detections = {};
  for (const r of readings) {
    for (const o of applyInput(twin, { type: "readings", readings: [r], receivedAt: r.t }).outputs) {
      if (o.type !== "alert" || o.alert.kind !== "anomaly") continue;
      (out[o.alert.channel as Channel] ??= []).push(o.alert.at);
    }
  }
  return out;
}

/**
 * NAB's windowed Gaussian (window 6400 readings, as in NAB): a reading whose |z| against the mean and
 * standard deviation of the channel's previous readings in the window is ≥ `threshold` is an alarm, at
 * most one per channel per hour (the twin's own limit, which only helps the baseline).
 */
export function gaussianDetections(readings: readonly Reading[], threshold: number, window = 6400): Detections {
  const out: Detections = {};
  for (const ch of CHANNELS) {
    const ring = new Float64Array(window);
    let n = 0, sum = 0, sumSq = 0, head = 0, lastAlarm = -Infinity;
    for (const r of readings) {
      const x = r[ch];
      if (x === undefined) continue;
      if (n >= 30) {
        const mean = sum / n;
        const sd = Math.sqrt(Math.max(0, sumSq / n - mean * mean));
        if (sd > 0 && Math.abs(x - mean) / sd >= threshold && r.t - lastAlarm >= HOUR) {
          (out[ch] ??= []).push(r.t);
          lastAlarm = r.t;
        }
      }
      if (n === window) {
        const old = ring[head] as number;
        sum -= old;
        sumSq -= old * old;
      } else n++;
      ring[head] = x;
      head = (head + 1) % window;
      sum += x;
      sumSq += x * x;
    }
  }
  return out;
}

/** NAB series of a labelled device for a detector's alarms (after probation). */
export function nabSeries(device: LabelledSeries, detections: Detections): NabSeries[] {
  const first = device.readings[0]?.t ?? 0;
  return CHANNELS.filter((ch) => device.readings.some((r) => r[ch] !== undefined)).map((ch) => ({
    times: device.readings.filter((r) => r[ch] !== undefined && r.t >= first + PROBATION_MS).map((r) => r.t),
    labels: device.labels.filter((l) => l.channel === ch),
    detections: (detections[ch] ?? []).filter((t) => t >= first + PROBATION_MS),
  }));
}

/** Alarms after probation and device-weeks after probation, on clean series. */
export function falseAlarms(devices: readonly DeviceSeries[], detect: (readings: readonly Reading[]) => Detections): { alarms: number; deviceWeeks: number; byReason?: Record<string, number> } {
  let alarms = 0, deviceWeeks = 0;
  for (const d of devices) {
    const first = d.readings[0]!.t;
    const last = d.readings[d.readings.length - 1]!.t;
    deviceWeeks += Math.max(0, last - first - PROBATION_MS) / (7 * 24 * HOUR);
    for (const times of Object.values(detect(d.readings))) alarms += (times ?? []).filter((t) => t >= first + PROBATION_MS).length;
  }
  return { alarms, deviceWeeks };
}
