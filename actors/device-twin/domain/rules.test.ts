import { describe, expect, it } from "vitest";
import {
  DEFAULT_RULES,
  DEFAULT_RULE_SET,
  MAX_RULES,
  decodeRuleSet,
  deleteRule,
  encodeRuleSet,
  makeRuleSet,
  putRule,
  validateRule,
} from "./rules.ts";
import type { RuleSet } from "./rules.ts";
import type { Rule } from "./types.ts";

const rule = (over: Partial<Rule> = {}): Rule => ({
  id: "co2-high", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 300_000, clearDurationMs: 900_000, ...over,
});

const fieldsOf = (x: unknown): string[] => {
  const r = validateRule(x);
  if (r.ok) throw new Error("expected invalid");
  expect(r.error.code).toBe("AIRTWIN_ERR_RULE_INVALID");
  return (r.error.details ?? []).map((d) => d.field);
};

function mustPut(set: RuleSet, r: Rule): RuleSet {
  const res = putRule(set, r);
  if (!res.ok) throw new Error(res.error.message);
  return res.value.set;
}

describe("default rules", () => {
  it("are exactly docs/design.md §4's", () => {
    const tenMin = 600_000;
    expect(DEFAULT_RULES).toEqual([
      { id: "default-pm", channel: "pm", direction: "above", enter: 35.5, exit: 25, minDurationMs: tenMin, clearDurationMs: tenMin },
      { id: "default-co2", channel: "co2", direction: "above", enter: 1400, exit: 1000, minDurationMs: tenMin, clearDurationMs: tenMin },
      { id: "default-voc", channel: "voc", direction: "above", enter: 500, exit: 300, minDurationMs: tenMin, clearDurationMs: tenMin },
      { id: "default-allpollu", channel: "allpollu", direction: "above", enter: 50, exit: 40, minDurationMs: tenMin, clearDurationMs: tenMin },
    ]);
    for (const r of DEFAULT_RULES) expect(validateRule(r)).toEqual({ ok: true, value: r });
  });
});

describe("validateRule", () => {
  it("accepts a valid rule and copies only its fields", () => {
    const r = rule();
    const res = validateRule(r);
    expect(res).toEqual({ ok: true, value: r });
    expect(res.ok && res.value).not.toBe(r);
    expect(validateRule(rule({ direction: "below", channel: "tmp", enter: -40, exit: 85, minDurationMs: 0, clearDurationMs: 604_800_000 })).ok).toBe(true);
    expect(validateRule(rule({ enter: 800, exit: 800 })).ok).toBe(true);
  });

  it.each([
    ["not an object", 42, ["rule"]],
    ["array", [], ["rule"]],
    ["empty id", rule({ id: "" }), ["id"]],
    ["id too long", rule({ id: "x".repeat(65) }), ["id"]],
    ["id with a dot", rule({ id: "a.b" }), ["id"]],
    ["unknown channel", { ...rule(), channel: "o3" }, ["channel"]],
    ["unknown direction", { ...rule(), direction: "up" }, ["direction"]],
    ["enter not a number", { ...rule(), enter: "800" }, ["enter"]],
    ["enter NaN", rule({ enter: NaN }), ["enter"]],
    ["exit Infinity", rule({ exit: Infinity }), ["exit"]],
    ["enter out of channel range", rule({ enter: 40_001 }), ["enter"]],
    ["exit under channel range", rule({ channel: "tmp", enter: 20, exit: -41 }), ["exit"]],
    ["above with exit > enter", rule({ exit: 900 }), ["exit"]],
    ["below with exit < enter", rule({ direction: "below", exit: 700 }), ["exit"]],
    ["fractional duration", rule({ minDurationMs: 1.5 }), ["minDurationMs"]],
    ["negative duration", rule({ clearDurationMs: -1 }), ["clearDurationMs"]],
    ["duration over 7 days", rule({ clearDurationMs: 604_800_001 }), ["clearDurationMs"]],
    ["missing durations", { id: "a", channel: "pm", direction: "above", enter: 1, exit: 0 }, ["minDurationMs", "clearDurationMs"]],
    ["unknown field", { ...rule(), extra: 1 }, ["extra"]],
    ["several at once", { id: "", channel: "co2", direction: "above", enter: -1, exit: 1e9, minDurationMs: "x", clearDurationMs: 0 }, ["id", "enter", "exit", "minDurationMs"]],
  ])("rejects %s naming the fields", (_name, input, fields) => {
    expect(fieldsOf(input)).toEqual(fields);
  });
});

