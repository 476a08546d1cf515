// A deliberately naive reference of the twin statistics (docs/design.md §4): plain arrays, everything recomputed
// from scratch. Tests compare the packed implementation in actors/device-twin/domain/stats.ts with it.

import { CHANNELS, type Channel, type Reading } from "../../actors/device-twin/domain/types.ts";

export const HOUR = 3_600_000;
export const DAY = 86_400_000;
const TAU = 3_600_000;

export interface RefBucket {
  start: number;
  count: number;
  mean: number;
  min: number;
  max: number;
  topMaxMean?: number;
  topMinMean?: number;
}

export interface RefChannel {
  count: number;
  mean: number;
  variance: number;
  min: number;
  minAt: number;
  max: number;
  maxAt: number;
  last: number;
  lastAt: number;
  ewma: number;
  maxAbs: number;
  hourly: RefBucket[];
  daily: RefBucket[];
}

/** What the caller (twin.ts) applies: only readings newer than the last applied one. */
export function acceptInOrder(readings: readonly Reading[]): Reading[] {
  const out: Reading[] = [];
  let lastT = -Infinity;
  for (const r of readings) {
    if (r.t > lastT) {
      out.push(r);
      lastT = r.t;
    }
  }
  return out;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function bucket(start: number, xs: number[], withTop: boolean): RefBucket {
  const b: RefBucket = { start, count: xs.length, mean: mean(xs), min: Math.min(...xs), max: Math.max(...xs) };
  if (withTop) {
    const sorted = [...xs].sort((a, b) => a - b);
    b.topMinMean = mean(sorted.slice(0, 5));
    b.topMaxMean = mean(sorted.slice(-5));
  }
  return b;
}

/** Statistics of one channel over accepted readings; undefined when no reading carries it. */
export function refChannel(accepted: readonly Reading[], ch: Channel): RefChannel | undefined {
  const pts = accepted.filter((r) => r[ch] !== undefined).map((r) => ({ t: r.t, x: (r[ch] as number) + 0 }));
  if (pts.length === 0) return undefined;
  const xs = pts.map((p) => p.x);
  const m = mean(xs);
  let min = pts[0]!;
  let max = pts[0]!;
  for (const p of pts) {
    if (p.x < min.x) min = p;
    if (p.x > max.x) max = p;
  }
  let ewma = xs[0]!;
  for (let i = 1; i < pts.length; i++) ewma += (1 - Math.exp(-(pts[i]!.t - pts[i - 1]!.t) / TAU)) * (pts[i]!.x - ewma);
  const latest = accepted[accepted.length - 1]!.t;
  const curHour = Math.floor(latest / HOUR);
  const curDay = Math.floor(latest / DAY);
  const hourly: RefBucket[] = [];
  for (let h = curHour - 23; h <= curHour; h++) {
    const inside = pts.filter((p) => Math.floor(p.t / HOUR) === h).map((p) => p.x);
    if (inside.length > 0) hourly.push(bucket(h * HOUR, inside, false));
  }
  const daily: RefBucket[] = [];
  for (let d = curDay - 6; d <= curDay; d++) {
    const inside = pts.filter((p) => Math.floor(p.t / DAY) === d).map((p) => p.x);
    if (inside.length > 0) daily.push(bucket(d * DAY, inside, true));
  }
  const last = pts[pts.length - 1]!;
  return {
    count: pts.length,
    mean: m,
    variance: xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length,
    min: min.x,
    minAt: min.t,
    max: max.x,
    maxAt: max.t,
    last: last.x,
    lastAt: last.t,
    ewma,
    maxAbs: Math.max(...xs.map(Math.abs)),
    hourly,
    daily,
  };
}

export interface RefAggregate {
  id: string;
  resolution: "hour" | "day";
  start: number;
  channels: Partial<Record<Channel, RefBucket>>;
}

/** Closed buckets in emission order: each reading that opens a later hour (day) closes the previous one. */
export function refAggregates(accepted: readonly Reading[], deviceId: string): RefAggregate[] {
  const out: RefAggregate[] = [];
  const close = (resolution: "hour" | "day", start: number, rs: Reading[]): void => {
    const channels: Partial<Record<Channel, RefBucket>> = {};
    for (const ch of CHANNELS) {
      const xs = rs.filter((r) => r[ch] !== undefined).map((r) => (r[ch] as number) + 0);
      if (xs.length > 0) channels[ch] = bucket(start, xs, resolution === "day");
    }
    out.push({ id: `${deviceId}:${resolution}:${start}`, resolution, start, channels });
  };
  for (let i = 1; i < accepted.length; i++) {
    const prev = accepted[i - 1]!.t;
    const t = accepted[i]!.t;
    if (Math.floor(t / HOUR) > Math.floor(prev / HOUR)) {
      const h = Math.floor(prev / HOUR);
      close("hour", h * HOUR, accepted.slice(0, i).filter((r) => Math.floor(r.t / HOUR) === h));
    }
    if (Math.floor(t / DAY) > Math.floor(prev / DAY)) {
      const d = Math.floor(prev / DAY);
      close("day", d * DAY, accepted.slice(0, i).filter((r) => Math.floor(r.t / DAY) === d));
    }
  }
  return out;
}

export interface RefCalibrationChange {
  channel: "co2" | "voc";
  at: number;
  baseline?: number;
  offset: number;
}

/**
 * Calibration per docs/design.md §4 with the calendar-window decision: a day's low is the mean of its ≤ 5 lowest
 * values at 1 ppm/ppb resolution (Math.round), the baseline the min of the lows of days D−7 … D−1.
 * `recalibrations.get(i)`: channels recalibrated just before accepted[i] (lows of closed days forgotten,
 * baseline undefined, offset 0); the changes recalibrate() itself returns are not listed.
 */
export function refCalibration(accepted: readonly Reading[], recalibrations: ReadonlyMap<number, ReadonlyArray<"co2" | "voc">> = new Map()): RefCalibrationChange[] {
  const out: RefCalibrationChange[] = [];
  const lows: Record<"co2" | "voc", Map<number, number>> = { co2: new Map(), voc: new Map() };
  const state = { co2: { baseline: undefined as number | undefined, offset: 0 }, voc: { baseline: undefined as number | undefined, offset: 0 } };
  for (let i = 1; i < accepted.length; i++) {
    for (const ch of recalibrations.get(i) ?? []) {
      lows[ch].clear();
      state[ch] = { baseline: undefined, offset: 0 };
    }
    const closed = Math.floor(accepted[i - 1]!.t / DAY);
    const now = Math.floor(accepted[i]!.t / DAY);
    if (now <= closed) continue;
    for (const ch of ["co2", "voc"] as const) {
      const xs = accepted
        .slice(0, i)
        .filter((r) => Math.floor(r.t / DAY) === closed && r[ch] !== undefined)
        .map((r) => Math.round(r[ch] as number))
        .sort((a, b) => a - b)
        .slice(0, 5);
      if (xs.length > 0) lows[ch].set(closed, xs.reduce((a, b) => a + b, 0) / xs.length);
      const window = [...lows[ch]].filter(([d]) => d >= now - 7 && d <= now - 1).map(([, low]) => low);
      const baseline = window.length > 0 ? Math.min(...window) : undefined;
      let offset = state[ch].offset;
      if (ch === "co2" && baseline !== undefined) {
        const target = 400 - baseline;
        offset = Math.abs(target - offset) <= 30 ? target : offset + 30 * Math.sign(target - offset);
      }
      if (baseline !== state[ch].baseline || offset !== state[ch].offset) {
        state[ch] = { baseline, offset };
        out.push({ channel: ch, at: accepted[i]!.t, offset, ...(baseline === undefined ? {} : { baseline }) });
      }
    }
  }
  return out;
}
