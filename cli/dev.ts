// `airtwin dev`: everything on one machine. A nats-server child with JetStream (store under
// $AIRTWIN_DATA_DIR/nats, on a free port; or the server in NATS_URL), `--nodes N` worker nodes (default
// 2) and the HTTP gateway, each a child process logging to $AIRTWIN_DATA_DIR/logs. Prints the gateway
// URL, the admin token (AIRTWIN_ADMIN_TOKEN, or one generated once and kept in
// $AIRTWIN_DATA_DIR/admin-token) and the NATS URL. Ctrl-C / SIGTERM stops the gateway (it finishes its
// requests), then the nodes (they hand their shards off and commit), then nats-server. Starting again
// keeps all state: streams, snapshots and the registry live in the JetStream store.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DeployError } from "../deploy/errors.ts";
import { natsServerVersion, resolveNatsServerBinary, spawnNatsServer, type NatsServerProcess } from "../deploy/local-nats.ts";
import { closeNats, connectNats, loadConfig, RuntimeError } from "../runtime/mod.ts";

const usage = `usage: airtwin dev [--nodes N]

Runs airtwin on this machine: nats-server with JetStream (store in $AIRTWIN_DATA_DIR/nats, default
.airtwin/nats, on a free port; with NATS_URL set, that server instead), N worker nodes (default 2) and
the HTTP gateway (AIRTWIN_HTTP_PORT, default 8080, or a free port when 8080 is taken). Prints the
gateway URL, the admin token and the NATS URL; logs go to $AIRTWIN_DATA_DIR/logs. Ctrl-C stops
everything; starting again keeps all state.
`;

const BIN = fileURLToPath(new URL("../bin/airtwin.js", import.meta.url));

/** The lock of one `airtwin dev` per data directory: our pid and the nats-server child's. */
interface DevLock {
  pid: number;
  natsPid?: number;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function takeLock(lockFile: string): void {
  if (existsSync(lockFile)) {
    let lock: DevLock | undefined;
    try {
      lock = JSON.parse(readFileSync(lockFile, "utf8")) as DevLock;
    } catch {
      lock = undefined; // unreadable: treat as stale
    }
    const holder = lock && alive(lock.pid) ? lock.pid : lock && alive(lock.natsPid) ? lock.natsPid : undefined;
    if (holder !== undefined) {
      throw new DeployError(
        "DEV_ALREADY_RUNNING",
        `another airtwin dev (or its nats-server, pid ${holder}) uses ${lockFile}; stop it, or set AIRTWIN_DATA_DIR to another directory`,
        { details: { lockFile, pid: holder } },
      );
    }
  }
  writeFileSync(lockFile, JSON.stringify({ pid: process.pid } satisfies DevLock));
}

/** Resolves on the first SIGINT or SIGTERM (a second one while stopping forces the exit). */
function untilSignal(onForce: () => void): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    // signal handlers alone do not keep Node running
    const keepAlive = setInterval(() => undefined, 1 << 30);
    let received = false;
    const on = (signal: NodeJS.Signals) => {
      if (received) {
        process.stderr.write("airtwin dev: forced exit\n");
        onForce();
        process.exit(130);
      }
      received = true;
      clearInterval(keepAlive);
      resolveSignal(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** `--nodes N` (1–64, default 2). */
export function parseDevArgs(args: readonly string[]): { nodes: number; help: boolean } {
  let nodes = 2;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--help" || a === "-h") help = true;
    else if (a === "--nodes" || a.startsWith("--nodes=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isInteger(n) || n < 1 || n > 64) {
        throw new RuntimeError("CONFIG_INVALID", `--nodes must be an integer from 1 to 64, got ${v ?? "nothing"}`, { details: { problems: [{ variable: "--nodes", value: v ?? "", reason: "1-64" }] } });
      }
      nodes = n;
    } else {
      throw new RuntimeError("CONFIG_INVALID", `unknown argument ${a}\n\n${usage}`);
    }
  }
  return { nodes, help };
}

/** The admin token: AIRTWIN_ADMIN_TOKEN, else the one kept in `<dataDir>/admin-token` (created once, mode 0600). */
function adminToken(env: NodeJS.ProcessEnv, dataDir: string): { token: string; source: string } {
  const fromEnv = env.AIRTWIN_ADMIN_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: "AIRTWIN_ADMIN_TOKEN" };
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) {
    const saved = readFileSync(file, "utf8").trim();
    if (saved.length >= 16) return { token: saved, source: file };
  }
  const token = randomBytes(32).toString("base64url");
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { token, source: file };
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once("error", () => resolvePort(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolvePort(true)));
  });
}

