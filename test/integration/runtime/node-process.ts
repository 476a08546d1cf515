// `airtwin node` as a separate OS process for integration tests: spawn with test timings, wait for
// `{"msg":"node ready"}` on stdout, capture the JSON log (stderr) in a file, and stop it the ways a node
// dies in production: kill -9, SIGSTOP/SIGCONT (a paused "zombie"), or SIGTERM with its exit code checked.
//
//   const node = await NodeProcess.start({ natsUrl, nodeId: "n1", prefix, logDir });
//   node.pause(); …; node.resume();
//   await node.stop(); // SIGTERM, hand-off, exit 0

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
const CLI = join(REPO, "bin", "airtwin.js");

/** Options of {@link NodeProcess.start}. Timings are short so that failures are detected fast. */
export interface NodeProcessOptions {
  natsUrl: string;
  nodeId: string;
  prefix: string;
  /** Directory for the node's log file `<nodeId>-<n>.log` (stderr). */
  logDir: string;
  /** `AIRTWIN_SHARDS`. Default 16. */
  shards?: number;
  /** `AIRTWIN_LEASE_TTL_MS`. Default {@link TEST_LEASE_TTL_MS}. */
  leaseTtlMs?: number;
  /** `AIRTWIN_HEARTBEAT_MS`. Default {@link TEST_HEARTBEAT_MS}. */
  heartbeatMs?: number;
  /** `AIRTWIN_COMMIT_INTERVAL_MS`. Default 200. */
  commitIntervalMs?: number;
  /** More environment (overrides the above). */
  env?: Record<string, string>;
  /** Deadline for "node ready" (ms). Default 60 000 (a loaded 2-core machine compiles TypeScript slowly). */
  readyTimeoutMs?: number;
}

/** How a node process ended. */
export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One parsed line of a node's JSON log. */
export interface NodeLogEntry {
  time?: string;
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

/** Processes still running, killed when the test process exits so no node outlives its test. */
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Lease TTL and heartbeat of test nodes (ms). Short, so failures are detected in seconds; not shorter,
 * because on a loaded 2-core machine a node's event loop can lag over a second and a healthy node would
 * lose its leases. Override with AIRTWIN_IT_LEASE_TTL_MS / AIRTWIN_IT_HEARTBEAT_MS (e.g. 2000/400).
 */
export const TEST_LEASE_TTL_MS = Number(process.env.AIRTWIN_IT_LEASE_TTL_MS ?? 4000);
export const TEST_HEARTBEAT_MS = Number(process.env.AIRTWIN_IT_HEARTBEAT_MS ?? 800);

/** Deadline of waits for the cluster to converge (takeover, balance, catch-up) on a busy machine (ms). */
export const CONVERGE_MS = 120_000;

let spawned = 0;

/** A running (or ended) `airtwin node` process. */
export class NodeProcess {
  readonly nodeId: string;
  readonly logFile: string;
  /** Resolves when the process has ended. */
  readonly exited: Promise<NodeExit>;
  /** Wall clock (ms) at which "node ready" was seen. */
  readyAt = 0;
  /** `http://127.0.0.1:<port>/metrics` of the node (Prometheus), from its ready line. */
  metricsUrl: string | undefined;
  #child: ChildProcess;
  #exit: NodeExit | undefined;
  #paused = false;

