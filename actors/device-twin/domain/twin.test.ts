import { describe, expect, it } from "vitest";
import { applyInput, createTwin, nextWakeAt } from "./twin.ts";
import type { TwinInput, TwinState } from "./twin.ts";
import { encodeTwin, twinEqual } from "./twin-snapshot.ts";
import { twinView } from "./view.ts";
import type { Alert, Command, Reading, Rule, Subscription, TwinOutput } from "./types.ts";

const T = Date.UTC(2024, 0, 10, 8, 0, 0);
const MIN = 60_000;
const DEV = "dev-1";

const readings = (rs: Reading[], receivedAt = rs.at(-1)?.t ?? T): TwinInput => ({ type: "readings", readings: rs, receivedAt });
const command = (c: unknown, at = T): TwinInput => ({ type: "command", command: c as Command, at });
const alertsOf = (outs: TwinOutput[]): Alert[] => outs.flatMap((o) => (o.type === "alert" ? [o.alert] : []));
const integrationsOf = (outs: TwinOutput[]) => outs.filter((o) => o.type === "integration");

function ok(state: TwinState, c: unknown, at = T) {
  const step = applyInput(state, command(c, at));
  if (!step.result?.ok) throw new Error(`command failed: ${JSON.stringify(step.result)}`);
  return step;
}

const co2Rule: Rule = { id: "co2-fast", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 0, clearDurationMs: 0 };
const hook: Subscription = { id: "hook", provider: "webhook", match: { kinds: ["event.start", "event.end"] }, target: "https://example.com/h" };

describe("readings: ordering and de-duplication", () => {
  it("counts duplicates and late readings without touching stats or events", () => {
    const s = createTwin(DEV);
    ok(s, { type: "putRule", rule: co2Rule });
    applyInput(s, readings([{ t: T, co2: 500 }, { t: T + MIN, co2: 600 }]));
    const before = encodeTwin(s);
    const step = applyInput(s, readings([{ t: T + MIN, co2: 900 }, { t: T, co2: 900 }, { t: T - 5 * MIN, co2: 900 }], T + 2 * MIN));
    expect(alertsOf(step.outputs)).toEqual([]);
    expect(s.duplicates).toBe(1);
    expect(s.late).toBe(2);
    expect(s.readings).toBe(2);
    const view = twinView(s);
    expect(view.channels.co2).toMatchObject({ count: 2, max: 600 });
    expect(view.events["co2-fast"]).toEqual({ state: "normal" });
    // only the counters and lastSeen moved
    const after = structuredClone(s);
    after.duplicates = 0;
    after.late = 0;
    after.presence.lastSeen = T + MIN;
    expect(encodeTwin(after)).toEqual(before);
  });

  it("applies readings in order: stats, events → alerts → integrations", () => {
    const s = createTwin(DEV);
    ok(s, { type: "putRule", rule: co2Rule });
    ok(s, { type: "subscribe", subscription: hook });
    const step = applyInput(s, readings([{ t: T, co2: 500, tmp: 20 }, { t: T + MIN, co2: 900 }, { t: T + 2 * MIN, co2: 650 }]));
    // co2 jumping 400 ppm in a minute to 900 also tells the occupancy model that people came in
    expect(step.outputs.map((o) => (o.type === "alert" ? o.alert.id : o.type === "integration" ? o.id : o.type === "occupancy" ? o.occupancy.id : o.type))).toEqual([
      `${DEV}:occupancy:${T + MIN}`,
      `${DEV}:co2-fast:${T + MIN}:start`,
      `${DEV}:co2-fast:${T + MIN}:start:hook`,
      `${DEV}:co2-fast:${T + MIN}:end`,
      `${DEV}:co2-fast:${T + MIN}:end:hook`,
    ]);
    expect(integrationsOf(step.outputs)[0]).toMatchObject({ provider: "webhook", deviceId: DEV, subscriptionId: "hook", target: hook.target });
  });

  it("emits closed aggregates from the stats", () => {
    const s = createTwin(DEV);
    const step = applyInput(s, readings([{ t: T, co2: 500 }, { t: T + 61 * MIN, co2: 600 }]));
    expect(step.outputs.filter((o) => o.type === "aggregate").length).toBeGreaterThan(0);
  });
});

