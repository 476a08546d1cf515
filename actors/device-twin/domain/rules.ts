// Pollution-event rules (docs/design.md §4): the four defaults, validation of user rules, and a device's rule set.
// A rule set stores only its deviations from the defaults (user rules + deleted default ids) and is an
// immutable value: every change builds a new one, so a twin with default rules shares one constant and a
// rejected command cannot leave a half-applied rule set behind.

import { problem } from "./errors.ts";
import { CHANNEL_RANGES, CHANNELS } from "./types.ts";
import type { Channel, Problem, Result, Rule } from "./types.ts";

/** Ids of rules, subscriptions (and devices): 1–64 characters of `[A-Za-z0-9_-]`. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Most rules one device may have (effective rules, defaults included). */
export const MAX_RULES = 32;

/** Longest `minDurationMs` / `clearDurationMs`: 7 days in milliseconds. */
export const MAX_RULE_DURATION_MS = 7 * 24 * 60 * 60 * 1000;

const TEN_MINUTES_MS = 10 * 60 * 1000;

function defaultRule(channel: Channel, enter: number, exit: number): Rule {
  return Object.freeze({
    id: `default-${channel}`,
    channel,
    direction: "above",
    enter,
    exit,
    minDurationMs: TEN_MINUTES_MS,
    clearDurationMs: TEN_MINUTES_MS,
  });
}

/** The rules every device starts with (docs/design.md §4), frozen. */
export const DEFAULT_RULES: readonly Rule[] = Object.freeze([
  defaultRule("pm", 35.5, 25),
  defaultRule("co2", 1400, 1000),
  defaultRule("voc", 500, 300),
  defaultRule("allpollu", 50, 40),
]);

const DEFAULT_BY_ID = new Map(DEFAULT_RULES.map((r) => [r.id, r]));

/** True when `id` names one of the default rules. */
export function isDefaultRuleId(id: string): boolean {
  return DEFAULT_BY_ID.has(id);
}

/** True for a plain (non-array, non-null) object. */
export function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** True when `x` is a valid rule/subscription id. */
export function isValidId(x: unknown): x is string {
  return typeof x === "string" && ID_PATTERN.test(x);
}

const RULE_FIELDS = new Set(["id", "channel", "direction", "enter", "exit", "minDurationMs", "clearDurationMs"]);

/** Validates an untrusted rule; on success returns a fresh copy holding only the rule's fields. */
export function validateRule(x: unknown): Result<Rule> {
  if (!isRecord(x)) return { ok: false, error: problem("RULE_INVALID", undefined, [{ field: "rule", message: "must be an object" }]) };
  const details: NonNullable<Problem["details"]> = [];
  const bad = (field: string, message: string): void => {
    details.push({ field, message });
  };

  for (const key of Object.keys(x)) if (!RULE_FIELDS.has(key)) bad(key, "unknown field");
  if (!isValidId(x.id)) bad("id", "must be 1-64 characters of [A-Za-z0-9_-]");
  const channel = CHANNELS.includes(x.channel as Channel) ? (x.channel as Channel) : undefined;
  if (channel === undefined) bad("channel", `must be one of ${CHANNELS.join(", ")}`);
  const direction = x.direction === "above" || x.direction === "below" ? x.direction : undefined;
  if (direction === undefined) bad("direction", 'must be "above" or "below"');

  const range = channel === undefined ? undefined : CHANNEL_RANGES[channel];
  const threshold = (field: "enter" | "exit"): boolean => {
    const v = x[field];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      bad(field, "must be a finite number");
      return false;
    }
    if (range !== undefined && (v < range.min || v > range.max)) {
      bad(field, `must be within ${range.min}..${range.max} for ${channel}`);
      return false;
    }
    return true;
  };
  const enterOk = threshold("enter");
  const exitOk = threshold("exit");
  if (enterOk && exitOk && direction !== undefined) {
    const enter = x.enter as number;
    const exit = x.exit as number;
    if (direction === "above" && exit > enter) bad("exit", "must be <= enter for an above rule");
    if (direction === "below" && exit < enter) bad("exit", "must be >= enter for a below rule");
  }
  for (const field of ["minDurationMs", "clearDurationMs"] as const) {
    const v = x[field];
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_RULE_DURATION_MS) {
      bad(field, `must be an integer number of milliseconds in 0..${MAX_RULE_DURATION_MS}`);
    }
  }
  if (details.length > 0) return { ok: false, error: problem("RULE_INVALID", undefined, details) };
  return {
    ok: true,
    value: {
      id: x.id as string,
      channel: channel as Channel,
      direction: direction as Rule["direction"],
      enter: x.enter as number,
      exit: x.exit as number,
      minDurationMs: x.minDurationMs as number,
      clearDurationMs: x.clearDurationMs as number,
    },
  };
}

/** True when two rules are identical in every field. */
export function ruleEquals(a: Rule, b: Rule): boolean {
  return a.id === b.id && a.channel === b.channel && a.direction === b.direction && a.enter === b.enter &&
    a.exit === b.exit && a.minDurationMs === b.minDurationMs && a.clearDurationMs === b.clearDurationMs;
}

/** A device's rules, stored as deviations from {@link DEFAULT_RULES}. Treat as immutable. */
export interface RuleSet {
  /** User rules (new ids, or replacements of a default), in the order they were first added. */
  readonly user: readonly Rule[];
  /** Ids of deleted default rules (never also in `user`). */
  readonly deletedDefaults: readonly string[];
  /**
   * Derived: the effective rules — defaults in their order (replaced by a user rule of the same id,
   * minus deleted ones), then the other user rules. `DEFAULT_RULES` itself when nothing deviates.
   */
  readonly effective: readonly Rule[];
}

