import { describe, expect, it } from "vitest";
import {
  applyReadingToStats,
  channelView,
  cloneStats,
  createStats,
  resetStats,
  statsEqual,
  statsLatestT,
  type ChannelView,
  type TwinStats,
} from "./stats.ts";
import type { ClosedAggregate, Reading } from "./types.ts";

const H = 3_600_000;
const D = 86_400_000;
const DAY0 = Date.UTC(2024, 0, 1); // a Monday, 00:00:00.000 UTC
const DEV = "dev-1";

function run(readings: Reading[], stats: TwinStats = createStats()): { stats: TwinStats; aggregates: ClosedAggregate[] } {
  const aggregates: ClosedAggregate[] = [];
  for (const r of readings) aggregates.push(...applyReadingToStats(stats, DEV, r).aggregates);
  return { stats, aggregates };
}

const view = (s: TwinStats, ch: "pm" | "co2" | "tmp" = "co2"): ChannelView => channelView(s, ch) as ChannelView;

describe("hour and day roll-over", () => {
  it("a reading at exactly :00:00.000 opens the next hour and closes the previous one", () => {
    const stats = createStats();
    expect(applyReadingToStats(stats, DEV, { t: DAY0 + 10 * H, co2: 400 }).aggregates).toEqual([]);
    expect(applyReadingToStats(stats, DEV, { t: DAY0 + 11 * H - 1, co2: 500 }).aggregates).toEqual([]);
    const { aggregates } = applyReadingToStats(stats, DEV, { t: DAY0 + 11 * H, co2: 600 });
    expect(aggregates).toEqual([
      { id: `${DEV}:hour:${DAY0 + 10 * H}`, deviceId: DEV, resolution: "hour", start: DAY0 + 10 * H, channels: { co2: { start: DAY0 + 10 * H, count: 2, mean: 450, min: 400, max: 500 } } },
    ]);
    expect(view(stats).hourly.map((b) => [b.start, b.count])).toEqual([
      [DAY0 + 10 * H, 2],
      [DAY0 + 11 * H, 1],
    ]);
  });

  it.each([
    ["1 h", H, [0, 1]],
    ["23 h", 23 * H, [0, 23]],
    ["23:59:59.999 later", 24 * H - 1, [0, 23]],
    ["exactly 24 h", 24 * H, [24]],
    ["30 h", 30 * H, [30]],
    ["10 days", 10 * D, [240]],
  ])("hourly window after a gap of %s", (_name, gap, hours) => {
    const { stats } = run([
      { t: DAY0, co2: 400 },
      { t: DAY0 + gap, co2: 500 },
    ]);
    expect(view(stats).hourly.map((b) => (b.start - DAY0) / H)).toEqual(hours);
    expect(view(stats).count).toBe(2);
  });

  it.each([
    ["1 day", D, [0, 1]],
    ["6 days 23:59:59.999", 7 * D - 1, [0, 6]],
    ["exactly 7 days", 7 * D, [7]],
    ["30 days", 30 * D, [30]],
  ])("daily window after a gap of %s", (_name, gap, days) => {
    const { stats } = run([
      { t: DAY0 + 5 * H, co2: 400 },
      { t: DAY0 + gap, co2: 500 },
    ]);
    expect(view(stats).daily.map((b) => Math.floor((b.start - DAY0) / D))).toEqual(days);
  });

  it("a gap closes only the open hour (and day); empty buckets emit nothing", () => {
    const { aggregates } = run([
      { t: DAY0 + 23 * H, co2: 400 },
      { t: DAY0 + 3 * D + 2 * H, co2: 500 },
    ]);
    expect(aggregates.map((a) => a.id)).toEqual([`${DEV}:hour:${DAY0 + 23 * H}`, `${DEV}:day:${DAY0}`]);
  });

  it("a ring slot reused after exactly 24 h / 7 days holds only the new bucket", () => {
    const { stats } = run([
      { t: DAY0 + 2 * H, co2: 900 },
      { t: DAY0 + 3 * H, co2: 800 },
      { t: DAY0 + 26 * H, co2: 400 },
    ]);
    expect(view(stats).hourly).toEqual([
      { start: DAY0 + 3 * H, count: 1, mean: 800, min: 800, max: 800 },
      { start: DAY0 + 26 * H, count: 1, mean: 400, min: 400, max: 400 },
    ]);
  });

  it("a reading of another channel moves every channel's window (device-level latest hour)", () => {
    const { stats, aggregates } = run([
      { t: DAY0, co2: 400, pm: 5 },
      { t: DAY0 + 10 * 60_000, pm: 7 },
      { t: DAY0 + H, tmp: 21 },
      { t: DAY0 + 25 * H, tmp: 22 },
    ]);
    expect(view(stats).hourly).toEqual([]);
    expect(view(stats).daily.map((b) => b.start)).toEqual([DAY0]);
    expect(view(stats).lastAt).toBe(DAY0);
    // each closed hour lists exactly the channels that had readings in it
    expect(aggregates.map((a) => [a.resolution, Object.keys(a.channels)])).toEqual([
      ["hour", ["pm", "co2"]],
      ["hour", ["tmp"]],
      ["day", ["pm", "co2", "tmp"]],
    ]);
  });

  it("a closed day carries top-5 means; its id is deterministic", () => {
    const values = [5, 1, 9, 3, 7, 2, 8, 4];
    const { aggregates } = run([...values.map((co2, i) => ({ t: DAY0 + i * H, co2 })), { t: DAY0 + D, co2: 1 }]);
    const day = aggregates.find((a) => a.resolution === "day");
    expect(day).toEqual({
      id: `${DEV}:day:${DAY0}`,
      deviceId: DEV,
      resolution: "day",
      start: DAY0,
      channels: { co2: { start: DAY0, count: 8, mean: 39 / 8, min: 1, max: 9, topMaxMean: 6.6, topMinMean: 3 } },
    });
  });
});

