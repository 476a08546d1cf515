import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Packr } from "msgpackr";
import { loggedReadingsProblem, packReadings, readLoggedReadings } from "./logged-readings.ts";
import { MAX_READING_T_MS } from "./readings.ts";
import { encodeTwin } from "./twin-snapshot.ts";
import { applyInput, createTwin } from "./twin.ts";
import { CHANNELS, type Reading } from "./types.ts";

const T = 1_704_067_200_000;

/** A valid reading: any subset (at least one) of the channels within their ranges. */
const readingArb = fc
  .record(
    {
      dt: fc.integer({ min: 0, max: 600_000 }),
      pm: fc.double({ min: 0, max: 1000, noNaN: true }),
      co2: fc.integer({ min: 0, max: 40000 }),
      voc: fc.double({ min: 0, max: 60000, noNaN: true }),
      tmp: fc.double({ min: -40, max: 85, noNaN: true }),
      hum: fc.double({ min: 0, max: 100, noNaN: true }),
      allpollu: fc.double({ min: 0, max: 1000, noNaN: true }),
    },
    { requiredKeys: ["dt"] },
  )
  .filter((r) => Object.keys(r).length > 1);

/** Readings with increasing `t` as the gateway logs them: the channels present only, −0 as 0 (validateReadings). */
const readingsArb = fc.array(readingArb, { minLength: 1, maxLength: 20 }).map((rs) => {
  let t = T;
  return rs.map(({ dt, ...channels }) => ({ t: (t += dt), ...Object.fromEntries(Object.entries(channels).map(([c, v]) => [c, v + 0])) }) as Reading);
});

// the runtime codec's options (runtime/codec.ts; the domain does not import the runtime)
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });
/** What the log carries: MessagePack of the payload, decoded again. */
const logged = (payload: unknown): unknown => packr.unpack(packr.pack(payload));

describe("the logged readings payload", () => {
  it("reads back what packReadings logged, channel for channel", () => {
    fc.assert(
      fc.property(readingsArb, (readings) => {
        const back = readLoggedReadings(logged(packReadings(readings)));
        if (typeof back === "string") throw new Error(back);
        expect(back.map((r) => ({ t: r.t, ...Object.fromEntries(CHANNELS.filter((c) => r[c] !== undefined).map((c) => [c, r[c]])) }))).toEqual(readings);
      }),
    );
  });

  it("gives the twin the same state and outputs from either form (restore replays the archive's maps)", () => {
    fc.assert(
      fc.property(fc.array(readingsArb, { minLength: 1, maxLength: 6 }), (batches) => {
        const a = createTwin("d-1");
        const b = createTwin("d-1");
        let t = T;
        for (const readings of batches) {
          const fromArrays = readLoggedReadings(logged(packReadings(readings))) as Reading[];
          const fromMaps = readLoggedReadings(logged(readings)) as Reading[];
          t = Math.max(t, readings.at(-1)!.t) + 1000;
          const outA = applyInput(a, { type: "readings", readings: fromArrays, receivedAt: t }).outputs;
          const outB = applyInput(b, { type: "readings", readings: fromMaps, receivedAt: t }).outputs;
          expect(outA).toEqual(outB);
        }
        expect(encodeTwin(a)).toEqual(encodeTwin(b));
      }),
      { numRuns: 50 },
    );
  });

  it("reads the older form, one map per reading, as it is", () => {
    const maps = [{ t: T, pm: 1 }, { t: T + 1, co2: 400, hum: 50 }];
    expect(readLoggedReadings(maps)).toBe(maps);
    expect(readLoggedReadings([])).toEqual([]);
  });

  it("leaves out trailing channels and reads nil as absent", () => {
    expect(readLoggedReadings([[T, 5], [T + 1, null, 400]])).toEqual([
      { t: T, pm: 5, co2: undefined, voc: undefined, tmp: undefined, hum: undefined, allpollu: undefined },
      { t: T + 1, pm: undefined, co2: 400, voc: undefined, tmp: undefined, hum: undefined, allpollu: undefined },
    ]);
  });

  it.each([
    ["not an array", { t: T }, "readings must be an array"],
    ["a map after an array", [[T, 1], { t: T + 1, pm: 1 }], "reading 1 must be an array"],
    ["t a string", [["noon", 1]], "reading 0: t must be epoch ms"],
    ["t fractional", [[T + 0.5, 1]], "reading 0: t must be epoch ms"],
    ["t negative", [[-1, 1]], "reading 0: t must be epoch ms"],
    ["t past 2200", [[MAX_READING_T_MS + 1, 1]], "reading 0: t must be epoch ms"],
    ["no channel", [[T]], "reading 0 carries no channel"],
    ["only nils", [[T, null, null]], "reading 0 carries no channel"],
    ["a channel out of range", [[T, 1e12]], "reading 0: pm must be a number from 0 to 1000"],
    ["a channel NaN", [[T, 1, Number.NaN]], "reading 0: co2 must be a number from 0 to 40000"],
    ["a channel a string", [[T, 1, 2, 3, "warm"]], "reading 0: tmp must be a number from -40 to 85"],
    ["an eighth field", [[T, 1, 2, 3, 4, 5, 6, 7]], "reading 0 has more than 7 fields"],
    ["a map with an unknown field", [{ t: T, pm: 1, extra: 2 }], 'reading 0: unknown field "extra"'],
    ["a map without t", [{ pm: 1 }], "reading 0: t must be epoch ms"],
  ])("refuses %s", (_, payload, why) => {
    expect(readLoggedReadings(logged(payload))).toBe(why);
    expect(loggedReadingsProblem(logged(payload))).toBe(why);
  });
});