describe("rule sets store only deviations from the defaults", () => {
  it("the default set is one shared constant", () => {
    expect(makeRuleSet([], [])).toBe(DEFAULT_RULE_SET);
    expect(DEFAULT_RULE_SET.effective).toBe(DEFAULT_RULES);
    expect(encodeRuleSet(DEFAULT_RULE_SET)).toEqual([[], []]);
  });

  it("effective = defaults overridden by user rules of the same id, minus deleted defaults, then user rules", () => {
    let set = mustPut(DEFAULT_RULE_SET, rule());
    set = mustPut(set, { ...DEFAULT_RULES[1]!, enter: 1200 });
    const del = deleteRule(set, "default-voc");
    expect(del.ok).toBe(true);
    if (!del.ok) return;
    set = del.value.set;
    expect(set.effective.map((r) => r.id)).toEqual(["default-pm", "default-co2", "default-allpollu", "co2-high"]);
    expect(set.effective[1]!.enter).toBe(1200);
    expect(set.user.map((r) => r.id)).toEqual(["co2-high", "default-co2"]);
    expect(set.deletedDefaults).toEqual(["default-voc"]);
  });

  it("putting a default back (equal to it) restores the shared default set", () => {
    const r = deleteRule(DEFAULT_RULE_SET, "default-pm");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.previous).toBe(DEFAULT_RULES[0]);
    expect(mustPut(r.value.set, { ...DEFAULT_RULES[0]! })).toBe(DEFAULT_RULE_SET);
  });

  it("replacing reports the previous rule; an identical put is a no-op", () => {
    const set = mustPut(DEFAULT_RULE_SET, rule());
    const same = putRule(set, rule());
    expect(same).toEqual({ ok: true, value: { set } });
    const changed = putRule(set, rule({ enter: 900 }));
    expect(changed.ok && changed.value.previous).toEqual(rule());
    expect(changed.ok && changed.value.set.effective.at(-1)!.enter).toBe(900);
  });

  it("deleting a user rule that overrides a default removes it and marks the default deleted", () => {
    const set = mustPut(DEFAULT_RULE_SET, { ...DEFAULT_RULES[1]!, enter: 1200 });
    const r = deleteRule(set, "default-co2");
    expect(r.ok && r.value.set.effective.map((x) => x.id)).toEqual(["default-pm", "default-voc", "default-allpollu"]);
  });

  it("deleting an unknown rule is RULE_NOT_FOUND", () => {
    const r = deleteRule(DEFAULT_RULE_SET, "nope");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe("AIRTWIN_ERR_RULE_NOT_FOUND");
  });

  it(`allows at most ${MAX_RULES} rules`, () => {
    let set = DEFAULT_RULE_SET;
    for (let i = 0; i < MAX_RULES - DEFAULT_RULES.length; i++) set = mustPut(set, rule({ id: `r${i}` }));
    expect(set.effective).toHaveLength(MAX_RULES);
    const over = putRule(set, rule({ id: "one-too-many" }));
    expect(!over.ok && over.error.code).toBe("AIRTWIN_ERR_RULE_LIMIT");
    expect(putRule(set, rule({ id: "r0", enter: 900 })).ok).toBe(true);
  });

  it("encodes and decodes compactly", () => {
    let set = mustPut(DEFAULT_RULE_SET, rule({ direction: "below", enter: 300, exit: 350 }));
    const del = deleteRule(set, "default-allpollu");
    if (!del.ok) throw new Error();
    set = del.value.set;
    const enc = encodeRuleSet(set);
    expect(enc).toEqual([[["co2-high", "co2", 1, 300, 350, 300_000, 900_000]], ["default-allpollu"]]);
    expect(decodeRuleSet(structuredClone(enc))).toEqual(set);
    expect(decodeRuleSet([[["x", "co2", 0, 1, 2, 0, 0]], []])).toBeUndefined();
    expect(decodeRuleSet([[], ["not-a-default"]])).toBeUndefined();
    expect(decodeRuleSet({})).toBeUndefined();
  });
});
