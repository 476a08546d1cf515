// A deliberately naive reference of docs/design.md §4's pollution events, for differential tests of the twin:
// one rule, the whole (t, value) series in memory, peak and mean recomputed from the series itself.
import type { Rule } from "../../actors/device-twin/domain/types.ts";

export interface RefPoint {
  t: number;
  v: number;
}

/** One event as the reference sees it; `endedAt` etc. only once it ended. */
export interface RefEvent {
  startedAt: number;
  /** t of the reading that emitted the start. */
  startAt: number;
  startValue: number;
  endedAt?: number;
  /** t of the reading that emitted the end. */
  endAt?: number;
  peak?: number;
  mean?: number;
}

/** Replays `points` (increasing t, only readings carrying the rule's channel) through `rule`. */
export function referenceEvents(rule: Rule, points: readonly RefPoint[]): RefEvent[] {
  const over = (v: number) => (rule.direction === "above" ? v >= rule.enter : v <= rule.enter);
  const under = (v: number) => (rule.direction === "above" ? v <= rule.exit : v >= rule.exit);
  const events: RefEvent[] = [];
  let state = "normal";
  let t0 = 0;
  let t1 = 0;
  for (const { t, v } of points) {
    if (state === "normal") {
      if (!over(v)) continue;
      state = "pending";
      t0 = t;
    }
    if (state === "pending") {
      if (!over(v)) state = "normal";
      else if (t - t0 >= rule.minDurationMs) {
        state = "active";
        events.push({ startedAt: t0, startAt: t, startValue: v });
      }
      continue;
    }
    if (state === "active") {
      if (!under(v)) continue;
      state = "clearing";
      t1 = t;
    }
    if (state === "clearing") {
      if (!under(v)) state = "active";
      else if (t - t1 >= rule.clearDurationMs) {
        state = "normal";
        const values = points.filter((p) => p.t >= t0 && p.t < t1).map((p) => p.v);
        const ev = events[events.length - 1]!;
        ev.endedAt = t1;
        ev.endAt = t;
        ev.peak = rule.direction === "above" ? Math.max(...values) : Math.min(...values);
        ev.mean = values.reduce((a, b) => a + b, 0) / values.length;
      }
    }
  }
  return events;
}
