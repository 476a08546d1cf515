// `airtwin dev` starts its own nats-server with JetStream on a free port, prints and writes the URL,
// refuses a second instance on the same data dir, stops cleanly on SIGTERM, uses NATS_URL when set, and
// names the port and its variable when AIRTWIN_HTTP_PORT is in use.

import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { getFreePort } from "../harness/free-port.ts";
import { startNatsServer } from "../harness/nats-server.ts";
import { processSchemaEnv } from "../harness/process-schema.ts";
import { waitFor } from "../harness/wait-for.ts";

const bin = resolve(import.meta.dirname, "../../bin/airtwin.js");

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function airtwin(args: string[], env: Record<string, string | undefined>): Run {
  const cleanEnv = { ...process.env, NATS_URL: undefined, ...processSchemaEnv(env.AIRTWIN_DATA_DIR ?? `default data dir of ${process.cwd()}`), ...env };
  const child = spawn(process.execPath, [bin, ...args], { env: cleanEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const dirs: string[] = [];
const runs: Run[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) {
    if (r.child.exitCode === null) {
      r.child.kill("SIGKILL");
      await r.exited;
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("airtwin dev", () => {
  it("runs nats-server with JetStream under the data dir, and stops it on SIGTERM", { timeout: 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "airtwin-dev-"));
    dirs.push(dataDir);
    const dev = airtwin(["dev"], { AIRTWIN_DATA_DIR: dataDir });
    runs.push(dev);
    const url = await waitFor(() => /^NATS_URL=(nats:\/\/127\.0\.0\.1:(\d+))$/m.exec(dev.output())?.[1], {
      timeoutMs: 30_000,
      message: "airtwin dev prints NATS_URL",
    });
    expect(url).not.toBe("nats://127.0.0.1:4222");
    expect(readFileSync(join(dataDir, "nats.url"), "utf8").trim()).toBe(url);

    const nc = await connect({ servers: url, noAsyncTraces: true });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "DEV", subjects: ["dev.>"] });
    expect((await jetstream(nc).publish("dev.x", "1")).seq).toBe(1);
    await nc.close();
    expect(existsSync(join(dataDir, "nats", "jetstream"))).toBe(true);

    // one dev per data dir
    const second = airtwin(["dev"], { AIRTWIN_DATA_DIR: dataDir });
    runs.push(second);
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain("AIRTWIN_ERR_DEPLOY_DEV_ALREADY_RUNNING");

    const natsPid = (JSON.parse(readFileSync(join(dataDir, "dev.lock"), "utf8")) as { natsPid: number }).natsPid;
    expect(processExists(natsPid)).toBe(true);
    dev.child.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
    expect(processExists(natsPid)).toBe(false);
    expect(existsSync(join(dataDir, "nats.url"))).toBe(false);
    expect(existsSync(join(dataDir, "dev.lock"))).toBe(false);
    expect(dev.output()).toContain("airtwin dev: stopped");
  });

  it("uses the server in NATS_URL instead of spawning one", { timeout: 60_000 }, async () => {
    await using ns = await startNatsServer();
    const dataDir = mkdtempSync(join(tmpdir(), "airtwin-dev-"));
    dirs.push(dataDir);
    const dev = airtwin(["dev"], { AIRTWIN_DATA_DIR: dataDir, NATS_URL: ns.url });
    runs.push(dev);
    await waitFor(() => dev.output().includes(`NATS_URL=${ns.url}`), { timeoutMs: 30_000, message: "dev reports the given URL" });
    expect(existsSync(join(dataDir, "nats"))).toBe(false);
    dev.child.kill("SIGINT");
    expect(await dev.exited).toBe(0);
  });

  it("stops before starting anything when AIRTWIN_HTTP_PORT is in use, naming the port and the variable", { timeout: 60_000 }, async () => {
    const port = await getFreePort();
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(port, "127.0.0.1", r));
    try {
      const dataDir = mkdtempSync(join(tmpdir(), "airtwin-dev-"));
      dirs.push(dataDir);
      const dev = airtwin(["dev"], { AIRTWIN_DATA_DIR: dataDir, AIRTWIN_HTTP_PORT: String(port) });
      runs.push(dev);
      expect(await dev.exited).toBe(1);
      expect(dev.output()).toContain("AIRTWIN_ERR_DEPLOY_DEV_PORT_IN_USE");
      expect(dev.output()).toContain(`port ${port}`);
      expect(dev.output()).toContain("AIRTWIN_HTTP_PORT");
      expect(existsSync(join(dataDir, "nats"))).toBe(false); // nats-server never started
    } finally {
      busy.close();
    }
  });

  it("fails with AIRTWIN_ERR_NATS_UNAVAILABLE when NATS_URL answers nothing", { timeout: 60_000 }, async () => {
    const port = await getFreePort();
    const dev = airtwin(["dev"], { NATS_URL: `nats://127.0.0.1:${port}` });
    runs.push(dev);
    expect(await dev.exited).toBe(1);
    expect(dev.output()).toContain("AIRTWIN_ERR_NATS_UNAVAILABLE");
  });
});
