// An `airtwin node` OS process for benchmarks (`node bin/airtwin.js node`), configured through the
// environment like any deployment; its JSON log lines are parsed so a benchmark can follow which shards
// it holds ("shard acquired" / "shard released" / "shard aborted") without asking anyone.
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const AIRTWIN_JS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "airtwin.js");

export interface NodeLog {
  level?: string;
  msg?: string;
  shard?: number;
  epoch?: number;
  [k: string]: unknown;
}

export class NodeProcess {
  readonly nodeId: string;
  readonly owned = new Set<number>();
  readonly logs: Array<NodeLog & { at: number }> = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** `/metrics` URL once ready (the node is started with AIRTWIN_METRICS_PORT=0). */
  metricsUrl: string | undefined;
  private readonly proc: ChildProcess;
  private listeners: Array<(l: NodeLog & { at: number }) => void> = [];

  constructor(nodeId: string, env: Record<string, string>) {
    this.nodeId = nodeId;
    this.proc = spawn(process.execPath, [AIRTWIN_JS, "node"], {
      env: { ...process.env, AIRTWIN_METRICS_PORT: "0", ...env, AIRTWIN_NODE_ID: nodeId },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    this.ready = new Promise((resolve, reject) => {
      this.onLine(this.proc.stdout!, (l) => {
        if (l.msg !== "node ready") return;
        this.metricsUrl = typeof l.metrics === "string" ? l.metrics : undefined;
        resolve();
      });
      void this.exited.then((e) => reject(new Error(`node ${nodeId} exited before it was ready (${e.code ?? e.signal}): ${this.tail()}`)));
    });
    this.onLine(this.proc.stderr!, () => undefined);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Calls `fn` for every log line from now on. */
  on(fn: (l: NodeLog & { at: number }) => void): () => void {
    this.listeners.push(fn);
    return () => (this.listeners = this.listeners.filter((f) => f !== fn));
  }

  /** Resolves with the first log line (from now on) that `match` accepts. */
  next(match: (l: NodeLog) => boolean, timeoutMs = 60_000): Promise<NodeLog & { at: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`node ${this.nodeId}: no matching log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((l) => {
        if (!match(l)) return;
        clearTimeout(timer);
        off();
        resolve(l);
      });
    });
  }

  /** The node's longest event-loop stall since the previous call (prom-client resets it on every scrape), in ms. */
  async loopLagMaxMs(): Promise<number | undefined> {
    if (this.metricsUrl === undefined) return undefined;
    try {
      const text = await (await fetch(this.metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
      const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
      return m === null ? undefined : Number(m[1]) * 1000;
    } catch {
      return undefined;
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  /** SIGTERM (graceful hand-off), SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  tail(n = 5): string {
    return this.logs.slice(-n).map((l) => JSON.stringify(l)).join("\n");
  }

  private onLine(stream: NodeJS.ReadableStream, extra: (l: NodeLog) => void): void {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let l: NodeLog;
        try {
          l = JSON.parse(line) as NodeLog;
        } catch {
          l = { msg: line };
        }
        const entry = { ...l, at: performance.now() };
        this.logs.push(entry);
        if (typeof l.shard === "number") {
          if (l.msg === "shard acquired") this.owned.add(l.shard);
          else if (l.msg === "shard released" || l.msg === "shard aborted") this.owned.delete(l.shard);
        }
        extra(l);
        for (const fn of this.listeners) fn(entry);
      }
    });
  }
}