describe("commands", () => {
  it("putRule / deleteRule / subscribe / unsubscribe / recalibrate / reset answer their results", () => {
    const s = createTwin(DEV);
    expect(ok(s, { type: "putRule", rule: co2Rule }).result).toEqual({ ok: true, value: { type: "putRule", rule: co2Rule } });
    expect(twinView(s).rules.map((r) => r.id)).toEqual(["default-pm", "default-co2", "default-voc", "default-allpollu", "co2-fast"]);
    expect(ok(s, { type: "deleteRule", ruleId: "default-voc" }).result).toEqual({ ok: true, value: { type: "deleteRule", ruleId: "default-voc" } });
    expect(twinView(s).rules.map((r) => r.id)).not.toContain("default-voc");
    expect(ok(s, { type: "subscribe", subscription: hook }).result).toEqual({ ok: true, value: { type: "subscribe", subscription: hook } });
    expect(twinView(s).subscriptions).toEqual([hook]);
    expect(ok(s, { type: "unsubscribe", subscriptionId: "hook" }).result).toEqual({ ok: true, value: { type: "unsubscribe", subscriptionId: "hook" } });
    expect(twinView(s).subscriptions).toEqual([]);
    const recal = ok(s, { type: "recalibrate", channel: "co2" }, T + 5);
    expect(recal.outputs).toEqual([{ type: "calibration", calibration: expect.objectContaining({ deviceId: DEV, channel: "co2", at: T + 5 }) }]);
    expect(recal.result).toEqual({ ok: true, value: { type: "recalibrate", channel: "co2", calibration: (recal.outputs[0] as { calibration: unknown }).calibration } });
    expect(ok(s, { type: "reset" }).result).toEqual({ ok: true, value: { type: "reset" } });
  });

  it.each([
    ["unknown type", { type: "nope" }, "AIRTWIN_ERR_COMMAND_INVALID", "type"],
    ["bad rule", { type: "putRule", rule: { ...co2Rule, exit: 900 } }, "AIRTWIN_ERR_RULE_INVALID", "rule.exit"],
    ["rule limit", { type: "putRule", rule: { ...co2Rule, id: "r-new" } }, "AIRTWIN_ERR_RULE_LIMIT", "rule.id"],
    ["unknown rule", { type: "deleteRule", ruleId: "missing" }, "AIRTWIN_ERR_RULE_NOT_FOUND", "ruleId"],
    ["bad subscription", { type: "subscribe", subscription: { ...hook, provider: "Fax Machine" } }, "AIRTWIN_ERR_SUBSCRIPTION_INVALID", "subscription.provider"],
    ["subscription limit", { type: "subscribe", subscription: { ...hook, id: "s-new" } }, "AIRTWIN_ERR_SUBSCRIPTION_LIMIT", "subscription.id"],
    ["unknown subscription", { type: "unsubscribe", subscriptionId: "missing" }, "AIRTWIN_ERR_SUBSCRIPTION_NOT_FOUND", "subscriptionId"],
    ["bad recalibrate channel", { type: "recalibrate", channel: "tmp" }, "AIRTWIN_ERR_COMMAND_INVALID", "channel"],
    ["reset with junk", { type: "reset", all: 1 }, "AIRTWIN_ERR_COMMAND_INVALID", "all"],
  ])("rejects %s with a coded error and changes nothing", (_name, c, code, field) => {
    const s = fullTwin();
    const before = encodeTwin(s);
    const copy = structuredClone(s);
    const step = applyInput(s, command(c));
    expect(step.result?.ok).toBe(false);
    if (step.result?.ok !== false) return;
    expect(step.result.error.code).toBe(code);
    expect(step.result.error.details?.map((d) => d.field)).toContain(field);
    expect(step.outputs).toEqual([]);
    expect(encodeTwin(s)).toEqual(before);
    expect(twinEqual(s, copy)).toBe(true);
  });

  it("replacing or deleting a rule with an open event ends it at the rule's last reading", () => {
    const s = createTwin(DEV);
    ok(s, { type: "putRule", rule: { ...co2Rule, clearDurationMs: 10 * MIN } });
    ok(s, { type: "subscribe", subscription: hook });
    applyInput(s, readings([{ t: T, co2: 900 }, { t: T + MIN, co2: 1000 }, { t: T + 2 * MIN, tmp: 20 }]));
    const replaced = ok(s, { type: "putRule", rule: { ...co2Rule, enter: 850 } });
    expect(alertsOf(replaced.outputs)).toEqual([{
      id: `${DEV}:co2-fast:${T}:end`, deviceId: DEV, ruleId: "co2-fast", channel: "co2", kind: "event.end", at: T + MIN,
      eventId: `${DEV}:co2-fast:${T}`, startedAt: T, endedAt: T + MIN, durationMs: MIN, peak: 1000, mean: 950,
    }]);
    expect(integrationsOf(replaced.outputs)).toHaveLength(1);
    expect(twinView(s).events["co2-fast"]).toEqual({ state: "normal" });
    // the same rule again is a no-op: nothing ends
    applyInput(s, readings([{ t: T + 3 * MIN, co2: 900 }]));
    expect(ok(s, { type: "putRule", rule: { ...co2Rule, enter: 850 } }).outputs).toEqual([]);
    expect(twinView(s).events["co2-fast"]?.state).toBe("active");
    const deleted = ok(s, { type: "deleteRule", ruleId: "co2-fast" });
    expect(alertsOf(deleted.outputs).map((a) => [a.kind, a.endedAt])).toEqual([["event.end", T + 3 * MIN]]);
    expect(s.events.ids).toEqual([]);
  });

  it("unsubscribing stops forwarding at once", () => {
    const s = createTwin(DEV);
    ok(s, { type: "putRule", rule: co2Rule });
    ok(s, { type: "subscribe", subscription: hook });
    expect(integrationsOf(applyInput(s, readings([{ t: T, co2: 900 }])).outputs)).toHaveLength(1);
    ok(s, { type: "unsubscribe", subscriptionId: "hook" });
    const step = applyInput(s, readings([{ t: T + MIN, co2: 600 }]));
    expect(alertsOf(step.outputs).map((a) => a.kind)).toEqual(["event.end"]);
    expect(integrationsOf(step.outputs)).toEqual([]);
  });

  it("reset clears stats, events and counters, ends open events, keeps rules, subscriptions and lastT", () => {
    const s = createTwin(DEV);
    ok(s, { type: "putRule", rule: co2Rule });
    ok(s, { type: "subscribe", subscription: hook });
    applyInput(s, readings([{ t: T, co2: 900 }, { t: T, co2: 900 }]));
    const step = ok(s, { type: "reset" });
    expect(alertsOf(step.outputs).map((a) => a.kind)).toEqual(["event.end"]);
    expect(integrationsOf(step.outputs)).toHaveLength(1);
    const view = twinView(s);
    expect(view).toMatchObject({ readings: 0, duplicates: 0, late: 0, lastT: T, channels: {} });
    expect(view.rules.map((r) => r.id)).toContain("co2-fast");
    expect(view.subscriptions).toEqual([hook]);
    applyInput(s, readings([{ t: T - 1, co2: 500 }]));
    expect(s.late).toBe(1);
  });
});

