// Differential property test: the twin's compact event machine against the naive reference.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyReadingToEvents, createEventStates } from "../../actors/device-twin/domain/events.ts";
import type { Alert, Reading, Rule } from "../../actors/device-twin/domain/types.ts";
import { referenceEvents } from "./events-reference.ts";
import type { RefEvent } from "./events-reference.ts";

const ruleArb: fc.Arbitrary<Rule> = fc
  .record({
    direction: fc.constantFrom("above" as const, "below" as const),
    a: fc.integer({ min: 0, max: 100 }),
    b: fc.integer({ min: 0, max: 100 }),
    minDurationMs: fc.constantFrom(0, 1, 5, 10, 30),
    clearDurationMs: fc.constantFrom(0, 1, 5, 10, 30),
  })
  .map(({ direction, a, b, minDurationMs, clearDurationMs }) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    return direction === "above"
      ? { id: "r", channel: "hum", direction, enter: hi, exit: lo, minDurationMs, clearDurationMs }
      : { id: "r", channel: "hum", direction, enter: lo, exit: hi, minDurationMs, clearDurationMs };
  });

// Steps of 1..12 ms with values on a coarse grid so that readings land exactly on thresholds often.
const seriesArb = fc.array(
  fc.record({ dt: fc.integer({ min: 1, max: 12 }), v: fc.option(fc.integer({ min: 0, max: 20 }).map((x) => x * 5), { freq: 6 }) }),
  { maxLength: 120 },
);

function toRef(alerts: Alert[], ruleId = "r"): RefEvent[] {
  const out: RefEvent[] = [];
  for (const a of alerts.filter((x) => x.ruleId === ruleId)) {
    if (a.kind === "event.start") out.push({ startedAt: a.startedAt!, startAt: a.at, startValue: a.value! });
    else {
      const ev = out[out.length - 1]!;
      expect(a.startedAt).toBe(ev.startedAt);
      Object.assign(ev, { endedAt: a.endedAt, endAt: a.at, peak: a.peak, mean: a.mean });
    }
  }
  return out;
}

describe("event machine vs reference", () => {
  it("emits exactly the reference's events (starts, ends, peak, mean)", () => {
    fc.assert(
      fc.property(ruleArb, seriesArb, (rule, series) => {
        const states = createEventStates();
        const alerts: Alert[] = [];
        const points: Array<{ t: number; v: number }> = [];
        let t = 1_000;
        for (const { dt, v } of series) {
          t += dt;
          const reading: Reading = v === null ? { t, tmp: 20 } : { t, hum: v };
          if (v !== null) points.push({ t, v });
          applyReadingToEvents(states, [rule], "d", reading, alerts);
        }
        const got = toRef(alerts);
        const want = referenceEvents(rule, points);
        expect(got.map(({ mean: _m, ...e }) => e)).toEqual(want.map(({ mean: _m, ...e }) => e));
        got.forEach((e, i) => {
          if (e.mean !== undefined) expect(e.mean).toBeCloseTo(want[i]!.mean!, 9);
        });
      }),
      { numRuns: 2000 },
    );
  });

  it("several rules sharing one twin's slots stay independent (each equals its own reference)", () => {
    const rulesArb = fc.tuple(ruleArb, ruleArb, ruleArb).map(([a, b, c]) => [
      { ...a, id: "a" },
      { ...b, id: "b", channel: "tmp" as const },
      { ...c, id: "c" },
    ]);
    const multiArb = fc.array(
      fc.record({ dt: fc.integer({ min: 1, max: 12 }), hum: fc.option(fc.integer({ min: 0, max: 20 }).map((x) => x * 5)), tmp: fc.option(fc.integer({ min: 0, max: 20 }).map((x) => x * 5)) }),
      { maxLength: 150 },
    );
    fc.assert(
      fc.property(rulesArb, multiArb, (rules, series) => {
        const states = createEventStates();
        const alerts: Alert[] = [];
        let t = 1_000;
        const readings: Reading[] = [];
        for (const { dt, hum, tmp } of series) {
          t += dt;
          const r: Reading = { t };
          if (hum !== null) r.hum = hum;
          if (tmp !== null) r.tmp = tmp;
          readings.push(r);
          applyReadingToEvents(states, rules, "d", r, alerts);
          expect(states.d).toHaveLength(states.ids.length * 9);
        }
        for (const rule of rules) {
          const points = readings.flatMap((r) => (r[rule.channel] === undefined ? [] : [{ t: r.t, v: r[rule.channel]! }]));
          const got = toRef(alerts, rule.id);
          const want = referenceEvents(rule, points);
          expect(got.map(({ mean: _m, ...e }) => e)).toEqual(want.map(({ mean: _m, ...e }) => e));
          got.forEach((e, i) => {
            if (e.mean !== undefined) expect(e.mean).toBeCloseTo(want[i]!.mean!, 9);
          });
        }
      }),
      { numRuns: 1000 },
    );
  });
});
