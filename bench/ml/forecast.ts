// Forecast evaluation: the twin's 30-minute forecast (what its view shows right after each reading)
// against persistence (the last value) and seasonal-naive (the value 24 h before the target time), on
// the same points; and forecast alerts against the rules' event.start alerts that follow them.

import { channelLearnedView } from "../../actors/device-twin/domain/learned/learned-state.ts";
import { applyInput, createTwin } from "../../actors/device-twin/domain/mod.ts";
import type { Alert, Channel, Reading } from "../../actors/device-twin/domain/types.ts";
import type { DeviceSeries } from "./series.ts";

const MIN = 60_000;
const HORIZON_MS = 30 * MIN;

/** Sums of absolute errors of the three forecasters over the points where all three exist. */
export interface ForecastErrors {
  points: number;
  twin: number;
  persistence: number;
  seasonalNaive: number;
}

/** The value of `ch` at time t (a reading within `tolMs`), by binary search over `times`. */
function valueAt(readings: readonly Reading[], ch: Channel, t: number, tolMs: number): number | undefined {
  let lo = 0, hi = readings.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (readings[mid]!.t < t) lo = mid + 1;
    else hi = mid;
  }
  for (const i of [lo - 1, lo]) {
    const r = readings[i];
    if (r !== undefined && Math.abs(r.t - t) <= tolMs && r[ch] !== undefined) return r[ch];
  }
  return undefined;
}

/** 30-minute forecast errors per channel of one device (readings one upload at a time). */
export function forecastErrors(device: DeviceSeries, channels: readonly Channel[]): Record<string, ForecastErrors> {
  const twin = createTwin("bench");
  const out: Record<string, ForecastErrors> = {};
  for (const ch of channels) out[ch] = { points: 0, twin: 0, persistence: 0, seasonalNaive: 0 };
  const rs = device.readings;
  const tol = Math.max(45_000, (rs.length > 1 ? (rs[rs.length - 1]!.t - rs[0]!.t) / (rs.length - 1) : 0) / 2);
  for (const r of rs) {
    applyInput(twin, { type: "readings", readings: [r], receivedAt: r.t });
    for (const ch of channels) {
      const x = r[ch];
      if (x === undefined) continue;
      const actual = valueAt(rs, ch, r.t + HORIZON_MS, tol);
      const lastDay = valueAt(rs, ch, r.t + HORIZON_MS - 86_400_000, tol);
      if (actual === undefined || lastDay === undefined) continue;
      const predicted = channelLearnedView(twin.learned, ch, r.t)?.forecast[1]?.value;
      if (predicted === undefined) continue;
      const e = out[ch]!;
      e.points++;
      e.twin += Math.abs(predicted - actual);
      e.persistence += Math.abs(x - actual);
      e.seasonalNaive += Math.abs(lastDay - actual);
    }
  }
  return out;
}

/** Forecast alerts and the event starts of the same rule on a fleet. */
export interface ForecastAlertScore {
  alerts: number;
  /** Alerts followed by an event.start of their rule within `matchMs`. */
  truePositives: number;
  eventStarts: number;
  /** Event starts with a forecast alert of their rule in the `matchMs` before. */
  forewarned: number;
  /** event.start − forecast alert, per true positive (ms). */
  leadMs: number[];
}

export function forecastAlertScore(devices: readonly DeviceSeries[], matchMs = 60 * MIN): ForecastAlertScore {
  const score: ForecastAlertScore = { alerts: 0, truePositives: 0, eventStarts: 0, forewarned: 0, leadMs: [] };
  for (const d of devices) {
    const twin = createTwin("bench");
    const forecasts: Alert[] = [];
    const starts: Alert[] = [];
    for (const r of d.readings) {
      for (const o of applyInput(twin, { type: "readings", readings: [r], receivedAt: r.t }).outputs) {
        if (o.type !== "alert") continue;
        if (o.alert.kind === "forecast") forecasts.push(o.alert);
        else if (o.alert.kind === "event.start") starts.push(o.alert);
      }
    }
    score.alerts += forecasts.length;
    score.eventStarts += starts.length;
    for (const f of forecasts) {
      const start = starts.find((s) => s.ruleId === f.ruleId && s.at >= f.at && s.at - f.at <= matchMs);
      if (start === undefined) continue;
      score.truePositives++;
      score.leadMs.push(start.at - f.at);
    }
    for (const s of starts) if (forecasts.some((f) => f.ruleId === s.ruleId && f.at <= s.at && s.at - f.at <= matchMs)) score.forewarned++;
  }
  return score;
}
