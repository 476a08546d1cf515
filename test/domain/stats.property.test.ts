// Property tests: the packed statistics equal a from-scratch reference over arbitrary reading sequences
// (any channel subsets, gaps from 0 ms to 10 days, duplicate and late timestamps filtered as the caller
// does), and the snapshot section decodes to the identical state.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyReadingToStats,
  calibrationView,
  recalibrate,
  resetStats,
  channelView,
  createStats,
  decodeStats,
  encodeStats,
  statsEqual,
  type TwinStats,
} from "../../actors/device-twin/domain/stats.ts";
import { CHANNELS, CHANNEL_RANGES, type Channel, type ClosedAggregate, type Reading } from "../../actors/device-twin/domain/types.ts";
import { expectBucket, expectChannel, expectExact } from "./compare.ts";
import { DAY, HOUR, acceptInOrder, refAggregates, refCalibration, refChannel } from "./reference.ts";

const DEVICE = "dev-prop";

/** Sensor-like decimals and arbitrary doubles within the channel's range. */
const value = (ch: Channel): fc.Arbitrary<number> => {
  const { min, max } = CHANNEL_RANGES[ch];
  return fc.oneof(
    fc.integer({ min: min * 100, max: max * 100 }).map((k) => k / 100),
    fc.integer({ min, max }),
    fc.double({ min, max, noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(min, max),
  );
};

const channels: fc.Arbitrary<Omit<Reading, "t">> = fc
  .record(Object.fromEntries(CHANNELS.map((ch) => [ch, value(ch)])) as Record<Channel, fc.Arbitrary<number>>, { requiredKeys: [] })
  .filter((r) => Object.keys(r).length > 0);

const step = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) }, // duplicate
  { weight: 1, arbitrary: fc.integer({ min: -2 * HOUR, max: -1 }) }, // late
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 15 * 60_000 }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 * HOUR }) },
  { weight: 1, arbitrary: fc.integer({ min: 20 * HOUR, max: 30 * HOUR }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 10 * DAY }) },
  { weight: 1, arbitrary: fc.constantFrom(HOUR, DAY, 7 * DAY, 24 * HOUR - 1) },
);

/** Sequences as the gateway may deliver them: t ≥ 0, often aligned to whole hours/days. */
const sequences: fc.Arbitrary<Reading[]> = fc
  .tuple(
    fc.oneof(fc.integer({ min: 0, max: 3 * DAY }), fc.integer({ min: 1_600_000_000, max: 1_800_000_000 }).map((s) => s * 1000), fc.constant(1_704_067_200_000)),
    fc.array(fc.tuple(step, channels), { minLength: 1, maxLength: 250 }),
  )
  .map(([t0, steps]) => {
    let t = t0;
    return steps.map(([dt, chs]) => {
      t = Math.max(0, t + dt);
      return { t, ...chs };
    });
  });

function replay(readings: readonly Reading[]): { stats: TwinStats; aggregates: ClosedAggregate[]; calibration: ReturnType<typeof refCalibration> } {
  const stats = createStats();
  const aggregates: ClosedAggregate[] = [];
  const calibration: ReturnType<typeof refCalibration> = [];
  for (const r of acceptInOrder(readings)) {
    const out = applyReadingToStats(stats, DEVICE, r);
    aggregates.push(...out.aggregates);
    for (const c of out.calibration) {
      expect(c.id).toBe(`${DEVICE}:calibration:${c.channel}:${c.at}`);
      calibration.push({ channel: c.channel, at: c.at, offset: c.offset, ...(c.baseline === undefined ? {} : { baseline: c.baseline }) });
    }
  }
  return { stats, aggregates, calibration };
}

const RUNS = { numRuns: 300 };

