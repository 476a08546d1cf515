// Runs a nats-server child process: finds the binary, writes its config file, spawns it, knows when it
// is ready (ports file, then /healthz) and stops it cleanly. The one place that spawns nats-server:
// `airtwin dev` and the test harness (single server and cluster) both build on it.

import { spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { get as httpGet } from "node:http";
import { delimiter, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NatsServerMissingError, NatsServerStartError } from "./errors.ts";

export { NatsServerMissingError, NatsServerStartError } from "./errors.ts";

/** Directories searched after PATH: Debian installs nats-server to /usr/sbin, which users' PATH often lacks. */
const EXTRA_BINARY_DIRS = ["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/** True for an existing regular file this process may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the nats-server binary: `AIRTWIN_NATS_SERVER` when set (and then only it), else `nats-server`
 * on PATH, else /usr/sbin, /usr/local/bin, /usr/local/sbin.
 * @throws NatsServerMissingError naming what was tried and what to install.
 */
export function resolveNatsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.AIRTWIN_NATS_SERVER?.trim();
  if (explicit) {
    const path = resolve(explicit);
    if (isExecutableFile(path)) return path;
    throw new NatsServerMissingError([path], {
      reason: `AIRTWIN_NATS_SERVER=${explicit} is not an executable file`,
    });
  }
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_BINARY_DIRS];
  const tried: string[] = [];
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    if (tried.includes(candidate)) continue;
    tried.push(candidate);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new NatsServerMissingError(tried);
}

/** `nats-server --version` of a binary, e.g. "nats-server: v2.9.10". */
export function natsServerVersion(binary: string): string {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (r.error || r.status !== 0) {
    throw new NatsServerMissingError([binary], {
      reason: `${binary} --version failed${r.error ? `: ${r.error.message}` : ` with exit code ${r.status}`}`,
      cause: r.error,
    });
  }
  return r.stdout.trim();
}

/** The parts of a nats-server configuration that airtwin needs; rendered to a config file. */
export interface NatsServerConfig {
  /** `server_name`; required by JetStream in a cluster. Default: chosen by nats-server. */
  serverName?: string;
  /** Interface for clients, monitoring and routes. Default "127.0.0.1". */
  host?: string;
  /** Client port; -1 lets nats-server pick a free one (read back from its ports file). Default -1. */
  port?: number;
  /** Monitoring (HTTP) port, used for /healthz; -1 picks a free one. Default -1. */
  httpPort?: number;
  /**
   * Enables JetStream with its store under `storeDir` (nats-server adds a `jetstream/` folder).
   * `maxFileBytes` defaults to {@link LOCAL_MAX_FILE_BYTES}.
   */
  jetstream?: { storeDir: string; maxMemoryBytes?: number; maxFileBytes?: number };
  /** Cluster block: `port` is the route listen port; `routes` are the peers' route URLs (self included is fine). */
  cluster?: { name: string; port: number; routes: readonly string[] };
  /** Subject mappings, e.g. `{ "a.*": "b.{{partition(8,1)}}.{{wildcard(1)}}" }`. */
  mappings?: Readonly<Record<string, string>>;
  /** Raw configuration appended verbatim (for tests of unusual settings). */
  extra?: string;
}

const q = (s: string): string => JSON.stringify(s);

/**
 * `max_file_store` of the servers started here (`airtwin dev`, the tests): 1 TiB. A stream reserves its
 * `max_bytes` from this limit when it is created, and nats-server's default limit is 75% of the free
 * disk: on a machine with less than ~14 GB free, the 10 GiB input stream of a new cluster was refused
 * ("insufficient storage resources available"), and a test server ran out after five clusters on a
 * 79 GB disk. The limit is a reservation bound, not usage: the disk holds what is stored.
 */
export const LOCAL_MAX_FILE_BYTES = 2 ** 40;

