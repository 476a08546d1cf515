// The lint rules that keep the twin domain deterministic fire: clocks, randomness and timers are refused
// in actors/*/domain (outside its tests), and allowed elsewhere. Runs ESLint with the repository's config.
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint();

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

const FORBIDDEN: Array<[string, string, string]> = [
  ["Date.now()", "export const t = Date.now();\n", "no-restricted-properties"],
  ["performance.now()", "export const t = performance.now();\n", "no-restricted-properties"],
  ["Math.random()", "export const r = Math.random();\n", "no-restricted-properties"],
  ["crypto.randomUUID()", "export const id = crypto.randomUUID();\n", "no-restricted-properties"],
  ["setTimeout", "setTimeout(() => undefined, 1);\n", "no-restricted-globals"],
  ["setInterval", "setInterval(() => undefined, 1);\n", "no-restricted-globals"],
  ["setImmediate", "setImmediate(() => undefined);\n", "no-restricted-globals"],
  ["new Date()", "export const d = new Date();\n", "no-restricted-syntax"],
  ["Date()", "export const d = Date();\n", "no-restricted-syntax"],
];

describe("actors/*/domain is deterministic (lint)", () => {
  it.each(FORBIDDEN)("refuses %s in domain code", async (_name, code, rule) => {
    expect(await ruleIds("actors/device-twin/domain/probe.ts", code)).toEqual([rule]);
  });

  it("allows dates from the input, and all of it in the domain's tests and outside the domain", async () => {
    expect(await ruleIds("actors/device-twin/domain/probe.ts", "export const d = (t: number) => new Date(t).toISOString();\n")).toEqual([]);
    for (const [, code] of FORBIDDEN) {
      expect(await ruleIds("actors/device-twin/domain/probe.test.ts", code)).toEqual([]);
      expect(await ruleIds("runtime/probe.ts", code)).toEqual([]);
    }
  });
});
