// Command validation (docs/design.md §5 POST /v1/devices/:id/commands). Stateless: shape and field checks only;
// what needs the twin (unknown rule/subscription ids, limits) is checked when the twin applies it.

import { problem } from "./errors.ts";
import { isRecord, isValidId, validateRule } from "./rules.ts";
import { validateSubscription } from "./subscriptions.ts";
import type { CalibrationChange, Command, Problem, Result, Rule, SubscriptionView } from "./types.ts";

/** Every command type. */
export const COMMAND_TYPES: readonly Command["type"][] = ["putRule", "deleteRule", "subscribe", "unsubscribe", "recalibrate", "reset"];

/** What a successfully applied command answers (the body of the HTTP 200). */
export type CommandResult =
  | { type: "putRule"; rule: Rule }
  | { type: "deleteRule"; ruleId: string }
  | { type: "subscribe"; subscription: SubscriptionView }
  | { type: "unsubscribe"; subscriptionId: string }
  | { type: "recalibrate"; channel: "co2" | "voc"; calibration: CalibrationChange }
  | { type: "reset" };

const FIELDS: Record<Command["type"], readonly string[]> = {
  putRule: ["rule"],
  deleteRule: ["ruleId"],
  subscribe: ["subscription"],
  unsubscribe: ["subscriptionId"],
  recalibrate: ["channel"],
  reset: [],
};

const invalidFields = (details: NonNullable<Problem["details"]>): Result<never> => ({
  ok: false,
  error: problem("COMMAND_INVALID", undefined, details),
});
const invalid = (field: string, message: string): Result<never> => invalidFields([{ field, message }]);

/** Prefixes the field names of a nested problem, e.g. `enter` → `rule.enter`. */
function nested(p: Problem, prefix: string): Problem {
  return p.details === undefined ? p : { ...p, details: p.details.map((d) => ({ ...d, field: d.field === prefix ? d.field : `${prefix}.${d.field}` })) };
}

/**
 * Validates an untrusted command. Unknown type, unknown fields or a malformed shape →
 * AIRTWIN_ERR_COMMAND_INVALID; a bad rule → RULE_INVALID; a bad subscription → SUBSCRIPTION_INVALID;
 * `details` name each offending field (`rule.enter`, `subscription.target`, ...).
 */
export function validateCommand(x: unknown): Result<Command> {
  if (!isRecord(x)) return invalid("command", "must be an object");
  const type = x.type as Command["type"];
  if (typeof type !== "string" || !COMMAND_TYPES.includes(type)) {
    return invalid("type", `must be one of ${COMMAND_TYPES.join(", ")}`);
  }
  const unknown = Object.keys(x).filter((k) => k !== "type" && !FIELDS[type].includes(k));
  if (unknown.length > 0) return invalidFields(unknown.map((field) => ({ field, message: "unknown field" })));

  switch (type) {
    case "putRule": {
      if (!isRecord(x.rule)) return invalid("rule", "must be an object");
      const r = validateRule(x.rule);
      return r.ok ? { ok: true, value: { type, rule: r.value } } : { ok: false, error: nested(r.error, "rule") };
    }
    case "deleteRule":
      if (!isValidId(x.ruleId)) return invalid("ruleId", "must be 1-64 characters of [A-Za-z0-9_-]");
      return { ok: true, value: { type, ruleId: x.ruleId } };
    case "subscribe": {
      if (!isRecord(x.subscription)) return invalid("subscription", "must be an object");
      const s = validateSubscription(x.subscription);
      return s.ok ? { ok: true, value: { type, subscription: s.value } } : { ok: false, error: nested(s.error, "subscription") };
    }
    case "unsubscribe":
      if (!isValidId(x.subscriptionId)) return invalid("subscriptionId", "must be 1-64 characters of [A-Za-z0-9_-]");
      return { ok: true, value: { type, subscriptionId: x.subscriptionId } };
    case "recalibrate":
      if (x.channel !== "co2" && x.channel !== "voc") return invalid("channel", 'must be "co2" or "voc"');
      return { ok: true, value: { type, channel: x.channel } };
    case "reset":
      return { ok: true, value: { type } };
  }
}
