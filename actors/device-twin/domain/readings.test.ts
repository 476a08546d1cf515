import { describe, expect, it } from "vitest";
import { MAX_READING_T_MS, fromFoobotDatapoints, parseReadingsBody, validateReadings } from "./readings.ts";
import type { Problem, Result } from "./types.ts";

const T = 1_704_067_200_000;

function errorOf<T>(r: Result<T>): Problem {
  if (r.ok) throw new Error("expected an error");
  return r.error;
}

describe("validateReadings", () => {
  it("returns copies with channels only, sorted by t, stable", () => {
    const r = validateReadings([
      { t: T + 2, pm: 1 },
      { t: T, co2: 400, tmp: -0 },
      { t: T + 1, hum: 50, voc: undefined },
      { t: T, pm: 2 },
    ]);
    expect(r).toEqual({ ok: true, value: [{ t: T, co2: 400, tmp: 0 }, { t: T, pm: 2 }, { t: T + 1, hum: 50 }, { t: T + 2, pm: 1 }] });
    expect(Object.is((r as { value: Array<{ tmp?: number }> }).value[0]!.tmp, 0)).toBe(true);
  });

  it("accepts the bounds of every range", () => {
    const r = validateReadings([
      { t: 0, pm: 0, co2: 0, voc: 0, tmp: -40, hum: 0, allpollu: 0 },
      { t: MAX_READING_T_MS, pm: 1000, co2: 40000, voc: 60000, tmp: 85, hum: 100, allpollu: 1000 },
    ]);
    expect(r.ok).toBe(true);
  });

  it("accepts an empty batch", () => {
    expect(validateReadings([])).toEqual({ ok: true, value: [] });
  });

  it.each([
    ["missing t", { pm: 1 }, "t", "required"],
    ["t a string", { t: "1704067200000", pm: 1 }, "t", "number"],
    ["t NaN", { t: NaN, pm: 1 }, "t", "finite"],
    ["t Infinity", { t: Infinity, pm: 1 }, "t", "finite"],
    ["t fractional", { t: 1.5, pm: 1 }, "t", "integer"],
    ["t negative", { t: -1, pm: 1 }, "t", "between"],
    ["t after 2200", { t: MAX_READING_T_MS + 1, pm: 1 }, "t", "between"],
    ["pm a string", { t: T, pm: "12" }, "pm", "number"],
    ["co2 null", { t: T, co2: null }, "co2", "number"],
    ["voc NaN", { t: T, voc: NaN }, "voc", "finite"],
    ["tmp -Infinity", { t: T, tmp: -Infinity }, "tmp", "finite"],
    ["tmp below -40", { t: T, tmp: -40.01 }, "tmp", "between -40 and 85"],
    ["hum above 100", { t: T, hum: 100.5 }, "hum", "between 0 and 100"],
    ["co2 above 40000", { t: T, co2: 40001 }, "co2", "between 0 and 40000"],
    ["allpollu negative", { t: T, allpollu: -1 }, "allpollu", "between"],
    ["unknown field", { t: T, pm: 1, humidity: 3 }, "humidity", "unknown field"],
    ["no channel", { t: T }, "reading", "at least one channel"],
    ["not an object", 42, "reading", "object"],
    ["an array", [T, 1], "reading", "object"],
    ["null", null, "reading", "object"],
  ])("rejects %s, naming the field", (_name, reading, field, message) => {
    const e = errorOf(validateReadings([{ t: T, pm: 1 }, reading]));
    expect(e.code).toBe("AIRTWIN_ERR_READING_INVALID");
    expect(e.details).toEqual([{ index: 1, field, message: expect.stringContaining(message) }]);
  });

  it("names every offending index and field, not just the first", () => {
    const e = errorOf(
      validateReadings([
        { t: T, pm: 1 },
        { t: "x", pm: -1, co2: "high", extra: 1 },
        { t: T, hum: 50 },
        { pm: NaN },
      ]),
    );
    expect(e.code).toBe("AIRTWIN_ERR_READING_INVALID");
    expect(e.details?.map((d) => [d.index, d.field])).toEqual([
      [1, "t"],
      [1, "pm"],
      [1, "co2"],
      [1, "extra"],
      [3, "t"],
      [3, "pm"],
    ]);
    expect(e.message).toBe("2 of 4 readings are invalid");
  });

  it("rejects a non-array", () => {
    expect(errorOf(validateReadings({ t: T, pm: 1 })).details).toEqual([{ field: "readings", message: "must be an array" }]);
  });

  it("rejects more than maxReadings (default 1000) before looking at them", () => {
    const many = Array.from({ length: 1001 }, () => "garbage");
    expect(errorOf(validateReadings(many)).code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
    expect(validateReadings(Array.from({ length: 1000 }, (_, i) => ({ t: i, pm: 1 }))).ok).toBe(true);
    expect(errorOf(validateReadings([{ t: 1, pm: 1 }, { t: 2, pm: 1 }], { maxReadings: 1 })).code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
  });
});

describe("fromFoobotDatapoints", () => {
  const body = {
    uuid: "240D676D40001482",
    start: 1_704_067_200,
    end: 1_704_067_500,
    sensors: ["time", "pm", "tmp", "hum", "co2", "voc", "allpollu"],
    units: ["s", "ugm3", "C", "pc", "ppm", "ppb", "%"],
    datapoints: [
      [1_704_067_500, 10.5, 21.25, 40.1, 650, 220, 18.2],
      [1_704_067_200, 12.5, 21.5, 40, 640, 210, 19],
    ],
  };

  it("converts seconds to ms, maps sensors by name, sorts by t", () => {
    expect(fromFoobotDatapoints(body)).toEqual({
      ok: true,
      value: [
        { t: 1_704_067_200_000, pm: 12.5, co2: 640, voc: 210, tmp: 21.5, hum: 40, allpollu: 19 },
        { t: 1_704_067_500_000, pm: 10.5, co2: 650, voc: 220, tmp: 21.25, hum: 40.1, allpollu: 18.2 },
      ],
    });
  });

  it("takes sensors in any order and any subset with time", () => {
    const r = fromFoobotDatapoints({ sensors: ["co2", "time"], datapoints: [[700, 1_704_067_200.5]] });
    expect(r).toEqual({ ok: true, value: [{ t: 1_704_067_200_500, co2: 700 }] });
  });

  it("converts a Fahrenheit tmp to °C", () => {
    const r = fromFoobotDatapoints({ sensors: ["time", "tmp"], units: ["s", "F"], datapoints: [[1, 68]] });
    expect(r).toEqual({ ok: true, value: [{ t: 1000, tmp: 20 }] });
  });

  it.each([
    ["not an object", [], "body"],
    ["no sensors", { datapoints: [] }, "sensors"],
    ["no time", { sensors: ["pm"], datapoints: [[1]] }, "sensors"],
    ["unknown sensor", { sensors: ["time", "radon"], datapoints: [[1, 2]] }, "sensors[1]"],
    ["duplicate sensor", { sensors: ["time", "pm", "pm"], datapoints: [[1, 2, 3]] }, "sensors[2]"],
    ["datapoints not an array", { sensors: ["time", "pm"], datapoints: {} }, "datapoints"],
    ["units of the wrong length", { sensors: ["time", "pm"], units: ["s"], datapoints: [] }, "units"],
    ["tmp in kelvin", { sensors: ["time", "tmp"], units: ["s", "K"], datapoints: [] }, "units[1]"],
  ])("rejects a malformed shape: %s", (_name, b, field) => {
    const e = errorOf(fromFoobotDatapoints(b));
    expect(e.code).toBe("AIRTWIN_ERR_FOOBOT_SHAPE_INVALID");
    expect(e.details?.map((d) => d.field)).toContain(field);
  });

  it("names the datapoint index of a row of the wrong length", () => {
    const e = errorOf(fromFoobotDatapoints({ sensors: ["time", "pm"], datapoints: [[1, 2], [3], "x"] }));
    expect(e.details).toEqual([
      { index: 1, field: "datapoints", message: "must be an array of 2 values" },
      { index: 2, field: "datapoints", message: "must be an array of 2 values" },
    ]);
  });

  it("validates values like readings, naming index and sensor (time for t)", () => {
    const e = errorOf(fromFoobotDatapoints({ sensors: ["time", "pm", "co2"], datapoints: [[1, 2, 3], ["now", 2000, 3], [-5, 1, null]] }));
    expect(e.code).toBe("AIRTWIN_ERR_READING_INVALID");
    expect(e.details?.map((d) => [d.index, d.field])).toEqual([
      [1, "time"],
      [1, "pm"],
      [2, "time"],
      [2, "co2"],
    ]);
  });

  it("limits the number of datapoints", () => {
    const e = errorOf(fromFoobotDatapoints({ sensors: ["time", "pm"], datapoints: [[1, 1], [2, 1]] }, { maxReadings: 1 }));
    expect(e.code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
  });
});

describe("parseReadingsBody", () => {
  it("accepts { readings }", () => {
    expect(parseReadingsBody({ readings: [{ t: 5, pm: 1 }] })).toEqual({ ok: true, value: [{ t: 5, pm: 1 }] });
  });

  it("accepts the Foobot shape", () => {
    expect(parseReadingsBody({ sensors: ["time", "pm"], datapoints: [[5, 1]] })).toEqual({ ok: true, value: [{ t: 5000, pm: 1 }] });
  });

  it.each([
    ["a string", "readings", "body"],
    ["an array", [{ t: 5, pm: 1 }], "body"],
    ["an empty object", {}, "readings"],
    ["extra fields beside readings", { readings: [], device: "x" }, "device"],
  ])("rejects %s", (_name, body, field) => {
    const e = errorOf(parseReadingsBody(body));
    expect(e.code).toBe("AIRTWIN_ERR_READING_INVALID");
    expect(e.details?.map((d) => d.field)).toEqual([field]);
  });

  it("passes maxReadings through", () => {
    expect(errorOf(parseReadingsBody({ readings: [{ t: 1, pm: 1 }, { t: 2, pm: 1 }] }, { maxReadings: 1 })).code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
  });
});
