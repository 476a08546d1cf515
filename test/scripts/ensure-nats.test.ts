// scripts/ensure-nats.js (the pre-script of npm test / npm start) accepts a working nats-server and,
// when AIRTWIN_NATS_SERVER points at something that is not one, fails saying what to install.
// (The apt-get branch changes the machine, so it is not exercised here.)

import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveNatsServerBinary } from "../../deploy/local-nats.ts";

const script = resolve(import.meta.dirname, "../../scripts/ensure-nats.js");

function run(env: Record<string, string | undefined>) {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: "utf8", timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("scripts/ensure-nats.js", () => {
  it("exits 0 and names the version when nats-server works", () => {
    const binary = resolveNatsServerBinary();
    const r = run({ AIRTWIN_NATS_SERVER: binary });
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/nats-server: v\d+\.\d+\.\d+/);
    expect(r.output).toContain(binary);
  });

  it.each([
    ["a path that does not exist", "/nonexistent/nats-server"],
    ["an executable that is not nats-server", "/bin/false"],
  ])("exits 1 with install instructions for %s", (_what, path) => {
    const r = run({ AIRTWIN_NATS_SERVER: path });
    expect(r.status).toBe(1);
    expect(r.output).toContain(`AIRTWIN_NATS_SERVER=${path}`);
    expect(r.output).toContain("sudo apt-get install nats-server");
    expect(r.output).toContain("https://github.com/nats-io/nats-server/releases");
    expect(r.output).not.toContain("running apt-get");
  });
});