function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? resolvePort(addr.port) : reject(new Error("no port"))));
    });
  });
}

function getStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = httpGet(url, { agent: false, timeout: 2000, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolveGet({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** A child `airtwin <role>` process with its log file. */
class Child {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly proc: ChildProcess;

  constructor(
    readonly name: string,
    role: string,
    env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {
    const fd = openSync(logFile, "a");
    try {
      // own process group: a terminal's Ctrl-C reaches only `airtwin dev`, which stops children in order
      this.proc = spawn(process.execPath, [BIN, role], { env, stdio: ["ignore", fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((r) => this.proc.once("exit", (code, signal) => r((this.exit = { code, signal }))));
    children.add(this);
    void this.exited.then(() => children.delete(this));
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.proc.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.kill("SIGTERM");
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === "timeout") {
      process.stderr.write(`airtwin dev: ${this.name} did not stop within ${graceMs} ms; killing it\n`);
      this.kill("SIGKILL");
      await this.exited;
    }
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

/** Children still running; a crashed `airtwin dev` leaves none behind. */
const children = new Set<Child>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});

/** Runs `airtwin dev` until Ctrl-C / SIGTERM; sets process.exitCode. */
export async function runDev(args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const opts = parseDevArgs(args);
  if (opts.help) {
    process.stdout.write(usage);
    return;
  }
  const config = loadConfig(env);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const rel = (p: string) => {
    const r = relative(process.cwd(), p);
    return r === "" ? "." : r.startsWith("..") ? p : r;
  };
  const dataDir = resolve(config.dataDir);
  const logDir = join(dataDir, "logs");
  const urlFile = join(dataDir, "nats.url");
  const lockFile = join(dataDir, "dev.lock");
  const external = Boolean(env.NATS_URL?.trim());

  let nats: NatsServerProcess | undefined;
  let natsUrl = config.natsUrl;
  const signal = untilSignal(() => {
    for (const c of children) c.kill("SIGKILL");
    if (nats?.running) void nats.kill("SIGKILL");
  });
  let locked = false;
  try {
    if (external) {
      // an existing server: check it answers before starting anything
      const nc = await connectNats({ servers: config.natsServers, name: "airtwin dev" });
      await closeNats(nc);
      mkdirSync(logDir, { recursive: true });
      out(`airtwin dev: using NATS at ${config.natsUrl} (from NATS_URL)`);
      out(`NATS_URL=${config.natsUrl}`);
    } else {
      const natsDir = join(dataDir, "nats");
      mkdirSync(natsDir, { recursive: true });
      mkdirSync(logDir, { recursive: true });
      const binary = resolveNatsServerBinary(env);
      takeLock(lockFile);
      locked = true;
      nats = await spawnNatsServer({
        binary,
        config: { serverName: "airtwin-dev", port: -1, jetstream: { storeDir: natsDir } },
        workDir: natsDir,
        detached: true,
      });
      natsUrl = nats.url;
      writeFileSync(lockFile, JSON.stringify({ pid: process.pid, natsPid: nats.pid } satisfies DevLock));
      writeFileSync(urlFile, `${nats.url}\n`);
      out(`airtwin dev: ${natsServerVersion(binary).replace(/^nats-server:\s*/, "nats-server ")} with JetStream, store ${rel(natsDir)}, log ${rel(nats.logFile)}`);
      out(`NATS_URL=${nats.url}`);
      out(`airtwin dev: URL written to ${rel(urlFile)}; monitoring ${nats.monitorUrl}`);
    }

    const admin = adminToken(env, dataDir);
    const host = env.AIRTWIN_HTTP_HOST?.trim() || "127.0.0.1";
    let port = config.httpPort;
    if (!env.AIRTWIN_HTTP_PORT?.trim() && !(await portFree(port, host))) {
      const taken = port;
      port = await freePort(host);
      out(`airtwin dev: port ${taken} is taken; the gateway uses ${port} (set AIRTWIN_HTTP_PORT to choose)`);
    }
    const childEnv = { ...env, NATS_URL: natsUrl, AIRTWIN_ADMIN_TOKEN: admin.token, AIRTWIN_DATA_DIR: dataDir };
    out(`airtwin dev: starting ${opts.nodes} node${opts.nodes === 1 ? "" : "s"} and the gateway; logs in ${rel(logDir)}`);
    const nodes = Array.from({ length: opts.nodes }, (_, i) => {
      const nodeId = `dev-node-${i + 1}`;
      return new Child(nodeId, "node", { ...childEnv, AIRTWIN_NODE_ID: nodeId, AIRTWIN_METRICS_PORT: "" }, join(logDir, `${nodeId}.log`));
    });
    const gateway = new Child("gateway", "gateway", { ...childEnv, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: host }, join(logDir, "gateway.log"));
    const all = [gateway, ...nodes];
    const firstExit = Promise.race(all.map((c) => c.exited.then(() => c)));
    const base = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

    const probing = new AbortController();
    const started = await Promise.race([
      signal.then((s) => ({ kind: "signal" as const, s })),
      firstExit.then((c) => ({ kind: "exited" as const, c })),
      waitUntilUp(base, admin.token, probing.signal).then((shards) => ({ kind: "up" as const, shards })),
    ]);
    probing.abort();
    let ended: { kind: "signal"; s: NodeJS.Signals } | { kind: "exited"; c: Child };
    if (started.kind === "up") {
      out("");
      out("airtwin dev is up:");
      out(`  gateway  ${base}   (API docs: ${base}/docs)`);
      out(`  admin    ${admin.token}   (${admin.source === "AIRTWIN_ADMIN_TOKEN" ? "from AIRTWIN_ADMIN_TOKEN" : `kept in ${rel(admin.source)}`})`);
      out(`  NATS     ${natsUrl}`);
      out(`  nodes    ${nodes.map((n) => n.name).join(", ")}${started.shards ? "" : " (still taking their shards)"}`);
      out(`GATEWAY_URL=${base}`);
      out(`AIRTWIN_ADMIN_TOKEN=${admin.token}`);
      out("Ctrl-C stops everything; starting again keeps all state.");
      ended = await Promise.race([signal.then((s) => ({ kind: "signal" as const, s })), firstExit.then((c) => ({ kind: "exited" as const, c }))]);
    } else {
      ended = started;
    }
    if (ended.kind === "exited") {
      const c = ended.c;
      const exit = await c.exited;
      process.stderr.write(
        `airtwin dev: ${c.name} exited unexpectedly (code ${exit.code}, signal ${exit.signal}); log ${rel(c.logFile)}:\n${c.logTail(20)}\n`,
      );
      process.exitCode = 1;
    } else {
      out(`airtwin dev: ${ended.s}, stopping`);
    }
    // the gateway first (it finishes its requests), then the nodes (they hand off and commit), then NATS
    await gateway.stop(15_000);
    await Promise.all(nodes.map((n) => n.stop(30_000)));
    if (nats !== undefined) await nats.stop(10_000);
    out("airtwin dev: stopped");
  } finally {
    for (const c of children) await c.stop(5_000);
    if (nats?.running) await nats.stop(10_000);
    if (locked) {
      rmSync(urlFile, { force: true });
      rmSync(lockFile, { force: true });
    }
  }
}

/**
 * Resolves once the gateway answers /readyz and (best effort, up to 30 s) every shard has an owner;
 * true when the shards are owned.
 */
async function waitUntilUp(base: string, token: string, abort: AbortSignal): Promise<boolean> {
  for (;;) {
    if (abort.aborted) return false;
    const r = await getStatus(`${base}/readyz`).catch(() => undefined);
    if (r?.status === 200) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !abort.aborted) {
    const r = await getStatus(`${base}/v1/ops/cluster`, { authorization: `Bearer ${token}` }).catch(() => undefined);
    if (r?.status === 200) {
      const view = JSON.parse(r.body) as { shards?: Array<{ owner: string | null }> };
      if (view.shards !== undefined && view.shards.length > 0 && view.shards.every((s) => s.owner !== null)) return true;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return false;
}
