// `airtwin dev`: everything on one machine. For now: a nats-server child with JetStream, its store under
// $AIRTWIN_DATA_DIR/nats, on a free port, its URL printed and written to $AIRTWIN_DATA_DIR/nats.url;
// Ctrl-C / SIGTERM stops it cleanly. With NATS_URL set it uses that server instead of spawning one.
// Nodes, gateway, archive and integrations join here as they land (DESIGN §6).

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { DeployError } from "../deploy/errors.ts";
import { natsServerVersion, resolveNatsServerBinary, spawnNatsServer, type NatsServerProcess } from "../deploy/local-nats.ts";
import { closeNats, connectNats, loadConfig } from "../runtime/mod.ts";

const usage = `usage: airtwin dev

Runs airtwin on this machine. Starts nats-server with JetStream (store in $AIRTWIN_DATA_DIR/nats,
default .airtwin/nats) on a free port and prints its URL (also written to $AIRTWIN_DATA_DIR/nats.url);
with NATS_URL set, uses that server instead. Ctrl-C stops.
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

/** Resolves on the first SIGINT or SIGTERM (a second one while stopping forces the exit). */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    // signal handlers alone do not keep Node running
    const keepAlive = setInterval(() => undefined, 1 << 30);
    let received = false;
    const on = (signal: NodeJS.Signals) => {
      if (received) {
        process.stderr.write("airtwin dev: forced exit\n");
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

/** Runs `airtwin dev` until Ctrl-C / SIGTERM; sets process.exitCode. */
export async function runDev(args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(usage);
    return;
  }
  const config = loadConfig(env);
  const out = (line: string) => process.stdout.write(`${line}\n`);

  if (env.NATS_URL?.trim()) {
    // an existing server: check it answers, then stay up like the full dev stack will
    const nc = await connectNats({ servers: config.natsServers, name: "airtwin dev" });
    await closeNats(nc);
    out(`airtwin dev: using NATS at ${config.natsUrl} (from NATS_URL)`);
    out(`NATS_URL=${config.natsUrl}`);
    out("airtwin dev: nodes and the HTTP gateway do not run under `airtwin dev` yet. Ctrl-C stops.");
    const signal = await untilSignal();
    out(`airtwin dev: ${signal}, stopped`);
    return;
  }

  const dataDir = resolve(config.dataDir);
  const natsDir = join(dataDir, "nats");
  const urlFile = join(dataDir, "nats.url");
  const lockFile = join(dataDir, "dev.lock");
  mkdirSync(natsDir, { recursive: true });
  const binary = resolveNatsServerBinary(env);
  takeLock(lockFile);

  const signal = untilSignal();
  let nats: NatsServerProcess | undefined;
  try {
    nats = await spawnNatsServer({
      binary,
      config: { serverName: "airtwin-dev", port: -1, jetstream: { storeDir: natsDir } },
      workDir: natsDir,
      // own process group: Ctrl-C reaches only us, and we stop the server after everything that uses it
      detached: true,
    });
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, natsPid: nats.pid } satisfies DevLock));
    writeFileSync(urlFile, `${nats.url}\n`);
    const rel = (p: string) => relative(process.cwd(), p) || ".";
    out(`airtwin dev: ${natsServerVersion(binary).replace(/^nats-server:\s*/, "nats-server ")} with JetStream, store ${rel(natsDir)}, log ${rel(nats.logFile)}`);
    out(`NATS_URL=${nats.url}`);
    out(`airtwin dev: URL written to ${rel(urlFile)}; monitoring ${nats.monitorUrl}`);
    out("airtwin dev: nodes and the HTTP gateway do not run under `airtwin dev` yet. Ctrl-C stops.");

    const ended = await Promise.race([signal, nats.exited.then(() => "exited" as const)]);
    if (ended === "exited") {
      process.stderr.write(`airtwin dev: nats-server exited unexpectedly\n${nats.logTail(20)}\n`);
      process.exitCode = 1;
    } else {
      out(`airtwin dev: ${ended}, stopping nats-server`);
      await nats.stop(10_000);
      out("airtwin dev: stopped");
    }
  } finally {
    if (nats?.running) await nats.stop(10_000);
    rmSync(urlFile, { force: true });
    rmSync(lockFile, { force: true });
  }
}
