// `npm start` as a newcomer runs it: everything comes up on this machine, a demo user and 50 simulated
// devices post readings, the dashboard URL, admin token and API key are printed; a signal to the npm
// process alone (what a supervisor sends) stops every child; starting again reuses the demo user's key
// and resumes the fleet where it stopped (event time moves on, no twin starts over); a terminal's Ctrl-C
// (to the whole process group, so airtwin dev receives it from npm too) still stops cleanly.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { getFreePort, isPortFree } from "../harness/free-port.ts";
import { processSchemaEnv } from "../harness/process-schema.ts";
import { waitFor } from "../harness/wait-for.ts";

const root = resolve(import.meta.dirname, "../..");

interface NpmStart {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const runs: NpmStart[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill("SIGTERM");
      await r.exited;
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function npmStart(dataDir: string, port: number): NpmStart {
  const child = spawn("npm", ["start"], {
    cwd: root,
    env: { ...process.env, ...processSchemaEnv(dataDir), AIRTWIN_DATA_DIR: dataDir, AIRTWIN_HTTP_PORT: String(port), NATS_URL: undefined, AIRTWIN_ADMIN_TOKEN: undefined },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, like a terminal's foreground job
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const run = { child, output: () => out, exited: new Promise<number | null>((r) => child.once("exit", (code) => r(code))) };
  runs.push(run);
  return run;
}

async function up(run: NpmStart): Promise<{ gateway: string; adminToken: string; apiKey: string }> {
  await waitFor(
    () => {
      if (run.child.exitCode !== null) throw new Error(`npm start exited:\n${run.output()}`);
      return run.output().includes("Ctrl-C stops everything");
    },
    { timeoutMs: 150_000, message: "npm start is up" },
  );
  const line = (name: string) => new RegExp(`^${name}=(\\S+)$`, "m").exec(run.output())![1]!;
  return { gateway: line("GATEWAY_URL"), adminToken: line("AIRTWIN_ADMIN_TOKEN"), apiKey: line("AIRTWIN_API_KEY") };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("npm start", () => {
  it("runs a demo fleet of 50 devices; a signal to npm alone stops everything; a restart resumes", { timeout: 420_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "airtwin-npm-start-"));
    dirs.push(dataDir);
    const port = await getFreePort();
    const first = npmStart(dataDir, port);
    const a = await up(first);
    expect(a.gateway).toBe(`http://127.0.0.1:${port}`);
    expect(first.output()).toContain(`dashboard http://127.0.0.1:${port}/`);
    expect(first.output()).toMatch(/fleet +50 simulated devices/);
    const user = { authorization: `Bearer ${a.apiKey}` };

    const listed = (await (await fetch(`${a.gateway}/v1/devices`, { headers: user })).json()) as { devices: Array<{ deviceId: string }> };
    expect(listed.devices).toHaveLength(50);
    const ids = listed.devices.map((d) => d.deviceId).sort();
    expect(ids[0]).toMatch(/^demo-001-(kitchen|living|bedroom|office|classroom)$/);
    const read = async (gateway: string, id: string) => (await (await fetch(`${gateway}/v1/devices/${id}`, { headers: user })).json()) as TwinView;
    // readings flow, from a week back (the demo's history), 5 minutes of event time apart
    const sample = ids.slice(0, 5);
    const before = await waitFor(async () => {
      const views = await Promise.all(sample.map((id) => read(a.gateway, id)));
      return views.every((v) => v.readings >= 10) ? views : undefined;
    }, { timeoutMs: 60_000, message: "the demo devices post readings" });
    for (const v of before) {
      expect(v.channels.co2!.lastAt).toBeLessThan(Date.now() - 6 * 86_400_000);
      expect(v.channels.co2!.lastAt).toBeGreaterThan(Date.now() - 8 * 86_400_000);
      expect(v.channels.co2!.hourly.reduce((n, h) => n + h.count, 0)).toBe(v.channels.co2!.count);
    }

    const lock = JSON.parse(readFileSync(join(dataDir, "dev.lock"), "utf8")) as { pid: number; natsPid: number };
    first.child.kill("SIGINT"); // to npm only, not its process group
    expect(await first.exited).toBe(0);
    await waitFor(() => !alive(lock.pid) && !alive(lock.natsPid), { timeoutMs: 30_000, message: "airtwin dev and nats-server stopped" });
    expect(first.output()).toContain("airtwin dev: stopped");
    expect(await isPortFree(port)).toBe(true);
    const fleetClock = (JSON.parse(readFileSync(join(dataDir, "demo-fleet.json"), "utf8")) as { clock: number }).clock;

    const second = npmStart(dataDir, port);
    const b = await up(second);
    expect(b.apiKey).toBe(a.apiKey);
    expect(b.adminToken).toBe(a.adminToken);
    const resumed = await waitFor(async () => {
      const views = await Promise.all(sample.map((id) => read(b.gateway, id).catch(() => undefined)));
      return views.every((v, i) => v !== undefined && v.readings > before[i]!.readings + 5) ? (views as TwinView[]) : undefined;
    }, { timeoutMs: 90_000, message: "the fleet resumes after the restart" });
    for (const [i, v] of resumed.entries()) {
      expect(v.channels.co2!.lastAt).toBeGreaterThan(Math.max(before[i]!.channels.co2!.lastAt, fleetClock));
      expect(v.channels.co2!.count).toBeGreaterThan(before[i]!.channels.co2!.count); // kept, not started over
    }
    // Ctrl-C in a terminal: SIGINT to the whole group, so airtwin dev gets it twice (directly and from npm)
    process.kill(-second.child.pid!, "SIGINT");
    expect(await second.exited).toBe(0);
    await waitFor(() => (second.output().match(/airtwin dev: stopped/g) ?? []).length === 1, { timeoutMs: 60_000, message: "a clean stop" });
    expect(second.output()).not.toContain("forced exit");
  });
});