/** Renders a nats-server config file (the server's own format; strings are JSON-quoted). */
export function renderNatsServerConfig(config: NatsServerConfig, logFile?: string): string {
  const host = config.host ?? "127.0.0.1";
  const lines = ["# written by airtwin (deploy/local-nats.ts)"];
  if (config.serverName) lines.push(`server_name: ${q(config.serverName)}`);
  lines.push(`listen: ${q(`${host}:${config.port ?? -1}`)}`);
  lines.push(`http: ${q(`${host}:${config.httpPort ?? -1}`)}`);
  if (logFile) lines.push(`log_file: ${q(logFile)}`);
  if (config.jetstream) {
    const js = config.jetstream;
    const fields = [`store_dir: ${q(js.storeDir)}`];
    if (js.maxMemoryBytes !== undefined) fields.push(`max_memory_store: ${js.maxMemoryBytes}`);
    fields.push(`max_file_store: ${js.maxFileBytes ?? LOCAL_MAX_FILE_BYTES}`);
    lines.push(`jetstream { ${fields.join(", ")} }`);
  }
  if (config.cluster) {
    const c = config.cluster;
    lines.push(
      `cluster { name: ${q(c.name)}, listen: ${q(`${host}:${c.port}`)}, routes: [${c.routes.map(q).join(", ")}] }`,
    );
  }
  if (config.mappings && Object.keys(config.mappings).length > 0) {
    lines.push("mappings {");
    for (const [from, to] of Object.entries(config.mappings)) lines.push(`  ${q(from)}: ${q(to)}`);
    lines.push("}");
  }
  if (config.extra) lines.push(config.extra);
  return `${lines.join("\n")}\n`;
}

/** How to start a nats-server child. */
export interface SpawnNatsServerOptions {
  config: NatsServerConfig;
  /** Directory for the config file, ports file, log and stderr capture; created if missing. */
  workDir: string;
  /** Binary path. Default: {@link resolveNatsServerBinary}(env). */
  binary?: string;
  /** Environment used to resolve the binary (AIRTWIN_NATS_SERVER, PATH). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * When the server counts as started: "listening" once it wrote its ports file (clients can connect),
   * "healthy" once /healthz answers 200 as well (JetStream up; in a cluster: in contact with a meta leader
   * and caught up). Default "healthy".
   */
  ready?: "listening" | "healthy";
  /** Deadline for readiness, in ms. Default 20 000. */
  readyTimeoutMs?: number;
  /** Own process group, so a terminal's Ctrl-C reaches only the parent, which then stops the child in order. Default false. */
  detached?: boolean;
}

/** How a nats-server child ended. */
export interface NatsServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface PortsFile {
  nats?: string[];
  monitoring?: string[];
  cluster?: string[];
}

/** Pids of children still running; on process exit each gets SIGTERM, so a crashed parent leaves no server behind. */
const livePids = new Set<number>();
let exitHookInstalled = false;
function track(pid: number, exited: Promise<unknown>): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const pid of livePids) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    });
  }
  livePids.add(pid);
  void exited.then(() => livePids.delete(pid));
}

