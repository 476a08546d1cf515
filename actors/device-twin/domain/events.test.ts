// Table-driven tests of every transition of the pollution-event state machine (docs/design.md §4).
import { describe, expect, it } from "vitest";
import {
  applyReadingToEvents,
  createEventStates,
  decodeEventStates,
  encodeEventStates,
  eventsView,
  retireRuleEvents,
} from "./events.ts";
import type { EventPhase, EventStates } from "./events.ts";
import type { Alert, Reading, Rule } from "./types.ts";

const DEV = "dev";
const ABOVE: Rule = { id: "r", channel: "co2", direction: "above", enter: 100, exit: 50, minDurationMs: 10, clearDurationMs: 10 };
const BELOW: Rule = { id: "b", channel: "hum", direction: "below", enter: 20, exit: 30, minDurationMs: 10, clearDurationMs: 10 };

/** [t, value] of the rule's channel, or [t] for a reading that carries only another channel. */
type Step = [number, number?];

function run(rule: Rule, steps: Step[], states: EventStates = createEventStates()) {
  const phases: EventPhase[] = [];
  const alerts: Alert[] = [];
  for (const [t, v] of steps) {
    const reading: Reading = v === undefined ? { t, tmp: 21 } : { t, [rule.channel]: v };
    alerts.push(...applyReadingToEvents(states, [rule], DEV, reading));
    phases.push(eventsView(states, [rule], DEV)[rule.id]!.state);
  }
  return { phases, alerts, states };
}

interface Row {
  name: string;
  rule?: Partial<Rule>;
  base?: Rule;
  steps: Step[];
  phases: EventPhase[];
  alerts?: Array<Partial<Alert>>;
}

const start = (startedAt: number, at: number, value: number, threshold = 100, ruleId = "r"): Partial<Alert> => ({
  id: `${DEV}:${ruleId}:${startedAt}:start`, kind: "event.start", eventId: `${DEV}:${ruleId}:${startedAt}`,
  startedAt, at, value, threshold,
});
const end = (startedAt: number, endedAt: number, at: number, peak: number, mean: number, ruleId = "r"): Partial<Alert> => ({
  id: `${DEV}:${ruleId}:${startedAt}:end`, kind: "event.end", eventId: `${DEV}:${ruleId}:${startedAt}`,
  startedAt, endedAt, durationMs: endedAt - startedAt, at, peak, mean,
});

