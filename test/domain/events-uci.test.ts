// UCI occupancy replay: the twin's co2 events on real office data equal the naive reference's, and a few
// hand-checked facts about them are pinned so the comparison is not circular.
import { describe, expect, it } from "vitest";
import { DEFAULT_RULES } from "../../actors/device-twin/domain/rules.ts";
import { applyInput, createTwin } from "../../actors/device-twin/domain/twin.ts";
import type { Alert, Rule } from "../../actors/device-twin/domain/types.ts";
import { twinView } from "../../actors/device-twin/domain/view.ts";
import { referenceEvents } from "./events-reference.ts";
import { loadUciReadings, UCI_TRAINING } from "./uci.ts";
import type { RefEvent } from "./events-reference.ts";

const MIN = 60_000;
const USER_RULE: Rule = { id: "co2-occupied", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 5 * MIN, clearDurationMs: 15 * MIN };

const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());

function twinEvents(alerts: Alert[], ruleId: string): RefEvent[] {
  const out: RefEvent[] = [];
  // forecast alerts name their rule too; the rule's events are its start and end alerts
  for (const a of alerts.filter((x) => x.ruleId === ruleId && (x.kind === "event.start" || x.kind === "event.end"))) {
    if (a.kind === "event.start") out.push({ startedAt: a.startedAt!, startAt: a.at, startValue: a.value! });
    else Object.assign(out.at(-1)!, { endedAt: a.endedAt, endAt: a.at, peak: a.peak, mean: a.mean });
  }
  return out;
}

describe("UCI occupancy replay (datatraining.txt as one device)", () => {
  const readings = loadUciReadings(UCI_TRAINING);
  const twin = createTwin("uci-office");
  applyInput(twin, { type: "command", command: { type: "putRule", rule: USER_RULE }, at: readings[0]!.t });
  const alerts: Alert[] = [];
  for (let i = 0; i < readings.length; i += 50) {
    const batch = readings.slice(i, i + 50);
    const { outputs } = applyInput(twin, { type: "readings", readings: batch, receivedAt: batch.at(-1)!.t + 5_000 });
    for (const o of outputs) if (o.type === "alert" && o.alert.channel === "co2") alerts.push(o.alert);
  }
  const points = readings.map((r) => ({ t: r.t, v: r.co2! }));

  it("reads the whole file, every reading applied", () => {
    expect(readings).toHaveLength(8143);
    expect(twin.readings).toBe(8143);
    expect(twin.duplicates + twin.late).toBe(0);
  });

  it.each([DEFAULT_RULES[1]!, USER_RULE])("co2 events of $id equal the reference's exactly", (rule) => {
    const got = twinEvents(alerts, rule.id);
    const want = referenceEvents(rule, points);
    expect(got.map(({ mean: _m, ...e }) => e)).toEqual(want.map(({ mean: _m, ...e }) => e));
    got.forEach((e, i) => {
      if (e.mean !== undefined) expect(e.mean).toBeCloseTo(want[i]!.mean!, 6);
    });
    console.log(`${rule.id}: ${got.length} events, first started ${iso(got[0]?.startedAt)}`);
  });

  // Read off the CSV by hand (awk over the co2 column), independently of both implementations.
  it("pins hand-checked facts: counts, times, hysteresis, peak and mean", () => {
    const occupied = twinEvents(alerts, USER_RULE.id);
    expect(occupied.map((e) => [iso(e.startedAt), iso(e.startAt), iso(e.endedAt), iso(e.endAt)])).toEqual([
      // 09:04:59 is the first co2 >= 800; 5 min later → start; last > 700 at 18:36:00, none after within 15 min
      ["2015-02-05T09:04:59.000Z", "2015-02-05T09:10:00.000Z", "2015-02-05T18:36:59.000Z", "2015-02-05T18:52:00.000Z"],
      // 09:40:59 (805) pends but 09:42:59 (796) drops it; 09:48:00 pends again and lasts
      ["2015-02-06T09:48:00.000Z", "2015-02-06T09:53:00.000Z", "2015-02-06T13:11:00.000Z", "2015-02-06T13:27:00.000Z"],
      ["2015-02-06T14:38:59.000Z", "2015-02-06T14:44:00.000Z", "2015-02-06T18:27:00.000Z", "2015-02-06T18:42:00.000Z"],
      // 09:30:59 is 1 s short of 5 min after 09:26:00; the 22:11–22:14 spike (>= 800 for 3 min) only pends
      ["2015-02-09T09:26:00.000Z", "2015-02-09T09:32:00.000Z", "2015-02-09T21:22:00.000Z", "2015-02-09T21:38:00.000Z"],
    ]);
    // 2015-02-10 09:32 and 09:33 (the file's last two readings) are >= 800: pending, not yet an event
    expect(twinView(twin).events[USER_RULE.id]).toEqual({ state: "pending", since: Date.parse("2015-02-10T09:32:00Z") });

    const high = twinEvents(alerts, "default-co2");
    expect(high).toHaveLength(1);
    const [e] = high;
    // co2 >= 1400 from 11:21:00 (1402.67), start at 11:31:00; at 19:59:59 (999) and 20:02:00 (exactly 1000)
    // it starts clearing but 20:00:59 and 20:03:00 (1001) return it to active: it clears from 20:04:00 (985.5)
    // and the first reading 10 min later is 20:15:00 (20:13:59 is 1 s short).
    expect([iso(e!.startedAt), iso(e!.startAt), iso(e!.endedAt), iso(e!.endAt)]).toEqual([
      "2015-02-09T11:21:00.000Z", "2015-02-09T11:31:00.000Z", "2015-02-09T20:04:00.000Z", "2015-02-09T20:15:00.000Z",
    ]);
    // 523 readings in [11:21:00, 20:04:00): max 2028.5, mean 1525.83
    expect(e!.peak).toBe(2028.5);
    expect(e!.mean).toBeCloseTo(1525.83, 2);
    expect(twinView(twin).events["default-co2"]).toEqual({ state: "normal" });
  });
});
