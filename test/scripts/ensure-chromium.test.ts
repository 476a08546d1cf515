// scripts/ensure-chromium.js (run by npm test's pre-script) accepts a working Chromium and, when
// AIRTWIN_CHROMIUM points at something that is not one, fails saying what to install.
// (The apt-get branch changes the machine, so it is not exercised here.)

import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveChromium } from "../harness/chromium.ts";

const script = resolve(import.meta.dirname, "../../scripts/ensure-chromium.js");

function run(env: Record<string, string | undefined>) {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("scripts/ensure-chromium.js", () => {
  it("exits 0 and names the version when Chromium works", () => {
    const binary = resolveChromium();
    const r = run({ AIRTWIN_CHROMIUM: binary });
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/Chrom(e|ium) \d+\./);
  });

  it("exits 1 with install instructions for a binary that is not Chromium", () => {
    const r = run({ AIRTWIN_CHROMIUM: "/bin/false" });
    expect(r.status).toBe(1);
    expect(r.output).toContain("AIRTWIN_CHROMIUM=/bin/false");
    expect(r.output).toContain("sudo apt-get install chromium");
    expect(r.output).not.toContain("running apt-get");
  });
});