const rows: Row[] = [
  { name: "normal stays normal below enter", steps: [[0, 99.9]], phases: ["normal"] },
  { name: "normal → pending exactly at enter", steps: [[0, 100]], phases: ["pending"] },
  { name: "pending → normal when the value drops under enter (nothing emitted)", steps: [[0, 120], [5, 99]], phases: ["pending", "normal"], alerts: [] },
  { name: "pending stays pending before minDurationMs", steps: [[0, 120], [9, 130]], phases: ["pending", "pending"], alerts: [] },
  { name: "pending → active after minDurationMs, start at t0", steps: [[0, 120], [10, 130]], phases: ["pending", "active"], alerts: [start(0, 10, 130)] },
  { name: "pending → active needs the value still at/over enter", steps: [[0, 120], [10, 99]], phases: ["pending", "normal"], alerts: [] },
  { name: "active stays active between exit and enter", steps: [[0, 120], [10, 130], [20, 51]], phases: ["pending", "active", "active"] },
  { name: "active → clearing exactly at exit", steps: [[0, 120], [10, 130], [20, 50]], phases: ["pending", "active", "clearing"] },
  { name: "clearing → active when the value rises over exit", steps: [[0, 120], [10, 130], [20, 40], [25, 51]], phases: ["pending", "active", "clearing", "active"] },
  { name: "clearing stays clearing before clearDurationMs", steps: [[0, 120], [10, 130], [20, 40], [29, 45]], phases: ["pending", "active", "clearing", "clearing"] },
  {
    name: "clearing → normal after clearDurationMs: end over t0 <= t < t1",
    steps: [[0, 120], [10, 130], [20, 40], [30, 45]],
    phases: ["pending", "active", "clearing", "normal"],
    alerts: [start(0, 10, 130), { ...end(0, 20, 30, 130, 125), value: 45, threshold: 50 }],
  },
  {
    name: "values seen while clearing belong to the event when it returns to active",
    steps: [[0, 120], [10, 130], [20, 40], [25, 45], [28, 60], [40, 50], [50, 10]],
    phases: ["pending", "active", "clearing", "clearing", "active", "clearing", "normal"],
    alerts: [start(0, 10, 130), end(0, 40, 50, 130, (120 + 130 + 40 + 45 + 60) / 5)],
  },
  { name: "minDurationMs 0: the first reading at enter starts the event", rule: { minDurationMs: 0 }, steps: [[0, 99], [5, 100]], phases: ["normal", "active"], alerts: [start(5, 5, 100)] },
  {
    name: "clearDurationMs 0: the first reading at exit ends the event",
    rule: { clearDurationMs: 0 },
    steps: [[0, 120], [10, 130], [20, 50]],
    phases: ["pending", "active", "normal"],
    alerts: [start(0, 10, 130), end(0, 20, 20, 130, 125)],
  },
  {
    name: "both durations 0: an instant threshold crossing, one reading each way",
    rule: { minDurationMs: 0, clearDurationMs: 0 },
    steps: [[0, 10], [1, 100], [2, 60], [3, 50], [4, 100]],
    phases: ["normal", "active", "active", "normal", "active"],
    alerts: [start(1, 1, 100), end(1, 3, 3, 100, 80), start(4, 4, 100)],
  },
  {
    name: "a reading without the rule's channel is ignored (no time progress for the rule)",
    steps: [[0, 120], [10], [12, 130], [20], [22, 40], [32], [33, 45]],
    phases: ["pending", "pending", "active", "active", "clearing", "clearing", "normal"],
    alerts: [start(0, 12, 130), end(0, 22, 33, 130, 125)],
  },
  {
    name: "a gap in the data: durations are measured in event time across it",
    steps: [[0, 120], [86_400_000, 130], [86_400_001, 40], [172_800_000, 45]],
    phases: ["pending", "active", "clearing", "normal"],
    alerts: [start(0, 86_400_000, 130), end(0, 86_400_001, 172_800_000, 130, 125)],
  },
  {
    name: "below: normal → pending at enter, → active after min, start threshold = enter",
    base: BELOW,
    steps: [[0, 20.5], [1, 20], [11, 15]],
    phases: ["normal", "pending", "active"],
    alerts: [start(1, 11, 15, 20, "b")],
  },
  { name: "below: pending → normal when the value rises over enter", base: BELOW, steps: [[0, 10], [5, 21]], phases: ["pending", "normal"], alerts: [] },
  {
    name: "below: clearing at exit, back to active under exit, end with peak = min",
    base: BELOW,
    steps: [[0, 20], [10, 15], [20, 25], [30, 30], [35, 29.9], [40, 31], [50, 35]],
    phases: ["pending", "active", "active", "clearing", "active", "clearing", "normal"],
    alerts: [start(0, 10, 15, 20, "b"), { ...end(0, 40, 50, 15, (20 + 15 + 25 + 30 + 29.9) / 5, "b"), threshold: 30 }],
  },
  {
    name: "below: clearDurationMs 0 ends at the first reading at/over exit",
    base: BELOW,
    rule: { clearDurationMs: 0 },
    steps: [[0, 5], [10, 5], [20, 30]],
    phases: ["pending", "active", "normal"],
    alerts: [start(0, 10, 5, 20, "b"), end(0, 20, 20, 5, 5, "b")],
  },
];

