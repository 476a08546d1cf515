// Replays a week of real office measurements (UCI Occupancy Detection, about one reading a minute)
// through the twin statistics and checks every statistic against the from-scratch reference, at the
// end and at every closed bucket.

import { describe, expect, it } from "vitest";
import { applyReadingToStats, calibrationView, channelView, createStats, decodeStats, encodeStats, statsEqual } from "../../actors/device-twin/domain/stats.ts";
import { validateReadings } from "../../actors/device-twin/domain/readings.ts";
import type { ClosedAggregate } from "../../actors/device-twin/domain/types.ts";
import { expectBucket, expectChannel } from "./compare.ts";
import { acceptInOrder, refAggregates, refCalibration, refChannel } from "./reference.ts";
import { UCI_TRAINING, loadUciReadings } from "./uci.ts";

describe("UCI occupancy replay", () => {
  const raw = loadUciReadings(UCI_TRAINING);
  const accepted = acceptInOrder(raw);

  it("loads every row as a valid reading", () => {
    expect(raw.length).toBe(8143);
    expect(raw[0]).toEqual({ t: Date.UTC(2015, 1, 4, 17, 51, 0), tmp: 23.18, hum: 27.272, co2: 721.25 });
    for (let i = 0; i < raw.length; i += 1000) expect(validateReadings(raw.slice(i, i + 1000)).ok).toBe(true);
  });

  it("statistics, buckets, aggregates and calibration match the reference", () => {
    const stats = createStats();
    const aggregates: ClosedAggregate[] = [];
    const calibration: Array<{ channel: string; at: number; baseline?: number; offset: number }> = [];
    for (const r of accepted) {
      const out = applyReadingToStats(stats, "uci", r);
      aggregates.push(...out.aggregates);
      for (const c of out.calibration) calibration.push({ channel: c.channel, at: c.at, offset: c.offset, ...(c.baseline === undefined ? {} : { baseline: c.baseline }) });
    }
    const latestT = accepted[accepted.length - 1]!.t;
    for (const ch of ["tmp", "hum", "co2", "pm", "voc", "allpollu"] as const) expectChannel(ch, channelView(stats, ch), refChannel(accepted, ch), latestT);
    expect(channelView(stats, "co2")?.hourly.length).toBe(24);
    expect(channelView(stats, "co2")?.daily.length).toBe(7);

    const expected = refAggregates(accepted, "uci");
    expect(aggregates.map((a) => a.id)).toEqual(expected.map((a) => a.id));
    expect(aggregates.filter((a) => a.resolution === "day").length).toBe(6);
    aggregates.forEach((a, i) => {
      for (const ch of ["tmp", "hum", "co2"] as const) expectBucket(ch, a.channels[ch]!, expected[i]!.channels[ch]!, true, 3000, `${a.id} ${ch}`);
    });

    expect(calibration).toEqual(refCalibration(accepted));
    expect(calibration.length).toBeGreaterThan(0);
    expect(calibrationView(stats).co2.baseline).toBeGreaterThan(400);
    expect(statsEqual(decodeStats(encodeStats(stats)), stats)).toBe(true);
  });
});