/** GET over plain node:http without keep-alive (no pooled socket keeps the event loop alive). */
export function getLocal(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolveGet({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

function tail(file: string, lines: number): string {
  try {
    const all = readFileSync(file, "utf8").trimEnd().split("\n");
    return all.slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** A running (or ended) nats-server child. */
export class NatsServerProcess {
  /** Client URL, e.g. nats://127.0.0.1:41234. */
  readonly url: string;
  /** Client port. */
  readonly port: number;
  /** Monitoring base URL (serves /healthz, /jsz, /varz). */
  readonly monitorUrl: string;
  /** Route URL when clustered. */
  readonly clusterUrl: string | undefined;
  /** Settles when the process has exited; never rejects. */
  readonly exited: Promise<NatsServerExit>;
  #exit: NatsServerExit | undefined;

  constructor(
    readonly pid: number,
    readonly workDir: string,
    readonly configFile: string,
    readonly logFile: string,
    readonly stderrFile: string,
    ports: { url: string; monitorUrl: string; clusterUrl: string | undefined },
    exited: Promise<NatsServerExit>,
  ) {
    this.url = ports.url;
    this.port = Number(new URL(ports.url).port);
    this.monitorUrl = ports.monitorUrl;
    this.clusterUrl = ports.clusterUrl;
    this.exited = exited.then((e) => (this.#exit = e));
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The last lines of the server log and of its captured stderr, for error messages. */
  logTail(lines = 40): string {
    return [tail(this.logFile, lines), tail(this.stderrFile, lines)].filter(Boolean).join("\n");
  }

  /** Sends `signal` (default SIGKILL) and waits until the process is gone. Files are kept. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<NatsServerExit> {
    if (this.running) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // exited meanwhile
      }
    }
    return this.exited;
  }

  /** Graceful stop: SIGTERM, then SIGKILL if still running after `graceMs` (default 5000). Files are kept. */
  async stop(graceMs = 5000): Promise<NatsServerExit> {
    if (!this.running) return this.exited;
    void this.kill("SIGTERM");
    const timer = sleep(graceMs, "timeout" as const, { ref: false });
    if ((await Promise.race([this.exited, timer])) === "timeout") return this.kill("SIGKILL");
    return this.exited;
  }
}

/**
 * Spawns nats-server with `config` rendered into `workDir/nats-server.conf`, logging to
 * `workDir/nats-server.log` (stdout/stderr to `workDir/nats-server.stderr`), and resolves once it is
 * ready (see {@link SpawnNatsServerOptions.ready}).
 * @throws NatsServerMissingError when the binary cannot be found or executed.
 * @throws NatsServerStartError when it exits early or misses the deadline (the process is then killed).
 */
export async function spawnNatsServer(opts: SpawnNatsServerOptions): Promise<NatsServerProcess> {
  const binary = opts.binary ?? resolveNatsServerBinary(opts.env);
  const workDir = resolve(opts.workDir);
  mkdirSync(workDir, { recursive: true });
  if (opts.config.jetstream) mkdirSync(opts.config.jetstream.storeDir, { recursive: true });
  // a previous run killed with SIGKILL leaves its ports file behind; the new one is found by pid
  for (const f of readdirSync(workDir)) if (f.endsWith(".ports")) rmSync(join(workDir, f), { force: true });

  const configFile = join(workDir, "nats-server.conf");
  const logFile = join(workDir, "nats-server.log");
  const stderrFile = join(workDir, "nats-server.stderr");
  writeFileSync(configFile, renderNatsServerConfig(opts.config, logFile));

  const out = openSync(stderrFile, "a");
  // filled in by child events (an object, so TypeScript does not narrow the fields away)
  const state: { spawnError?: Error; exit?: NatsServerExit } = {};
  let child;
  try {
    child = spawn(binary, ["-c", configFile, "--ports_file_dir", workDir], {
      stdio: ["ignore", out, out],
      detached: opts.detached ?? false,
    });
  } finally {
    closeSync(out);
  }
  const exited = new Promise<NatsServerExit>((resolveExit) => {
    child.once("error", (err) => {
      state.spawnError = err;
      // 'exit' does not follow a failed spawn
      if (child.pid === undefined) resolveExit((state.exit = { code: null, signal: null }));
    });
    child.once("exit", (code, signal) => resolveExit((state.exit = { code, signal })));
  });
  if (child.pid !== undefined) track(child.pid, exited);
  const logTail = () => [tail(logFile, 40), tail(stderrFile, 40)].filter(Boolean).join("\n");

  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let ports: { url: string; monitorUrl: string; clusterUrl: string | undefined } | undefined;
  let lastProblem = "no ports file yet";
  for (;;) {
    const { spawnError, exit } = state;
    if (spawnError && child.pid === undefined) {
      throw new NatsServerMissingError([binary], { reason: `cannot run ${binary}: ${spawnError.message}`, cause: spawnError });
    }
    if (exit) {
      throw new NatsServerStartError(
        `nats-server exited (code ${exit.code}, signal ${exit.signal}) before it was ready; config ${configFile}`,
        logTail(),
        { details: { configFile, logFile } },
      );
    }
    if (!ports && child.pid !== undefined) ports = readPorts(workDir, child.pid);
    if (ports) {
      if (opts.ready === "listening") break;
      try {
        const r = await getLocal(`${ports.monitorUrl}/healthz`, 1000);
        if (r.status === 200) break;
        lastProblem = `/healthz ${r.status} ${r.body.trim()}`;
      } catch (err) {
        lastProblem = `/healthz: ${(err as Error).message}`;
      }
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new NatsServerStartError(
        `nats-server was not ready within ${timeoutMs} ms (${lastProblem}); config ${configFile}`,
        logTail(),
        { details: { configFile, logFile } },
      );
    }
    await Promise.race([sleep(25), exited]);
  }
  const p = new NatsServerProcess(child.pid!, workDir, configFile, logFile, stderrFile, ports, exited);
  return p;
}

function readPorts(dir: string, pid: number): { url: string; monitorUrl: string; clusterUrl: string | undefined } | undefined {
  const name = readdirSync(dir).find((f) => f.endsWith(`_${pid}.ports`));
  if (!name) return undefined;
  let parsed: PortsFile;
  try {
    parsed = JSON.parse(readFileSync(join(dir, name), "utf8")) as PortsFile;
  } catch {
    return undefined; // being written
  }
  const url = parsed.nats?.[0];
  const monitorUrl = parsed.monitoring?.[0];
  if (!url || !monitorUrl) return undefined;
  return { url, monitorUrl, clusterUrl: parsed.cluster?.[0] };
}
