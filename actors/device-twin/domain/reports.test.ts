import { describe, expect, it } from "vitest";
import { isReportStateEmpty, weekStartOf } from "./reports.ts";
import { applyInput, createTwin } from "./twin.ts";
import type { TwinState } from "./twin.ts";
import { decodeTwin, encodeTwin } from "./twin-snapshot.ts";
import type { Reading, Report, TwinOutput } from "./types.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const MONDAY = Date.UTC(2025, 0, 6);

/** pm 60 (over default-pm's enter 35.5) in these [from, to) windows, else 10; co2 600 throughout. */
const HIGH: Array<[number, number]> = [
  [MONDAY + 10 * HOUR, MONDAY + 11 * HOUR],
  [MONDAY + 2 * DAY + 23 * HOUR, MONDAY + 3 * DAY + 1 * HOUR],
  [MONDAY + 8 * DAY + 9 * HOUR, MONDAY + 8 * DAY + 9 * HOUR + 30 * MIN],
];
const reading = (t: number): Reading => ({ t, pm: HIGH.some(([a, b]) => t >= a && t < b) ? 60 : 10, co2: 600 });

function feed(state: TwinState, from: number, to: number): TwinOutput[] {
  const out: TwinOutput[] = [];
  for (let t = from; t < to; t += 5 * MIN) out.push(...applyInput(state, { type: "readings", readings: [reading(t)], receivedAt: t }).outputs);
  return out;
}
const reportsOf = (out: TwinOutput[]): Report[] => out.flatMap((o) => (o.type === "report" ? [o.report] : []));

