// What every peer keeps per device, computed the same way by each (the Redis peer's Lua script is the
// same arithmetic): per channel count, mean, stddev (Welford's running M2), min, max and an EWMA, and
// the pm pollution events (enter above 25 µg/m³, leave below 20: hysteresis, as airtwin's rules do).
import { CHANNELS, type Channel, type Reading } from "../../actors/device-twin/domain/types.ts";

export { CHANNELS, type Channel };
export const EWMA_ALPHA = 0.1;
export const PM_ENTER = 25;
export const PM_EXIT = 20;

export interface ChannelStats {
  count: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
  ewma: number;
}

export interface DeviceStats {
  channels: Record<Channel, ChannelStats>;
  /** The pm event in progress: when it started (reading time), its peak; null when the air is clean. */
  pmEvent: { since: number; peak: number } | null;
}

/** A pm pollution event that started or ended with a request's readings. */
export interface PollutionEvent {
  kind: "start" | "end";
  t: number;
  /** pm at the start; the event's peak at the end. */
  value: number;
}

export function emptyStats(): DeviceStats {
  const channels = {} as Record<Channel, ChannelStats>;
  for (const c of CHANNELS) channels[c] = { count: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity, ewma: 0 };
  return { channels, pmEvent: null };
}

/** Applies a request's readings (in time order) and returns the events they started or ended. */
export function applyReadings(s: DeviceStats, readings: readonly Reading[]): PollutionEvent[] {
  const events: PollutionEvent[] = [];
  for (const r of readings) {
    for (const c of CHANNELS) {
      const x = r[c];
      if (x === undefined) continue;
      const st = s.channels[c];
      st.count++;
      const d = x - st.mean;
      st.mean += d / st.count;
      st.m2 += d * (x - st.mean);
      if (x < st.min) st.min = x;
      if (x > st.max) st.max = x;
      st.ewma = st.count === 1 ? x : st.ewma + EWMA_ALPHA * (x - st.ewma);
    }
    const pm = r.pm;
    if (pm === undefined) continue;
    if (s.pmEvent === null && pm > PM_ENTER) {
      s.pmEvent = { since: r.t, peak: pm };
      events.push({ kind: "start", t: r.t, value: pm });
    } else if (s.pmEvent !== null) {
      if (pm > s.pmEvent.peak) s.pmEvent.peak = pm;
      if (pm < PM_EXIT) {
        events.push({ kind: "end", t: r.t, value: s.pmEvent.peak });
        s.pmEvent = null;
      }
    }
  }
  return events;
}

export function stddev(st: ChannelStats): number {
  return st.count > 1 ? Math.sqrt(st.m2 / (st.count - 1)) : 0;
}
