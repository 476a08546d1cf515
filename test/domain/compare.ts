// Comparison helpers: the packed statistics against the reference, with the documented tolerances
// (relative 1e-9 for exact statistics, half a quantum for values stored at QUANTUM resolution).

import { expect } from "vitest";
import { QUANTUM, type BucketView, type ChannelView } from "../../actors/device-twin/domain/stats.ts";
import type { Channel } from "../../actors/device-twin/domain/types.ts";
import { DAY, HOUR, type RefBucket, type RefChannel } from "./reference.ts";

/** |a − b| ≤ 1e-9 · max(|a|, |b|, scale): relative, with the channel's magnitude as the floor. */
export function expectExact(actual: number, expected: number, scale: number, what: string): void {
  const tol = 1e-9 * Math.max(Math.abs(actual), Math.abs(expected), scale, 1e-300);
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}

/** Within half the channel's quantum (plus float noise). */
export function expectQuantized(ch: Channel, actual: number | undefined, expected: number | undefined, what: string): void {
  expect(actual, what).toBeTypeOf("number");
  const half = 0.5 / QUANTUM[ch].scale;
  expect(Math.abs((actual as number) - (expected as number)), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(half + 1e-9 * Math.max(1, Math.abs(expected as number)));
}

/**
 * Closed buckets: mean/min/max quantized. Open buckets (the current hour/day) keep an exact mean.
 * `exactMean` also applies to emitted aggregates, which carry the exact mean of the bucket.
 */
export function expectBucket(ch: Channel, actual: BucketView, expected: RefBucket, exactMean: boolean, scale: number, what: string): void {
  expect(actual.start, `${what} start`).toBe(expected.start);
  expect(actual.count, `${what} count`).toBe(expected.count);
  if (exactMean) expectExact(actual.mean, expected.mean, scale, `${what} mean`);
  else expectQuantized(ch, actual.mean, expected.mean, `${what} mean`);
  expectQuantized(ch, actual.min, expected.min, `${what} min`);
  expectQuantized(ch, actual.max, expected.max, `${what} max`);
  if (expected.topMaxMean !== undefined) {
    expectQuantized(ch, actual.topMaxMean, expected.topMaxMean, `${what} topMaxMean`);
    expectQuantized(ch, actual.topMinMean, expected.topMinMean, `${what} topMinMean`);
  } else {
    expect(actual.topMaxMean, `${what} topMaxMean`).toBeUndefined();
  }
}

/** Every statistic of one channel; buckets of the device's current hour/day (from latestT) are open. */
export function expectChannel(ch: Channel, actual: ChannelView | undefined, expected: RefChannel | undefined, latestT: number): void {
  if (expected === undefined) {
    expect(actual, `${ch} absent`).toBeUndefined();
    return;
  }
  expect(actual, `${ch} present`).toBeDefined();
  const a = actual as ChannelView;
  const s = expected.maxAbs;
  expect(a.count, `${ch} count`).toBe(expected.count);
  expectExact(a.mean, expected.mean, s, `${ch} mean`);
  // Variance rather than stddev: its rounding error is bounded by ~n·ε·mean², which sqrt would amplify near 0.
  const variance = a.stddev ** 2;
  expect(Math.abs(variance - expected.variance), `${ch} variance ${variance} vs ${expected.variance}`).toBeLessThanOrEqual(1e-9 * expected.variance + 1e-12 * (expected.mean ** 2 + 1));
  expect(a.min, `${ch} min`).toBe(expected.min);
  expect(a.minAt, `${ch} minAt`).toBe(expected.minAt);
  expect(a.max, `${ch} max`).toBe(expected.max);
  expect(a.maxAt, `${ch} maxAt`).toBe(expected.maxAt);
  expect(a.last, `${ch} last`).toBe(expected.last);
  expect(a.lastAt, `${ch} lastAt`).toBe(expected.lastAt);
  expectExact(a.ewma, expected.ewma, s, `${ch} ewma`);
  expect(a.hourly.map((b) => b.start), `${ch} hourly starts`).toEqual(expected.hourly.map((b) => b.start));
  expect(a.daily.map((b) => b.start), `${ch} daily starts`).toEqual(expected.daily.map((b) => b.start));
  const openHour = Math.floor(latestT / HOUR) * HOUR;
  const openDay = Math.floor(latestT / DAY) * DAY;
  expected.hourly.forEach((b, i) => expectBucket(ch, a.hourly[i]!, b, b.start === openHour, s, `${ch} hourly[${i}]`));
  expected.daily.forEach((b, i) => expectBucket(ch, a.daily[i]!, b, b.start === openDay, s, `${ch} daily[${i}]`));
}