describe("event state machine transitions", () => {
  it.each(rows)("$name", ({ rule, base, steps, phases, alerts }) => {
    const r = { ...(base ?? ABOVE), ...rule };
    const got = run(r, steps);
    expect(got.phases).toEqual(phases);
    if (alerts !== undefined) {
      expect(got.alerts).toHaveLength(alerts.length);
      alerts.forEach((a, i) => {
        const { mean, ...rest } = a;
        expect(got.alerts[i]).toMatchObject({ deviceId: DEV, ruleId: r.id, channel: r.channel, ...rest });
        if (mean !== undefined) expect(got.alerts[i]!.mean).toBeCloseTo(mean, 9);
      });
    }
  });

  it("alerts carry exactly the docs/design.md §5 payload fields", () => {
    const { alerts } = run(ABOVE, [[0, 120], [10, 130], [20, 40], [30, 45]]);
    expect(Object.keys(alerts[0]!)).toEqual(["id", "deviceId", "ruleId", "channel", "kind", "at", "value", "threshold", "eventId", "startedAt"]);
    expect(alerts[1]).toEqual({
      id: "dev:r:0:end", deviceId: DEV, ruleId: "r", channel: "co2", kind: "event.end", at: 30, value: 45, threshold: 50,
      eventId: "dev:r:0", startedAt: 0, endedAt: 20, durationMs: 20, peak: 130, mean: 125,
    });
  });

  it("rules are independent and a normal rule costs no slot", () => {
    const states = createEventStates();
    const other: Rule = { ...ABOVE, id: "o", channel: "pm", enter: 30, exit: 20 };
    applyReadingToEvents(states, [ABOVE, other], DEV, { t: 0, co2: 200, pm: 5 });
    expect(states.ids).toEqual(["r"]);
    expect(states.d).toHaveLength(9);
    applyReadingToEvents(states, [ABOVE, other], DEV, { t: 1, co2: 20, pm: 40 });
    expect(states.ids).toEqual(["o"]);
  });

  it("eventsView reports since, event id, peak and mean so far (clearing values included)", () => {
    const { states } = run(ABOVE, [[0, 120], [10, 130], [20, 40]]);
    expect(eventsView(states, [ABOVE, BELOW], DEV)).toEqual({
      r: { state: "clearing", since: 20, eventId: "dev:r:0", startedAt: 0, peak: 130, mean: (120 + 130 + 40) / 3 },
      b: { state: "normal" },
    });
    expect(eventsView(run(ABOVE, [[5, 120]]).states, [ABOVE], DEV)).toEqual({ r: { state: "pending", since: 5 } });
  });
});

describe("retiring a rule's machine (rule replaced, deleted or twin reset)", () => {
  it("an active event ends at the last reading the rule saw, over every value it saw", () => {
    const { states } = run(ABOVE, [[0, 120], [10, 130], [15, 140], [16]]);
    expect(retireRuleEvents(states, ABOVE, DEV)).toEqual([{
      id: "dev:r:0:end", deviceId: DEV, ruleId: "r", channel: "co2", kind: "event.end", at: 15,
      eventId: "dev:r:0", startedAt: 0, endedAt: 15, durationMs: 15, peak: 140, mean: 130,
    }]);
    expect(states).toEqual(createEventStates());
  });

  it("a clearing event ends at the last reading, clearing values included", () => {
    const { states } = run(ABOVE, [[0, 120], [10, 130], [20, 40]]);
    const [a] = retireRuleEvents(states, ABOVE, DEV);
    expect(a).toMatchObject({ kind: "event.end", endedAt: 20, durationMs: 20, peak: 130 });
    expect(a!.mean).toBeCloseTo(290 / 3, 9);
  });

  it("a pending rule is dropped silently; a normal one has nothing to retire", () => {
    const { states } = run(ABOVE, [[0, 120]]);
    expect(retireRuleEvents(states, ABOVE, DEV)).toEqual([]);
    expect(states.ids).toEqual([]);
    expect(retireRuleEvents(states, ABOVE, DEV)).toEqual([]);
  });

  it("a new event of the replacing rule starts fresh", () => {
    const { states } = run(ABOVE, [[0, 120], [10, 130]]);
    retireRuleEvents(states, ABOVE, DEV);
    const replaced = { ...ABOVE, enter: 125 };
    expect(run(replaced, [[11, 124], [12, 126], [22, 126]], states).alerts).toEqual([
      expect.objectContaining({ kind: "event.start", startedAt: 12, at: 22 }),
    ]);
  });
});

describe("event state encoding", () => {
  it("round-trips through the plain form and rejects garbage", () => {
    const { states } = run(ABOVE, [[0, 120], [10, 130], [20, 40]]);
    const decoded = decodeEventStates(structuredClone(encodeEventStates(states)), [ABOVE]);
    expect(decoded).toEqual(states);
    expect(run(ABOVE, [[30, 45]], decoded).alerts).toEqual(run(ABOVE, [[30, 45]], states).alerts);
    expect(decodeEventStates([["r"], [1, 2]], [ABOVE])).toBeUndefined();
    expect(decodeEventStates([["x"], encodeEventStates(states)[1]], [ABOVE])).toBeUndefined();
    expect(decodeEventStates("nope", [ABOVE])).toBeUndefined();
    expect(decodeEventStates([[], []], [ABOVE])).toEqual(createEventStates());
  });
});