describe("presence through applyInput", () => {
  it("offline once via tick, online with the next reading, wake-ups for the runtime", () => {
    const s = createTwin(DEV);
    expect(nextWakeAt(s)).toBeUndefined();
    ok(s, { type: "subscribe", subscription: { ...hook, match: { channels: ["device"] } } });
    applyInput(s, readings([{ t: T - 3600_000, co2: 500 }], T));
    expect(nextWakeAt(s)).toBe(T + 15 * MIN);
    expect(nextWakeAt(s, { offlineAfterMs: MIN })).toBe(T + MIN);
    expect(applyInput(s, { type: "tick", now: T + 14 * MIN }).outputs).toEqual([]);
    const off = applyInput(s, { type: "tick", now: T + 16 * MIN });
    expect(alertsOf(off.outputs)).toEqual([{ id: `${DEV}:offline:${T}`, deviceId: DEV, channel: "device", kind: "offline", at: T + 15 * MIN }]);
    expect(integrationsOf(off.outputs)).toHaveLength(1);
    expect(applyInput(s, { type: "tick", now: T + 17 * MIN }).outputs).toEqual([]);
    expect(nextWakeAt(s)).toBeUndefined();
    expect(twinView(s).online).toBe(false);
    const on = applyInput(s, readings([{ t: T - 3600_000, co2: 500 }], T + 20 * MIN));
    expect(alertsOf(on.outputs).map((a) => a.id)).toEqual([`${DEV}:online:${T + 20 * MIN}`]);
    expect(s.duplicates).toBe(1);
    expect(twinView(s).online).toBe(true);
    expect(twinView(s, { now: T + 36 * MIN }).online).toBe(false);
  });
});

describe("twinView", () => {
  it("has docs/design.md §5's names", () => {
    const s = createTwin(DEV);
    applyInput(s, readings([{ t: T, co2: 500, pm: 3 }, { t: T + MIN, co2: 1500 }], T + MIN + 10));
    const v = twinView(s);
    expect(Object.keys(v).sort()).toEqual(["calibration", "channels", "deviceId", "duplicates", "events", "lastSeen", "lastT", "late", "occupancy", "online", "readings", "rules", "subscriptions"]);
    expect(Object.keys(v.channels).sort()).toEqual(["co2", "pm"]);
    expect(Object.keys(v.channels.co2!).sort()).toEqual(["count", "daily", "ewma", "expected", "forecast", "hourly", "last", "lastAt", "max", "maxAt", "mean", "min", "minAt", "stddev"]);
    expect(v.channels.co2!.forecast!.map((f) => f.at)).toEqual([15, 30, 45, 60].map((m) => T + MIN + m * MIN));
    expect(Object.keys(v.occupancy!).sort()).toEqual(["occupied", "probability", "since"]);
    expect(v.events["default-co2"]).toEqual({ state: "pending", since: T + MIN });
    expect(v).toMatchObject({ deviceId: DEV, lastSeen: T + MIN + 10, lastT: T + MIN, readings: 2, online: true });
  });
});

/** A twin at both limits with open events and a few readings, for "rejection changes nothing" tests. */
function fullTwin(): TwinState {
  const s = createTwin(DEV);
  ok(s, { type: "putRule", rule: co2Rule });
  for (let i = 0; s.rules.effective.length < 32; i++) ok(s, { type: "putRule", rule: { ...co2Rule, id: `r${i}`, enter: 1000 + i } });
  for (let i = 0; s.subscriptions.length < 16; i++) ok(s, { type: "subscribe", subscription: { ...hook, id: `s${i}` } });
  applyInput(s, readings([{ t: T, co2: 1010, tmp: 21 }, { t: T + MIN, co2: 1020 }]));
  return s;
}
