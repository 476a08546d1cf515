import { describe, expect, it } from "vitest";
import { stepOffset } from "./calibration.ts";
import { applyReadingToStats, calibrationView, createStats, decodeStats, encodeStats, recalibrate, type TwinStats } from "./stats.ts";
import type { CalibrationChange } from "./types.ts";

const H = 3_600_000;
const D = 86_400_000;
const DAY0 = Date.UTC(2024, 3, 1);
const DEV = "dev-cal";

/** One day of hourly co2 (and voc = co2 − 240) whose 5 lowest values average exactly `low`. */
function day(stats: TwinStats, d: number, low: number): CalibrationChange[] {
  const changes: CalibrationChange[] = [];
  for (let h = 0; h < 24; h++) {
    const co2 = h < 5 ? low + (h - 2) : low + 300 + h; // lows low−2 … low+2, mean = low
    changes.push(...applyReadingToStats(stats, DEV, { t: DAY0 + d * D + h * H, co2, voc: co2 - 240 }).calibration);
  }
  return changes;
}

const brief = (cs: CalibrationChange[]) => cs.map((c) => [c.channel, (c.at - DAY0) / D, c.baseline, c.offset]);

describe("stepOffset", () => {
  it.each([
    [0, 480, -30],
    [-30, 480, -60],
    [-60, 480, -80],
    [-80, 480, -80],
    [0, 300, 30],
    [90, 300, 100],
    [100, 420, 70],
    [0, 400, 0],
    [-2.5, 401, -1],
  ])("offset %d, baseline %d → %d", (offset, baseline, next) => {
    expect(stepOffset(offset, baseline)).toBe(next);
  });
});

describe("calibration over 10 simulated days", () => {
  it("baseline over the 7 days before, offset steps ≤ 30 ppm, a change only when something moves", () => {
    const stats = createStats();
    const lows = [480, 470, 500, 520, 510, 530, 540, 550, 560, 570];
    const perDay = lows.map((low, d) => brief(day(stats, d, low)));
    perDay.push(brief(day(stats, 10, 600))); // its first reading closes day 9
    expect(perDay[0]).toEqual([]); // nothing closes on the first day
    expect(perDay.slice(1)).toEqual([
      [["co2", 1, 480, -30], ["voc", 1, 240, 0]],
      [["co2", 2, 470, -60], ["voc", 2, 230, 0]],
      [["co2", 3, 470, -70]], // baseline unchanged, offset moves 10
      [],
      [],
      [],
      [],
      [],
      [["co2", 9, 500, -100], ["voc", 9, 260, 0]], // day 1 (470) left the window of days 2–8
      [["co2", 10, 510, -110], ["voc", 10, 270, 0]],
    ]);
    expect(calibrationView(stats)).toEqual({ co2: { baseline: 510, offset: -110 }, voc: { baseline: 270, offset: 0 } });
  });

  it("every offset step is at most 30 ppm and heads for 400 − baseline", () => {
    const stats = createStats();
    const changes = [300, 300, 300, 300, 300, 700, 700, 700, 700, 700, 700].flatMap((low, d) => day(stats, d, low));
    const offsets = [0, ...changes.filter((c) => c.channel === "co2").map((c) => c.offset)];
    for (let i = 1; i < offsets.length; i++) expect(Math.abs(offsets[i]! - offsets[i - 1]!)).toBeLessThanOrEqual(30);
    expect(offsets.slice(0, 5)).toEqual([0, 30, 60, 90, 100]);
  });

  it("ids are deterministic: <deviceId>:calibration:<channel>:<at>", () => {
    const stats = createStats();
    day(stats, 0, 450);
    const [c] = day(stats, 1, 450);
    expect(c).toEqual({ id: `${DEV}:calibration:co2:${DAY0 + D}`, deviceId: DEV, channel: "co2", at: DAY0 + D, baseline: 450, offset: -30 });
  });

  it("a day without co2 readings adds no low; lows older than the calendar window never count", () => {
    const stats = createStats();
    day(stats, 0, 420);
    day(stats, 1, 430);
    applyReadingToStats(stats, DEV, { t: DAY0 + 2 * D, tmp: 20 });
    // day 2 closes on day 20: days 13–19 had no readings, so the window is empty
    const { calibration } = applyReadingToStats(stats, DEV, { t: DAY0 + 20 * D, co2: 900 });
    expect(brief(calibration)).toEqual([
      ["co2", 20, undefined, -20],
      ["voc", 20, undefined, 0],
    ]);
    expect(calibrationView(stats)).toEqual({ co2: { offset: -20 }, voc: { offset: 0 } });
    // the next closed day starts a new window
    expect(brief(applyReadingToStats(stats, DEV, { t: DAY0 + 21 * D, co2: 900 }).calibration)).toEqual([["co2", 21, 900, -50]]);
  });

  it("a low exactly 7 days before the current day still counts, 8 days before does not", () => {
    const stats = createStats();
    day(stats, 0, 410);
    applyReadingToStats(stats, DEV, { t: DAY0 + 7 * D, co2: 900 }); // window days 0–6: day 0 counts
    expect(calibrationView(stats).co2.baseline).toBe(410);
    expect(brief(applyReadingToStats(stats, DEV, { t: DAY0 + 8 * D, co2: 900 }).calibration)).toEqual([
      ["co2", 8, 900, -40],
      ["voc", 8, undefined, 0],
    ]);
  });

  it("recalibrate forgets the lows: baseline undefined, offset 0; the next closed day starts over", () => {
    const stats = createStats();
    for (let d = 0; d < 4; d++) day(stats, d, 500);
    expect(calibrationView(stats).co2).toEqual({ baseline: 500, offset: -90 });
    const at = DAY0 + 3 * D + 12 * H + 5;
    expect(recalibrate(stats, DEV, "co2", at)).toEqual({ id: `${DEV}:calibration:co2:${at}`, deviceId: DEV, channel: "co2", at, offset: 0 });
    expect(calibrationView(stats)).toEqual({ co2: { offset: 0 }, voc: { baseline: 260, offset: 0 } });
    expect(statsEqualAfterRoundTrip(stats)).toBe(true);
    expect(brief(day(stats, 4, 520))).toEqual([["co2", 4, 500, -30]]); // day 3's low (closed after the recalibration)
    expect(recalibrate(stats, DEV, "voc", at).baseline).toBeUndefined();
    expect(calibrationView(stats).voc).toEqual({ offset: 0 });
  });
});

function statsEqualAfterRoundTrip(stats: TwinStats): boolean {
  return JSON.stringify(calibrationView(decodeStats(encodeStats(stats)))) === JSON.stringify(calibrationView(stats));
}