  private constructor(nodeId: string, logFile: string, child: ChildProcess) {
    this.nodeId = nodeId;
    this.logFile = logFile;
    this.#child = child;
    this.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolveExit(this.#exit);
      });
    });
  }

  /** Spawns `node bin/airtwin.js node` and resolves once it printed "node ready". Rejects (with the log tail) if it exits or times out first. */
  static async start(o: NodeProcessOptions): Promise<NodeProcess> {
    const logFile = join(o.logDir, `${o.nodeId}-${++spawned}.log`);
    const fd = openSync(logFile, "a");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NATS_URL: o.natsUrl,
      AIRTWIN_NODE_ID: o.nodeId,
      AIRTWIN_PREFIX: o.prefix,
      AIRTWIN_SHARDS: String(o.shards ?? 16),
      AIRTWIN_LEASE_TTL_MS: String(o.leaseTtlMs ?? TEST_LEASE_TTL_MS),
      AIRTWIN_HEARTBEAT_MS: String(o.heartbeatMs ?? TEST_HEARTBEAT_MS),
      AIRTWIN_COMMIT_INTERVAL_MS: String(o.commitIntervalMs ?? 200),
      AIRTWIN_METRICS_PORT: "0",
      ...o.env,
    };
    delete env.NODE_OPTIONS; // vitest's worker flags are not for the child
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [CLI, "node"], { cwd: REPO, env, stdio: ["ignore", "pipe", fd] });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    track(child);
    const node = new NodeProcess(o.nodeId, logFile, child);
    const timeoutMs = o.readyTimeoutMs ?? 60_000;
    await new Promise<void>((resolveReady, reject) => {
      let out = "";
      const timer = setTimeout(() => fail(`no "node ready" within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`node ${o.nodeId}: ${why}\n${node.logTail(30)}`));
      };
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (chunk: string) => {
        out += chunk;
        // complete lines only: a chunk may end mid-line
        const line = out.split("\n").slice(0, -1).find((l) => l.includes('"msg":"node ready"'));
        if (node.readyAt === 0 && line !== undefined) {
          node.readyAt = Date.now();
          try {
            node.metricsUrl = (JSON.parse(line) as { metrics?: string }).metrics;
          } catch {
            // the line is all we wait for; the URL is a convenience
          }
          clearTimeout(timer);
          resolveReady();
        }
      });
      child.once("exit", (code, signal) => {
        if (node.readyAt === 0) fail(`exited before ready (code ${code}, signal ${signal})`);
      });
    });
    return node;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** True until the process has ended. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Sends `signal` (default SIGKILL) and waits until the process has ended. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<NodeExit> {
    if (this.running) this.#child.kill(signal);
    return this.exited;
  }

  /** SIGSTOP: the process freezes mid-flight, holding its connections (a zombie owner). */
  pause(): void {
    this.#child.kill("SIGSTOP");
    this.#paused = true;
  }

  /** SIGCONT: the frozen process resumes where it stopped. */
  resume(): void {
    this.#child.kill("SIGCONT");
    this.#paused = false;
  }

  /**
   * Graceful stop: SIGTERM, then waits for the exit (the node hands its shards off first).
   * @throws when the node does not exit in time (it is then killed) or exits with a non-zero code.
   */
  async stop(timeoutMs = 30_000): Promise<NodeExit> {
    if (!this.running) return this.exited;
    if (this.#paused) this.resume();
    this.#child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const result = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (result === "timeout") {
      await this.kill("SIGKILL");
      throw new Error(`node ${this.nodeId} did not exit within ${timeoutMs} ms of SIGTERM\n${this.logTail(30)}`);
    }
    if (result.code !== 0) throw new Error(`node ${this.nodeId} exited with code ${result.code} (signal ${result.signal}) after SIGTERM\n${this.logTail(30)}`);
    return result;
  }

  /** The node's Prometheus metrics text. */
  async metrics(): Promise<string> {
    if (this.metricsUrl === undefined) throw new Error(`node ${this.nodeId} has no metrics URL`);
    // bounded: a node that does not answer fails the test here, not at the test's own timeout
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(15_000) });
    return res.text();
  }

  /** The raw log so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** The last `lines` lines of the log. */
  logTail(lines = 30): string {
    return this.log().trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Every JSON line of the log, parsed (other lines are skipped). */
  logEntries(): NodeLogEntry[] {
    const out: NodeLogEntry[] = [];
    for (const line of this.log().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        out.push(JSON.parse(line) as NodeLogEntry);
      } catch {
        // a line cut by a kill
      }
    }
    return out;
  }
}
