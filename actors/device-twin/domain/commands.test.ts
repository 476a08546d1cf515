import { describe, expect, it } from "vitest";
import { validateCommand } from "./commands.ts";
import type { Command, Rule, Subscription } from "./types.ts";

const rule: Rule = { id: "co2-high", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 300_000, clearDurationMs: 900_000 };
const subscription: Subscription = { id: "s1", provider: "webhook", match: { kinds: ["event.start"] }, target: "https://example.com/h" };

describe("validateCommand", () => {
  it.each<Command>([
    { type: "putRule", rule },
    { type: "deleteRule", ruleId: "default-co2" },
    { type: "subscribe", subscription },
    { type: "unsubscribe", subscriptionId: "s1" },
    { type: "recalibrate", channel: "co2" },
    { type: "recalibrate", channel: "voc" },
    { type: "reset" },
  ])("accepts $type", (cmd) => {
    expect(validateCommand(structuredClone(cmd))).toEqual({ ok: true, value: cmd });
  });

  it.each([
    ["not an object", null, "AIRTWIN_ERR_COMMAND_INVALID", ["command"]],
    ["no type", {}, "AIRTWIN_ERR_COMMAND_INVALID", ["type"]],
    ["unknown type", { type: "explode" }, "AIRTWIN_ERR_COMMAND_INVALID", ["type"]],
    ["unknown field", { type: "reset", force: true }, "AIRTWIN_ERR_COMMAND_INVALID", ["force"]],
    ["putRule without rule", { type: "putRule" }, "AIRTWIN_ERR_COMMAND_INVALID", ["rule"]],
    ["putRule with a bad rule", { type: "putRule", rule: { ...rule, exit: 900, extra: 1 } }, "AIRTWIN_ERR_RULE_INVALID", ["rule.extra", "rule.exit"]],
    ["deleteRule with a bad id", { type: "deleteRule", ruleId: 7 }, "AIRTWIN_ERR_COMMAND_INVALID", ["ruleId"]],
    ["subscribe without subscription", { type: "subscribe", subscription: "x" }, "AIRTWIN_ERR_COMMAND_INVALID", ["subscription"]],
    ["subscribe with a bad target", { type: "subscribe", subscription: { ...subscription, target: "nope" } }, "AIRTWIN_ERR_SUBSCRIPTION_INVALID", ["subscription.target"]],
    ["unsubscribe without id", { type: "unsubscribe" }, "AIRTWIN_ERR_COMMAND_INVALID", ["subscriptionId"]],
    ["recalibrate pm", { type: "recalibrate", channel: "pm" }, "AIRTWIN_ERR_COMMAND_INVALID", ["channel"]],
  ])("rejects %s with a coded error naming the field", (_name, input, code, fields) => {
    const r = validateCommand(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(code);
    expect(r.error.details?.map((d) => d.field)).toEqual(fields);
  });
});
