// The `airtwin` entry: `bench` runs the benchmark launcher (without a suite it lists them and exits 2),
// `simulate --help` prints its options, and an unknown command is refused with the usage.
import { describe, expect, it } from "vitest";
import { runAirtwin } from "../e2e/processes.ts";

describe("airtwin", () => {
  it("runs bench: without a suite, the list of suites (exit 2)", { timeout: 60_000 }, async () => {
    const r = await runAirtwin(["bench"], {});
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/suites: .*simulate/);
    expect(r.out).not.toContain("unknown command");
  });

  it("prints simulate's options, and refuses an unknown command", { timeout: 60_000 }, async () => {
    const help = await runAirtwin(["simulate", "--help"], {});
    expect(help.code).toBe(0);
    expect(help.out).toContain("--transport http|nats");
    const unknown = await runAirtwin(["nosuch"], {});
    expect(unknown.code).toBe(2);
    expect(unknown.out).toContain('unknown command "nosuch"');
  });
});