describe("stats against the reference", () => {
  it("every channel statistic and bucket", () => {
    fc.assert(
      fc.property(sequences, (readings) => {
        const accepted = acceptInOrder(readings);
        const { stats } = replay(readings);
        const latestT = accepted[accepted.length - 1]!.t;
        for (const ch of CHANNELS) expectChannel(ch, channelView(stats, ch), refChannel(accepted, ch), latestT);
      }),
      RUNS,
    );
  });

  it("closed aggregates: ids, channels, exact means, quantized min/max/top means", () => {
    fc.assert(
      fc.property(sequences, (readings) => {
        const accepted = acceptInOrder(readings);
        const { aggregates } = replay(readings);
        const expected = refAggregates(accepted, DEVICE);
        expect(aggregates.map((a) => a.id)).toEqual(expected.map((a) => a.id));
        aggregates.forEach((a, i) => {
          const e = expected[i]!;
          expect(a.resolution).toBe(e.resolution);
          expect(a.start).toBe(e.start);
          expect(Object.keys(a.channels).sort()).toEqual(Object.keys(e.channels).sort());
          for (const ch of Object.keys(e.channels) as Channel[]) {
            const scale = Math.max(...accepted.filter((r) => r[ch] !== undefined).map((r) => Math.abs(r[ch] as number)));
            expectBucket(ch, a.channels[ch]!, e.channels[ch]!, true, scale, `${a.id} ${ch}`);
          }
        });
      }),
      RUNS,
    );
  });

  it("calibration changes equal the reference, emitted exactly when baseline or offset moves", () => {
    fc.assert(
      fc.property(sequences, (readings) => {
        const accepted = acceptInOrder(readings);
        const { stats, calibration } = replay(readings);
        const expected = refCalibration(accepted);
        expect(calibration.map((c) => [c.channel, c.at, c.baseline])).toEqual(expected.map((c) => [c.channel, c.at, c.baseline]));
        calibration.forEach((c, i) => expectExact(c.offset, expected[i]!.offset, 400, `offset ${i}`));
        for (const c of calibration) expect(c.channel === "voc" ? c.offset : 0).toBe(0);
        const last = (ch: "co2" | "voc") => [...expected].reverse().find((c) => c.channel === ch);
        const view = calibrationView(stats);
        expect(view.co2.baseline).toBe(last("co2")?.baseline);
        expect(view.voc.baseline).toBe(last("voc")?.baseline);
        expectExact(view.co2.offset, last("co2")?.offset ?? 0, 400, "co2 offset");
      }),
      RUNS,
    );
  });

  it("decodeStats(encodeStats(s)) equals s at every step, and the decoded state evolves identically", () => {
    fc.assert(
      fc.property(sequences, (readings) => {
        let stats = createStats();
        expect(statsEqual(decodeStats(encodeStats(stats)), stats)).toBe(true);
        const twin = createStats();
        for (const r of acceptInOrder(readings)) {
          const a = applyReadingToStats(stats, DEVICE, r);
          const b = applyReadingToStats(twin, DEVICE, r);
          expect(a).toEqual(b);
          const decoded = decodeStats(encodeStats(stats));
          expect(statsEqual(decoded, stats)).toBe(true);
          stats = decoded;
        }
        expect(statsEqual(stats, twin)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("recalibrate between readings forgets the closed days' lows, like the reference", () => {
    const withRecalibrations = fc.tuple(sequences, fc.array(fc.tuple(fc.nat(300), fc.constantFrom<"co2" | "voc">("co2", "voc")), { maxLength: 4 }));
    fc.assert(
      fc.property(withRecalibrations, ([readings, recals]) => {
        const accepted = acceptInOrder(readings);
        const at = new Map<number, Array<"co2" | "voc">>();
        for (const [i, ch] of recals) if (i > 0 && i < accepted.length) at.set(i, [...(at.get(i) ?? []), ch]);
        const stats = createStats();
        const changes: ReturnType<typeof refCalibration> = [];
        accepted.forEach((r, i) => {
          for (const ch of at.get(i) ?? []) {
            const c = recalibrate(stats, DEVICE, ch, r.t - 1);
            expect(c).toEqual({ id: `${DEVICE}:calibration:${ch}:${r.t - 1}`, deviceId: DEVICE, channel: ch, at: r.t - 1, offset: 0 });
            expect(calibrationView(stats)[ch]).toEqual({ offset: 0 });
            expect(statsEqual(decodeStats(encodeStats(stats)), stats)).toBe(true);
          }
          for (const c of applyReadingToStats(stats, DEVICE, r).calibration) changes.push({ channel: c.channel, at: c.at, offset: c.offset, ...(c.baseline === undefined ? {} : { baseline: c.baseline }) });
        });
        const expected = refCalibration(accepted, at);
        expect(changes.map((c) => [c.channel, c.at, c.baseline])).toEqual(expected.map((c) => [c.channel, c.at, c.baseline]));
        changes.forEach((c, i) => expectExact(c.offset, expected[i]!.offset, 400, `offset ${i}`));
      }),
      { numRuns: 200 },
    );
  });

  it("resetStats at any point behaves like a fresh twin fed the rest", () => {
    fc.assert(
      fc.property(sequences, fc.nat(300), (readings, cut) => {
        const accepted = acceptInOrder(readings);
        const k = Math.min(cut, accepted.length);
        const stats = createStats();
        accepted.slice(0, k).forEach((r) => applyReadingToStats(stats, DEVICE, r));
        resetStats(stats);
        expect(statsEqual(stats, createStats())).toBe(true);
        const fresh = createStats();
        for (const r of accepted.slice(k)) expect(applyReadingToStats(stats, DEVICE, r)).toEqual(applyReadingToStats(fresh, DEVICE, r));
        expect(statsEqual(stats, fresh)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
