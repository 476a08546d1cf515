// End-to-end helpers: `airtwin <role>` child processes (spawned like an operator would, through
// bin/airtwin.js with environment variables), deterministic reading generators, and HTTP shortcuts.
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import type { Reading } from "../../actors/device-twin/domain/mod.ts";
import { getFreePort } from "../harness/free-port.ts";
import { waitFor } from "../harness/wait-for.ts";
import { rng } from "../harness/rng.ts";
import { processSchemaEnv } from "../harness/process-schema.ts";

export const BIN = resolve(import.meta.dirname, "../../bin/airtwin.js");

/** A running `airtwin …` child with its combined output. */
export class AirtwinProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #out = "";
  #stdout = "";

  constructor(
    readonly name: string,
    args: readonly string[],
    env: Record<string, string | undefined>,
  ) {
    const schema = env.AIRTWIN_DATA_DIR === undefined ? {} : processSchemaEnv(env.AIRTWIN_DATA_DIR);
    this.child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...schema, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => {
      this.#out += d.toString();
      this.#stdout += d.toString();
    });
    this.child.stderr!.on("data", (d: Buffer) => (this.#out += d.toString()));
    this.exited = new Promise((r) => this.child.once("exit", (code) => r(code)));
  }

  output(): string {
    return this.#out;
  }

  /** stdout alone (what a script would parse; `airtwin ops` names its server on stderr). */
  stdout(): string {
    return this.#stdout;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM and wait (SIGKILL after `graceMs`). */
  async stop(graceMs = 20_000): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}

/** Runs `airtwin <args>` to completion; resolves with its exit code, its output (stdout and stderr) and stdout alone. */
export async function runAirtwin(args: readonly string[], env: Record<string, string | undefined>): Promise<{ code: number | null; out: string; stdout: string }> {
  const p = new AirtwinProcess(args.join(" "), args, env);
  const code = await p.exited;
  return { code, out: p.output(), stdout: p.stdout() };
}

/** Fast cluster timings for tests (commit 200 ms, heartbeat 250 ms, leases 2 s). */
export const FAST_ENV = {
  AIRTWIN_COMMIT_INTERVAL_MS: "200",
  AIRTWIN_HEARTBEAT_MS: "250",
  AIRTWIN_LEASE_TTL_MS: "2000",
} as const;

export async function startGatewayProcess(env: Record<string, string | undefined>): Promise<{ proc: AirtwinProcess; url: string }> {
  const port = await getFreePort();
  const proc = new AirtwinProcess("gateway", ["gateway"], { ...env, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: "127.0.0.1" });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (!proc.running) throw new Error(`gateway exited:\n${proc.output()}`);
      const r = await fetch(`${url}/readyz`).catch(() => undefined);
      return r?.status === 200;
    },
    { timeoutMs: 60_000, message: "gateway ready" },
  );
  return { proc, url };
}

export { rng };

/** `n` readings every `stepMs` from `startMs`, every channel, values within the valid ranges. */
export function readingsFor(seed: number, startMs: number, n: number, stepMs = 60_000): Reading[] {
  const r = rng(seed);
  const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return Array.from({ length: n }, (_, i) => ({
    t: startMs + i * stepMs,
    pm: round(5 + r() * 40, 1),
    co2: Math.round(450 + r() * 900),
    voc: Math.round(100 + r() * 350),
    tmp: round(19 + r() * 5, 2),
    hum: round(35 + r() * 20, 1),
    allpollu: round(r() * 45, 1),
  }));
}

/** Foobot datapoints body of readings (time in seconds). */
export function foobotBody(readings: readonly Reading[]): unknown {
  const sensors = ["time", "pm", "tmp", "hum", "co2", "voc", "allpollu"] as const;
  return {
    sensors,
    units: ["s", "ugm3", "C", "pc", "ppm", "ppb", "%"],
    datapoints: readings.map((x) => sensors.map((s) => (s === "time" ? x.t / 1000 : (x as unknown as Record<string, number>)[s]))),
  };
}
