// `airtwin dev`: everything on one machine. A nats-server child with JetStream (store under
// $AIRTWIN_DATA_DIR/nats, on a free port; or the server in NATS_URL) and the roles of dev-roles.ts
// (worker nodes, the gateway, …), each a child process logging to $AIRTWIN_DATA_DIR/logs;
// `--simulate N` registers a demo user and N devices and runs them as a simulated fleet. Prints the
// dashboard URL, the admin token (AIRTWIN_ADMIN_TOKEN, or one generated once and kept in
// $AIRTWIN_DATA_DIR/admin-token), the demo user's API key and the NATS URL. Ctrl-C / SIGTERM stops the
// roles in their stop order (dev-roles.ts), then nats-server. Starting again keeps all state: streams,
// snapshots and the registry live in the JetStream store, the demo fleet's tokens and clock in its file.

import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { DeployError } from "../deploy/errors.ts";
import { natsServerVersion, resolveNatsServerBinary, spawnNatsServer, type NatsServerProcess } from "../deploy/local-nats.ts";
import { closeNats, connectNats, loadConfig, maskUrl, RuntimeError } from "../runtime/mod.ts";
import { DEMO_FLEET_FILE, DEMO_OFFLINE_AFTER_MS, prepareDemoFleet, type DemoFleetInfo } from "../sim/demo-fleet.ts";
import { Child, children } from "./dev-child.ts";
import { devRoles, devRolesAfterGateway, stopOrder, type DevRoleContext } from "./dev-roles.ts";

const usage = `usage: airtwin dev [--nodes N] [--simulate N]

Runs airtwin on this machine: nats-server with JetStream (store in $AIRTWIN_DATA_DIR/nats, default
.airtwin/nats, on a free port; with NATS_URL set, that server instead), N worker nodes (default 2) and
the HTTP gateway (AIRTWIN_HTTP_PORT, default 8080, or a free port when 8080 is taken and the variable
is unset). --simulate N registers a demo user and N devices and runs them as a simulated fleet whose
event time runs faster than the clock (npm start is airtwin dev --simulate 50). Prints the dashboard
URL, the admin token, the demo user's API key and the NATS URL; logs go to $AIRTWIN_DATA_DIR/logs.
Ctrl-C stops everything; starting again keeps all state and resumes the fleet.
`;

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

/** A signal this soon after the first is the same Ctrl-C delivered twice, not a second press (ms). */
const SAME_SIGNAL_MS = 1500;

/**
 * Resolves on the first SIGINT or SIGTERM; a second one while stopping forces the exit. Under `npm
 * start` one Ctrl-C arrives twice — from the terminal to the whole process group, and forwarded by npm —
 * so a repeat within SAME_SIGNAL_MS is ignored.
 */
function untilSignal(onForce: () => void, keepAlive: NodeJS.Timeout): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    let receivedAt: number | undefined;
    const on = (signal: NodeJS.Signals) => {
      if (receivedAt !== undefined) {
        if (Date.now() - receivedAt < SAME_SIGNAL_MS) return;
        process.stderr.write("airtwin dev: forced exit\n");
        onForce();
        process.exit(130);
      }
      receivedAt = Date.now();
      clearInterval(keepAlive);
      resolveSignal(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** `--nodes N` (1–64, default 2), `--simulate N` (0–10 000 devices, default 0). */
export function parseDevArgs(args: readonly string[]): { nodes: number; simulate: number; help: boolean } {
  let nodes = 2;
  let simulate = 0;
  let help = false;
  const count = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new RuntimeError("CONFIG_INVALID", `${flag} must be an integer from ${min} to ${max}, got ${v ?? "nothing"}`, { details: { problems: [{ variable: flag, value: v ?? "", reason: `${min}-${max}` }] } });
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const flag = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    const value = () => (a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i]);
    if (a === "--help" || a === "-h") help = true;
    else if (flag === "--nodes") nodes = count("--nodes", value(), 1, 64);
    else if (flag === "--simulate") simulate = count("--simulate", value(), 0, 10_000);
    else {
      throw new RuntimeError("CONFIG_INVALID", `unknown argument ${a}\n\n${usage}`);
    }
  }
  return { nodes, simulate, help };
}