describe("top-5 means", () => {
  it.each([
    [[42], 42, 42],
    [[1, 2, 3], 2, 2],
    [[10, 30, 20, 40], 25, 25],
    [[5, 1, 9, 3, 7, 2, 8, 4], 6.6, 3],
    [[4, 4, 4, 4, 4, 4, 4], 4, 4],
  ])("of %j: topMaxMean %d, topMinMean %d (fewer than 5 → all)", (values, topMax, topMin) => {
    const { stats } = run(values.map((co2, i) => ({ t: DAY0 + i * 60_000, co2 })));
    const [day] = view(stats).daily;
    expect([day?.topMaxMean, day?.topMinMean]).toEqual([topMax, topMin]);
  });
});

describe("channel statistics", () => {
  it("count, mean, population stddev, min/max with first time, last", () => {
    const xs = [2, 4, 4, 4, 5, 5, 7, 9, 2];
    const { stats } = run(xs.map((co2, i) => ({ t: DAY0 + i * 1000, co2 })));
    const v = view(stats);
    expect(v.count).toBe(9);
    expect(v.mean).toBeCloseTo(42 / 9, 12);
    const m = 42 / 9;
    expect(v.stddev).toBeCloseTo(Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / 9), 12);
    expect([v.min, v.minAt, v.max, v.maxAt, v.last, v.lastAt]).toEqual([2, DAY0, 9, DAY0 + 7000, 2, DAY0 + 8000]);
  });

  it("EWMA is time-aware with τ = 1 h and starts at the first value", () => {
    const { stats } = run([
      { t: DAY0, co2: 400 },
      { t: DAY0 + H, co2: 800 },
      { t: DAY0 + H + 1, co2: 1800 },
    ]);
    const afterHour = 400 + (1 - Math.exp(-1)) * 400;
    expect(view(stats).ewma).toBeCloseTo(afterHour + (1 - Math.exp(-1 / H)) * (1800 - afterHour), 9);
  });

  it("EWMA uses the gap since the channel's own previous reading", () => {
    const { stats } = run([
      { t: DAY0, co2: 400 },
      { t: DAY0 + H / 2, pm: 3 },
      { t: DAY0 + 2 * H, co2: 500 },
    ]);
    expect(view(stats).ewma).toBeCloseTo(400 + (1 - Math.exp(-2)) * 100, 9);
  });

  it("readings at or before the latest t are ignored (the caller counts them)", () => {
    const { stats, aggregates } = run([
      { t: DAY0 + H, co2: 400 },
      { t: DAY0 + H, co2: 9000 },
      { t: DAY0, co2: 9000 },
    ]);
    expect(aggregates).toEqual([]);
    expect([view(stats).count, view(stats).max]).toEqual([1, 400]);
  });

  it("closed buckets are kept at the channel's resolution; the open bucket's mean is exact", () => {
    const { stats } = run([
      { t: DAY0, tmp: 21.234 },
      { t: DAY0 + 1, tmp: 21.111 },
      { t: DAY0 + H, tmp: 21.234 },
      { t: DAY0 + H + 1, tmp: 21.111 },
    ]);
    const [closed, open] = view(stats, "tmp").hourly;
    expect(closed).toEqual({ start: DAY0, count: 2, mean: 21.17, min: 21.11, max: 21.23 });
    expect(open?.mean).toBe((21.234 + 21.111) / 2);
    expect([open?.min, open?.max]).toEqual([21.11, 21.23]);
    expect([view(stats, "tmp").min, view(stats, "tmp").max]).toEqual([21.111, 21.234]);
  });

  it("negative temperatures and the range bounds survive quantization", () => {
    const { stats } = run([
      { t: DAY0, tmp: -40 },
      { t: DAY0 + 1, tmp: 85 },
      { t: DAY0 + H, tmp: -12.5 },
    ]);
    expect(view(stats, "tmp").hourly.map((b) => [b.min, b.max, b.mean])).toEqual([
      [-40, 85, 22.5],
      [-12.5, -12.5, -12.5],
    ]);
  });

  it("buckets before the epoch are never shown", () => {
    const { stats } = run([
      { t: 0, co2: 400 },
      { t: 5 * H, co2: 500 },
    ]);
    expect(view(stats).hourly.map((b) => b.start)).toEqual([0, 5 * H]);
    expect(view(stats).daily.map((b) => b.start)).toEqual([0]);
  });

  it("undefined for a channel that never had a reading", () => {
    const { stats } = run([{ t: DAY0, co2: 400 }]);
    expect(channelView(stats, "voc")).toBeUndefined();
    expect(channelView(createStats(), "co2")).toBeUndefined();
  });
});

describe("lifecycle", () => {
  it("resetStats empties everything; cloneStats is independent", () => {
    const { stats } = run([
      { t: DAY0, co2: 400 },
      { t: DAY0 + D, co2: 500 },
    ]);
    const copy = cloneStats(stats);
    expect(statsEqual(copy, stats)).toBe(true);
    resetStats(stats);
    expect(statsEqual(stats, createStats())).toBe(true);
    expect(statsLatestT(stats)).toBeUndefined();
    expect(statsLatestT(copy)).toBe(DAY0 + D);
    expect(view(copy).count).toBe(2);
    applyReadingToStats(stats, DEV, { t: DAY0, co2: 700 });
    expect(view(stats).count).toBe(1);
  });

  it("−0 and 0 give the same state", () => {
    const a = run([{ t: DAY0, tmp: -0 }]).stats;
    const b = run([{ t: DAY0, tmp: 0 }]).stats;
    expect(statsEqual(a, b)).toBe(true);
  });
});