describe("reports", () => {
  it("weeks start on Monday 00:00 UTC", () => {
    expect(weekStartOf(MONDAY)).toBe(MONDAY);
    expect(weekStartOf(MONDAY + 7 * DAY - 1)).toBe(MONDAY);
    expect(weekStartOf(MONDAY - 1)).toBe(MONDAY - 7 * DAY);
  });

  it("a daily report when a UTC day closes: statistics, events with times, minutes in event, the worst hour", () => {
    const twin = createTwin("d1");
    expect(reportsOf(feed(twin, MONDAY, MONDAY + DAY))).toEqual([]);
    const [day0, ...rest] = reportsOf(feed(twin, MONDAY + DAY, MONDAY + DAY + 1));
    expect(rest).toEqual([]);
    expect(day0).toMatchObject({
      id: `d1:report.day:${MONDAY}`, deviceId: "d1", kind: "report.day", start: MONDAY, end: MONDAY + DAY,
      rules: { "default-pm": { channel: "pm", events: 1, minutes: 60 } },
      events: [{ eventId: `d1:default-pm:${MONDAY + 10 * HOUR}`, ruleId: "default-pm", channel: "pm", startedAt: MONDAY + 10 * HOUR, endedAt: MONDAY + 11 * HOUR, peak: 60, mean: 60 }],
      eventsOmitted: 0,
      worstHour: { start: MONDAY + 10 * HOUR, channel: "pm", mean: 60 },
      occupiedHours: 0,
    });
    expect(day0!.channels.pm).toMatchObject({ count: 288, min: 10, max: 60, topMaxMean: 60, topMinMean: 10 });
    expect(day0!.channels.pm!.mean).toBeCloseTo((276 * 10 + 12 * 60) / 288, 2);
    expect(day0!.previous).toBeUndefined();
  });

  it("an event over midnight counts its minutes in both days; the weekly summary adds up the dailies and compares weeks", () => {
    const twin = createTwin("d2");
    const reports = reportsOf(feed(twin, MONDAY, MONDAY + 15 * DAY));
    const days = reports.filter((r) => r.kind === "report.day");
    const weeks = reports.filter((r) => r.kind === "report.week");
    expect(days.map((r) => r.start)).toEqual(Array.from({ length: 14 }, (_, i) => MONDAY + i * DAY));
    expect(days[2]!.rules).toEqual({ "default-pm": { channel: "pm", events: 1, minutes: 60 } });
    expect(days[3]!.rules).toEqual({ "default-pm": { channel: "pm", events: 0, minutes: 60 } });
    expect(days[3]!.events).toEqual([expect.objectContaining({ startedAt: MONDAY + 2 * DAY + 23 * HOUR, endedAt: MONDAY + 3 * DAY + HOUR })]);
    expect(days[1]!.previous).toEqual({ start: MONDAY, means: { pm: days[0]!.channels.pm!.mean, co2: 600 } });

    expect(weeks.map((w) => w.start)).toEqual([MONDAY, MONDAY + 7 * DAY]);
    const [w1, w2] = weeks as [Report, Report];
    // each weekly follows the daily of the week's last day
    expect(reports.indexOf(w1)).toBe(reports.indexOf(days[6]!) + 1);
    expect(w1).toMatchObject({ id: `d2:report.week:${MONDAY}`, end: MONDAY + 7 * DAY, days: 7, rules: { "default-pm": { channel: "pm", events: 2, minutes: 180 } } });
    expect(w1.channels.pm).toMatchObject({ count: 7 * 288, min: 10, max: 60 });
    expect(w1.channels.pm!.mean).toBeCloseTo((7 * 288 * 10 + 36 * 50) / (7 * 288), 2);
    // Monday, Wednesday and Thursday each had 12 high readings: a tie keeps the earliest
    expect(w1.worstDay).toEqual({ start: MONDAY, channel: "pm", mean: days[0]!.channels.pm!.mean });
    expect(w1.worstHour).toMatchObject({ channel: "pm", mean: 60 });
    expect(w1.previous).toBeUndefined();
    expect(w2.rules).toEqual({ "default-pm": { channel: "pm", events: 1, minutes: 30 } });
    expect(w2.previous).toEqual({ start: MONDAY, means: { pm: w1.channels.pm!.mean, co2: 600 } });
  });

  it("subscriptions that ask for reports get them; a snapshot taken mid-event continues exactly", () => {
    const run = (cutAt?: number): TwinOutput[] => {
      let twin = createTwin("d3");
      const sub = { id: "mail", provider: "email", target: "ana@example.org", match: { kinds: ["report.day", "report.week"] } };
      applyInput(twin, { type: "command", command: { type: "subscribe", subscription: sub } as never, at: MONDAY });
      if (cutAt === undefined) return feed(twin, MONDAY, MONDAY + 8 * DAY);
      const before = feed(twin, MONDAY, cutAt);
      twin = decodeTwin(encodeTwin(twin));
      return [...before, ...feed(twin, cutAt, MONDAY + 8 * DAY)];
    };
    const whole = run();
    expect(run(MONDAY + 2 * DAY + 23 * HOUR + 30 * MIN)).toEqual(whole);
    const mails = whole.filter((o) => o.type === "integration" && o.report !== undefined);
    expect(mails.map((o) => o.type === "integration" && o.id)).toEqual([
      ...Array.from({ length: 7 }, (_, i) => `d3:report.day:${MONDAY + i * DAY}:mail`),
      `d3:report.week:${MONDAY}:mail`,
    ]);
  });

  it("reset clears the accumulators; a snapshot written before reports existed decodes with empty ones", () => {
    const twin = createTwin("d4");
    feed(twin, MONDAY, MONDAY + DAY + HOUR);
    expect(isReportStateEmpty(twin.reports)).toBe(false);
    applyInput(twin, { type: "command", command: { type: "reset" }, at: MONDAY + 2 * DAY });
    expect(isReportStateEmpty(twin.reports)).toBe(true);
    const old = decodeTwin(Uint8Array.from(atob(OLD_SNAPSHOT), (c) => c.charCodeAt(0)));
    expect(old.readings).toBeGreaterThan(0);
    expect(isReportStateEmpty(old.reports)).toBe(true);
  });
});