/** The admin token: AIRTWIN_ADMIN_TOKEN, else the one kept in `<dataDir>/admin-token` (created once, mode 0600). */
export function adminToken(env: NodeJS.ProcessEnv, dataDir: string): { token: string; source: string } {
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

export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once("error", () => resolvePort(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolvePort(true)));
  });
}

export function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? resolvePort(addr.port) : reject(new Error("no port"))));
    });
  });
}

export function getStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
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
  const gatewayUrlFile = join(dataDir, "gateway.url");
  const external = Boolean(env.NATS_URL?.trim());

  let nats: NatsServerProcess | undefined;
  let natsUrl = config.natsUrl;
  // signal handlers alone do not keep Node running; cleared when dev ends, however it ends
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const signal = untilSignal(() => {
    for (const c of children) c.kill("SIGKILL");
    if (nats?.running) void nats.kill("SIGKILL");
  }, keepAlive);
  let locked = false;
  try {
    // the gateway's port first: a port in use stops dev before anything started
    const host = env.AIRTWIN_HTTP_HOST?.trim() || "127.0.0.1";
    let port = config.httpPort;
    if (!(await portFree(port, host))) {
      if (env.AIRTWIN_HTTP_PORT?.trim()) {
        throw new DeployError("DEV_PORT_IN_USE", `port ${port} on ${host} is in use (AIRTWIN_HTTP_PORT=${port}); stop what uses it or set AIRTWIN_HTTP_PORT to a free port`, {
          details: { port, host, variable: "AIRTWIN_HTTP_PORT" },
        });
      }
      const taken = port;
      port = await freePort(host);
      out(`airtwin dev: port ${taken} is in use; the gateway takes ${port} instead (set AIRTWIN_HTTP_PORT to choose the port)`);
    }
    if (external) {
      // an existing server: check it answers before starting anything
      const nc = await connectNats({ servers: config.natsServers, name: "airtwin dev" });
      await closeNats(nc);
      mkdirSync(logDir, { recursive: true });
      // the password or token stays in the environment it came from, not in the output
      out(`airtwin dev: using NATS at ${maskUrl(config.natsUrl)} (from NATS_URL)`);
      out(`NATS_URL=${maskUrl(config.natsUrl)}`);
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
    const childEnv: NodeJS.ProcessEnv = { ...env, NATS_URL: natsUrl, AIRTWIN_ADMIN_TOKEN: admin.token, AIRTWIN_DATA_DIR: dataDir };
    if (opts.simulate > 0 && !env.AIRTWIN_OFFLINE_AFTER_MS?.trim()) {
      // three missed uploads at the demo's cadence (a reading every ~1 s, then every 10 s), as 15 min is
      // for a Foobot's 5: the fleet's outages then show as offline/online alerts within the demo's minutes
      childEnv.AIRTWIN_OFFLINE_AFTER_MS = String(DEMO_OFFLINE_AFTER_MS);
      out(`airtwin dev: devices count as offline after ${DEMO_OFFLINE_AFTER_MS / 1000} s without a reading (the demo's cadence; AIRTWIN_OFFLINE_AFTER_MS to change)`);
    }
    const base = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    const roleContext: DevRoleContext = {
      env: childEnv,
      nodes: opts.nodes,
      httpHost: host,
      httpPort: port,
      gatewayUrl: base,
      simulate: opts.simulate,
      fleetFile: join(dataDir, DEMO_FLEET_FILE),
    };
    const roles = devRoles(roleContext);
    out(`airtwin dev: starting ${roles.map((r) => r.name).join(", ")}; logs in ${rel(logDir)}`);
    const running = roles.map((r) => new Child(r, join(logDir, `${r.name}.log`)));
    let firstExit = Promise.race(running.map((c) => c.exited.then(() => c)));

    const probing = new AbortController();
    const started = await Promise.race([
      signal.then((s) => ({ kind: "signal" as const, s })),
      firstExit.then((c) => ({ kind: "exited" as const, c })),
      waitUntilUp(base, admin.token, probing.signal).then((shards) => ({ kind: "up" as const, shards })),
    ]);
    probing.abort();
    let ended: { kind: "signal"; s: NodeJS.Signals } | { kind: "exited"; c: Child } | undefined;
    if (started.kind === "up") {
      writeFileSync(gatewayUrlFile, `${base}\n`);
      let demo: DemoFleetInfo | undefined;
      if (opts.simulate > 0) {
        const setup = await Promise.race([
          signal.then((s) => ({ kind: "signal" as const, s })),
          prepareDemoFleet({ gatewayUrl: base, adminToken: admin.token, fleetFile: roleContext.fleetFile, devices: opts.simulate, log: out }).then((info) => ({ kind: "ready" as const, info })),
        ]);
        if (setup.kind === "signal") ended = setup;
        else {
          demo = setup.info;
          const fleet = devRolesAfterGateway(roleContext).map((r) => new Child(r, join(logDir, `${r.name}.log`)));
          running.push(...fleet);
          firstExit = Promise.race(running.map((c) => c.exited.then(() => c)));
        }
      }
      if (ended === undefined) {
        out("");
        out("airtwin dev is up:");
        out(`  dashboard ${base}/   (API docs: ${base}/docs)`);
        out(`  admin     ${admin.token}   (${admin.source === "AIRTWIN_ADMIN_TOKEN" ? "from AIRTWIN_ADMIN_TOKEN" : `kept in ${rel(admin.source)}`})`);
        if (demo !== undefined) {
          out(`  demo user ${demo.userId}, API key ${demo.apiKey}   (kept in ${rel(roleContext.fleetFile)})`);
          out(`  fleet     ${demo.devices} simulated devices (${demo.first} … ${demo.last}), event time ×${demo.speed}; log ${rel(join(logDir, "simulate.log"))}`);
        }
        out(`  NATS      ${maskUrl(natsUrl)}`);
        out(`  nodes     ${roles.filter((r) => r.args[0] === "node").map((r) => r.name).join(", ")}${started.shards ? "" : " (still taking their shards)"}`);
        out(`  archive   ${config.databaseUrl ? "Postgres (DATABASE_URL)" : `PGlite in ${rel(join(dataDir, "pglite", "archive"))}`}; log ${rel(join(logDir, "archive.log"))}`);
        out(`  integrations webhook, push${env.AIRTWIN_SMTP_URL?.trim() ? ", email" : ""}${env.AIRTWIN_THERMOSTAT_URL?.trim() ? ", thermostat" : ""} (docs/integrations.md); log ${rel(join(logDir, "integrations.log"))}`);
        out(`GATEWAY_URL=${base}`);
        out(`AIRTWIN_ADMIN_TOKEN=${admin.token}`);
        if (demo !== undefined) out(`AIRTWIN_API_KEY=${demo.apiKey}`);
        out("Ctrl-C stops everything; starting again keeps all state.");
        ended = await Promise.race([signal.then((s) => ({ kind: "signal" as const, s })), firstExit.then((c) => ({ kind: "exited" as const, c }))]);
      }
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
    for (const stage of stopOrder(running)) await Promise.all(stage.map((c) => c.stop(c.stopGraceMs)));
    if (nats !== undefined) await nats.stop(10_000);
    out("airtwin dev: stopped");
  } finally {
    clearInterval(keepAlive);
    for (const c of children) await c.stop(5_000);
    if (nats?.running) await nats.stop(10_000);
    if (locked) {
      rmSync(urlFile, { force: true });
      rmSync(gatewayUrlFile, { force: true });
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
