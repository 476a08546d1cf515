import { describe, expect, it } from "vitest";
import {
  MAX_SUBSCRIPTIONS,
  integrationOutputs,
  matches,
  putSubscription,
  removeSubscription,
  reportIntegrationOutputs,
  subscriptionView,
  validateSubscription,
} from "./subscriptions.ts";
import type { Alert, Report, Subscription, TwinOutput } from "./types.ts";

const sub = (over: Partial<Subscription> = {}): Subscription => ({
  id: "s1", provider: "webhook", match: {}, target: "https://example.com/hook", ...over,
});
const start: Alert = { id: "d:r:1:start", deviceId: "d", ruleId: "r", channel: "co2", kind: "event.start", at: 1, value: 1500, threshold: 1400, eventId: "d:r:1", startedAt: 1 };
const offline: Alert = { id: "d:offline:5", deviceId: "d", channel: "device", kind: "offline", at: 10 };

const fieldsOf = (x: unknown): string[] => {
  const r = validateSubscription(x);
  if (r.ok) throw new Error("expected invalid");
  expect(r.error.code).toBe("AIRTWIN_ERR_SUBSCRIPTION_INVALID");
  return (r.error.details ?? []).map((d) => d.field);
};

describe("validateSubscription", () => {
  it("accepts valid subscriptions of every provider", () => {
    expect(validateSubscription(sub())).toEqual({ ok: true, value: sub() });
    const full = sub({ provider: "thermostat", target: "nest:abc", match: { kinds: ["event.start", "event.end"], ruleIds: ["default-co2"], channels: ["co2", "device"] } });
    expect(validateSubscription(full)).toEqual({ ok: true, value: full });
    expect(validateSubscription(sub({ provider: "push", target: "token" })).ok).toBe(true);
    expect(validateSubscription(sub({ target: "http://10.0.0.1:8080/x?y=1" })).ok).toBe(true);
    const signed = sub({ secret: `whsec_${btoa("k".repeat(24))}`, match: { kinds: ["forecast", "anomaly", "report.day", "report.week"] } });
    expect(validateSubscription(signed)).toEqual({ ok: true, value: signed });
    expect(validateSubscription(sub({ secret: `whsec_${btoa("k".repeat(64))}` })).ok).toBe(true);
    expect(validateSubscription(sub({ provider: "email", target: "ana@example.org" })).ok).toBe(true);
    // a custom integration's provider (any target: the integration interprets it)
    expect(validateSubscription(sub({ provider: "chat", target: "room 7" }))).toEqual({ ok: true, value: sub({ provider: "chat", target: "room 7" }) });
  });

  it("views and subscribe results show secret: true, never the secret", () => {
    const secret = `whsec_${btoa("k".repeat(32))}`;
    expect(subscriptionView(sub({ secret }))).toEqual({ ...sub(), secret: true });
    expect(JSON.stringify(subscriptionView(sub({ secret })))).not.toContain(secret);
    expect(subscriptionView(sub())).toEqual(sub());
  });

  it.each([
    ["not an object", "x", ["subscription"]],
    ["bad id", sub({ id: "a b" }), ["id"]],
    ["provider not a token", { ...sub(), provider: "Chat App" }, ["provider"]],
    ["provider too long", { ...sub(), provider: "x".repeat(33) }, ["provider"]],
    ["match not an object", { ...sub(), match: [] }, ["match"]],
    ["missing match", { id: "a", provider: "push", target: "t" }, ["match"]],
    ["empty kinds", sub({ match: { kinds: [] } }), ["match.kinds"]],
    ["unknown kind", { ...sub(), match: { kinds: ["event.start", "boom"] } }, ["match.kinds.1"]],
    ["bad rule id", sub({ match: { ruleIds: ["ok", "not ok"] } }), ["match.ruleIds.1"]],
    ["unknown channel", { ...sub(), match: { channels: ["o3"] } }, ["match.channels.0"]],
    ["unknown match field", { ...sub(), match: { devices: ["x"] } }, ["match.devices"]],
    ["empty target", sub({ target: "" }), ["target"]],
    ["target too long", sub({ provider: "push", target: "x".repeat(2049) }), ["target"]],
    ["webhook to a relative URL", sub({ target: "/hook" }), ["target"]],
    ["webhook to a non-http URL", sub({ target: "ftp://example.com/x" }), ["target"]],
    ["unknown field", { ...sub(), headers: "x" }, ["headers"]],
    ["secret not whsec_", sub({ secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" }), ["secret"]],
    ["secret too short (16 bytes)", sub({ secret: `whsec_${btoa("x".repeat(16))}` }), ["secret"]],
    ["secret too long (65 bytes)", sub({ secret: `whsec_${btoa("x".repeat(65))}` }), ["secret"]],
    ["secret not base64", sub({ secret: "whsec_!!!!" + "A".repeat(32) }), ["secret"]],
    ["secret on a push subscription", sub({ provider: "push", target: "tok", secret: `whsec_${btoa("x".repeat(32))}` }), ["secret"]],
    ["email to a non-address", sub({ provider: "email", target: "not an address" }), ["target"]],
    ["unknown report kind", { ...sub(), match: { kinds: ["report.month"] } }, ["match.kinds.0"]],
  ])("rejects %s naming the fields", (_name, input, fields) => {
    expect(fieldsOf(input)).toEqual(fields);
  });
});

describe("matches", () => {
  it.each([
    ["no filters match everything", {}, [true, true]],
    ["kinds: any of", { kinds: ["offline", "online"] }, [false, true]],
    ["ruleIds: alerts without a rule never match", { ruleIds: ["r"] }, [true, false]],
    ["channels incl. device", { channels: ["device"] }, [false, true]],
    ["AND across filters", { kinds: ["event.start"], channels: ["pm"] }, [false, false]],
    ["AND across filters, all satisfied", { kinds: ["event.start", "offline"], channels: ["co2", "device"] }, [true, true]],
  ] as Array<[string, Subscription["match"], [boolean, boolean]]>)("%s", (_name, match, expected) => {
    expect([matches(sub({ match }), start), matches(sub({ match }), offline)]).toEqual(expected);
  });
});

describe("integrationOutputs and the subscription list", () => {
  it("one output per matching subscription with a deterministic id", () => {
    const subs = [sub(), sub({ id: "s2", provider: "push", target: "tok", match: { kinds: ["offline"] } })];
    expect(integrationOutputs(subs, start)).toEqual([
      { type: "integration", id: "d:r:1:start:s1", provider: "webhook", deviceId: "d", subscriptionId: "s1", target: "https://example.com/hook", alert: start },
    ]);
    expect(integrationOutputs(subs, offline).map((o) => o.type === "integration" && o.id)).toEqual(["d:offline:5:s1", "d:offline:5:s2"]);
  });

  it("reports go only to subscriptions whose kinds name them; rule and channel filters do not apply", () => {
    const report: Report = { id: "d:report.day:0", deviceId: "d", kind: "report.day", start: 0, end: 86_400_000, channels: {}, rules: {}, events: [], eventsOmitted: 0, occupiedHours: 0 };
    const subs = [
      sub({ id: "all" }),
      sub({ id: "daily", provider: "email", target: "a@b.io", match: { kinds: ["report.day"], channels: ["pm"] } }),
      sub({ id: "weekly", match: { kinds: ["report.week"] } }),
    ];
    const out: TwinOutput[] = [];
    reportIntegrationOutputs(subs, report, out);
    expect(out).toEqual([{ type: "integration", id: "d:report.day:0:daily", provider: "email", deviceId: "d", subscriptionId: "daily", target: "a@b.io", report }]);
  });

  it("put replaces by id in place, enforces the limit; remove reports unknown ids", () => {
    let subs: readonly Subscription[] = [];
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) {
      const r = putSubscription(subs, sub({ id: `s${i}` }));
      if (!r.ok) throw new Error(r.error.message);
      subs = r.value;
    }
    const over = putSubscription(subs, sub({ id: "extra" }));
    expect(!over.ok && over.error.code).toBe("AIRTWIN_ERR_SUBSCRIPTION_LIMIT");
    const replaced = putSubscription(subs, sub({ id: "s3", target: "https://other.example/" }));
    expect(replaced.ok && replaced.value[3]!.target).toBe("https://other.example/");
    expect(subs[3]!.target).toBe("https://example.com/hook");
    const removed = removeSubscription(subs, "s0");
    expect(removed.ok && removed.value.map((s) => s.id)).not.toContain("s0");
    const missing = removeSubscription(subs, "nope");
    expect(!missing.ok && missing.error.code).toBe("AIRTWIN_ERR_SUBSCRIPTION_NOT_FOUND");
  });
});