/** week5min-1@7 of the golden corpus as the encoder of 327c28c wrote it (no report section). */
const OLD_SNAPSHOT =
  "3gAGoXYBomlksWdvbGRlbi13ZWVrNW1pbi0xoXPFBLcBB4niAgSYmZmZmZlKwIFf/3/FkQGdjgG9jgHtkAGFjwHVjgHVjQGFJqUmzSbFJuUm1SadJojrs/gMP4ASIH3SJ33BL0C53P58dur6QPIkQDBavC1AKJgCnQmY7E6w3A4ABAEAAAAAYGRAobwR////BwxEqAEMAJkBB1EeyLD4HICbx0HfPFB2whyBKDgBCGJGWWF2cWJFe2tjYIZqantYUEdjaoB3CF2Rh3l0cW9wbHd6hkBzeGmDQFiDUVhof7QBKe4BAlkDDACgAgChAQRzXAEH+br8bqcDB3U7v57fAwRktlsEinpHgBKcqqqqOv2IQOH/b5a9G5ZBjHggDxvth0CeI+xZoCTYpSfIqk4AtrQF/spY////BwzQA+MEDACgBglOs7JSENTZizHaipB4p4JPFlMz2Iy6oCcDCf7kFcS6+htEeinJCv06cCLVfx5xpiVoDKs+CVxNLV0YL1tIlEbtDYS52TBLrwXZ/XOYtiY9f7QB0AOuBQSBBQK6oAIAlwYGYHS5AAlTx259WnYsCWapfg37dCoG0VaF1AIHBiIFk5MAgBKK4ziOI55uQM9xnAZGoGZB93vyObRLbUCwCfQc6g3AoUTwojYA0OEBltga////BwyQAc0BDADuAQgfFWJHEiodHT47KDM4IR4wJSeinycyCFlWV39nYWxaV4ZmbGJcaHhwa1l+YFl0CHBqk2JlgmV+kWRvdWZxhG9kYnM0WYVmf7QBePkBAwYCAQ2gAgD1AQUsHZgBCH2CfXiAdAh8d3t/d4QFbLRGIAQ7d/aAEt9Apw20ejVA1Zi7BlDnskAH+nc6h4o1QL4B8AHUnAHw+UuQ/jsA8PgPBJuZmZmZVa5A////BwzlLpcDDACcMAkcQtFJsAGCgDoAfIDceUDODUtnNHDogmYSCb8uejon7p03dJmECVO4ihfBaBDzwWoWDpsyCaCWBUyW7JahctTWwfITzmI5ebZaXQvWL1lBf7QBjC7wAwJJAzQDoAIA+y8GXqSeBgns9tFL2O4eCQXn+VPnrx4GpAJBywQFf02DDoAS4P4gQ6U/RkAhv6FqEeL9QNOh/ahqRkdAwAKgvQOUjwOQ9i2gqC8ABDQzMzMzz4FABBuF61E4ML9A////BwyNHZIPDACAIgvoHM05dgSTSvRhM/xLoNwGJIePGCh5zvEDR6hUOO0ACxqUZHWliD2FTrOKkttn33qKwlLOj39D490QAVgzuJkSC5tk1eTOB77I3VJ2uB3dXh8orqAZ1GxUJSM4GwcuFREQf7QBhBmbEwYO6BkF0LIHoAIAlCMIc2mqOxQLA8VmKfH5zHACC63spkePuU1tAgdtvGR6DgIH5F5wDPsCgBIcfdInffs2QE5dbrcv4QRB3Nk5deHeNUBQ/AIENDMzMzMzK0CwgT2I70wABM7MzMzMpHBABJiZmZkZR7BA////BwxRqgIMANYBByze9umX5GHeTJFDWnG2LqYniqkCCIBWs4JgmYRRd4aVe3qQfIVWhpSIio1xCIZ9ZpqNZXtfpHB7kHt7mWVhjHRufoKzf7QBUaoCAQ8DkAGgAgDmAQXkUvYACJaYi5WakgiWlKCUj5cFmSQlFgVskuIYoWOTzQkAAAChcJLLQnlGVPlXAAAAoXTLQnlGVPjaAAA=";