/** The shared rule set of every twin that kept the defaults. */
export const DEFAULT_RULE_SET: RuleSet = Object.freeze({ user: [], deletedDefaults: [], effective: DEFAULT_RULES });

/**
 * Builds a rule set from its deviations, canonically: user rules equal to their default are dropped,
 * deleted ids that are overridden or not defaults are ignored; no deviation → {@link DEFAULT_RULE_SET}.
 */
export function makeRuleSet(user: readonly Rule[], deletedDefaults: readonly string[]): RuleSet {
  const ownUser = user.filter((r) => {
    const d = DEFAULT_BY_ID.get(r.id);
    return d === undefined || !ruleEquals(d, r);
  });
  const userIds = new Set(ownUser.map((r) => r.id));
  const deleted = deletedDefaults.filter((id, i) => isDefaultRuleId(id) && !userIds.has(id) && deletedDefaults.indexOf(id) === i);
  if (ownUser.length === 0 && deleted.length === 0) return DEFAULT_RULE_SET;
  const effective: Rule[] = [];
  for (const d of DEFAULT_RULES) {
    if (deleted.includes(d.id)) continue;
    effective.push(ownUser.find((r) => r.id === d.id) ?? d);
  }
  for (const r of ownUser) if (!isDefaultRuleId(r.id)) effective.push(r);
  return { user: exact(ownUser), deletedDefaults: exact(deleted), effective: exact(effective) };
}

const NONE: readonly never[] = Object.freeze([]);

/** A copy without growth slack (arrays built by push/filter keep spare capacity in every twin). */
function exact<T>(a: readonly T[]): readonly T[] {
  return a.length === 0 ? NONE : a.slice();
}

/** The effective rule with this id, if any. */
export function findRule(set: RuleSet, id: string): Rule | undefined {
  return set.effective.find((r) => r.id === id);
}

/** Outcome of a rule-set change: the new set and the rule it replaced or removed. */
export interface RuleChange {
  set: RuleSet;
  previous?: Rule;
}

/**
 * Adds or replaces a (validated) rule. Putting a rule identical to the current one returns the same set
 * and no `previous`, so a retried command is harmless. Fails with RULE_LIMIT beyond {@link MAX_RULES}.
 */
export function putRule(set: RuleSet, rule: Rule): Result<RuleChange> {
  const previous = findRule(set, rule.id);
  if (previous !== undefined && ruleEquals(previous, rule)) return { ok: true, value: { set } };
  if (previous === undefined && set.effective.length >= MAX_RULES) {
    return { ok: false, error: problem("RULE_LIMIT", `a device has at most ${MAX_RULES} rules`, [{ field: "rule.id", message: `limit of ${MAX_RULES} rules reached` }]) };
  }
  const at = set.user.findIndex((r) => r.id === rule.id);
  const user = at >= 0 ? set.user.map((r, i) => (i === at ? rule : r)) : set.user.concat(rule);
  const next = makeRuleSet(user, set.deletedDefaults.filter((id) => id !== rule.id));
  return { ok: true, value: previous === undefined ? { set: next } : { set: next, previous } };
}

/** Removes an effective rule (a default one is remembered as deleted); RULE_NOT_FOUND when absent. */
export function deleteRule(set: RuleSet, ruleId: string): Result<Required<RuleChange>> {
  const previous = findRule(set, ruleId);
  if (previous === undefined) {
    return { ok: false, error: problem("RULE_NOT_FOUND", `no rule "${ruleId}" on this device`, [{ field: "ruleId", message: "no such rule" }]) };
  }
  const user = set.user.filter((r) => r.id !== ruleId);
  const deleted = isDefaultRuleId(ruleId) ? [...set.deletedDefaults, ruleId] : set.deletedDefaults;
  return { ok: true, value: { set: makeRuleSet(user, deleted), previous } };
}

/** Compact, msgpack-friendly form: `[userRules as tuples, deletedDefaults]`. */
export type EncodedRuleSet = [Array<[string, Channel, 0 | 1, number, number, number, number]>, string[]];

/** Encodes a rule set's deviations only. */
export function encodeRuleSet(set: RuleSet): EncodedRuleSet {
  return [
    set.user.map((r) => [r.id, r.channel, r.direction === "above" ? 0 : 1, r.enter, r.exit, r.minDurationMs, r.clearDurationMs]),
    [...set.deletedDefaults],
  ];
}

/** Decodes {@link encodeRuleSet}'s output; returns undefined when anything is malformed. */
export function decodeRuleSet(x: unknown): RuleSet | undefined {
  if (!Array.isArray(x) || x.length !== 2 || !Array.isArray(x[0]) || !Array.isArray(x[1])) return undefined;
  const user: Rule[] = [];
  for (const t of x[0] as unknown[]) {
    if (!Array.isArray(t) || t.length !== 7 || (t[2] !== 0 && t[2] !== 1)) return undefined;
    const r = validateRule({
      id: t[0], channel: t[1], direction: t[2] === 0 ? "above" : "below",
      enter: t[3], exit: t[4], minDurationMs: t[5], clearDurationMs: t[6],
    });
    if (!r.ok || user.some((u) => u.id === r.value.id)) return undefined;
    user.push(r.value);
  }
  const deleted = x[1] as unknown[];
  if (!deleted.every((id) => typeof id === "string" && isDefaultRuleId(id))) return undefined;
  const set = makeRuleSet(user, deleted as string[]);
  return set.effective.length > MAX_RULES ? undefined : set;
}
