// Test harness: a real nats-server with JetStream on a free port and a temp store, in the style of
// nats.js's `nst`. Spawning itself is deploy/local-nats.ts (shared with `airtwin dev`).
//
//   await using ns = await startNatsServer();
//   const nc = await connect({ servers: ns.url });

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  resolveNatsServerBinary,
  spawnNatsServer,
  type NatsServerConfig,
  type NatsServerProcess,
  type SpawnNatsServerOptions,
} from "../../deploy/local-nats.ts";

export { NatsServerMissingError, NatsServerStartError } from "../../deploy/local-nats.ts";

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Enable JetStream. Default true. */
  jetstream?: boolean;
  /** Subject mappings written into the config (see NatsServerConfig.mappings). */
  mappings?: Readonly<Record<string, string>>;
  /** Raw config appended verbatim. */
  extraConfig?: string;
  /** Keep the temp directory (config, log, store) after stop. Default: AIRTWIN_TEST_KEEP=1. */
  keep?: boolean;
  /** Environment for finding the binary (AIRTWIN_NATS_SERVER, PATH). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Readiness deadline in ms. Default 20 000. */
  readyTimeoutMs?: number;
}

/** A nats-server the harness started. */
export interface TestNatsServer extends AsyncDisposable {
  /** Client URL, e.g. nats://127.0.0.1:41234 (stable across restart). */
  readonly url: string;
  /** Client port (stable across restart). */
  readonly port: number;
  /** JetStream store directory (stable across restart). */
  readonly storeDir: string;
  /** Temp directory with config, log (nats-server.log), stderr capture and store. */
  readonly dir: string;
  /** Monitoring URL of the current process (/healthz, /jsz, /varz). */
  readonly monitorUrl: string;
  /** Pid of the current process. */
  readonly pid: number;
  /** False after stop() or kill() until restart(). */
  readonly running: boolean;
  /** Stops for good: SIGTERM, SIGKILL after 5 s, then removes the temp dir (unless kept). */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit; the store stays for restart(). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops gracefully if running, then starts again on the same port with the same store. */
  restart(): Promise<void>;
  /** The last lines of the server log, for assertions and failure messages. */
  logTail(lines?: number): string;
}

/** A nats-server whose port and store survive kill/restart. Shared by the single server and cluster members. */
export class ManagedNatsServer {
  #proc: NatsServerProcess;
  #config: NatsServerConfig;
  #stoppedForGood = false;

  private constructor(
    proc: NatsServerProcess,
    config: NatsServerConfig,
    readonly dir: string,
    private readonly spawnOpts: Omit<SpawnNatsServerOptions, "config" | "workDir">,
  ) {
    this.#proc = proc;
    // pin the port nats-server chose, so restart() comes back where clients expect it
    this.#config = { ...config, port: proc.port };
  }

  /** Spawns a server for `config` in `dir` (created if missing). */
  static async start(
    config: NatsServerConfig,
    dir: string,
    spawnOpts: Omit<SpawnNatsServerOptions, "config" | "workDir"> = {},
  ): Promise<ManagedNatsServer> {
    const proc = await spawnNatsServer({ ...spawnOpts, config, workDir: dir });
    return new ManagedNatsServer(proc, config, dir, spawnOpts);
  }

  get url(): string {
    return this.#proc.url;
  }
  get port(): number {
    return this.#proc.port;
  }
  get monitorUrl(): string {
    return this.#proc.monitorUrl;
  }
  get pid(): number {
    return this.#proc.pid;
  }
  get running(): boolean {
    return this.#proc.running;
  }
  get config(): NatsServerConfig {
    return this.#config;
  }

  logTail(lines = 40): string {
    return this.#proc.logTail(lines);
  }

  /** Graceful stop (SIGTERM, SIGKILL after `graceMs`); the store is kept. */
  async stopProcess(graceMs = 5000): Promise<void> {
    await this.#proc.stop(graceMs);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.#proc.kill(signal);
  }

  /** Stops gracefully if running, then spawns again with the same config (port, store, routes); waits until healthy by default. */
  async restart(opts: Pick<SpawnNatsServerOptions, "ready"> = {}): Promise<void> {
    if (this.#stoppedForGood) throw new Error("nats-server was stopped for good; start a new one");
    await this.#proc.stop();
    this.#proc = await spawnNatsServer({
      ...this.spawnOpts,
      ready: opts.ready ?? "healthy",
      config: this.#config,
      workDir: this.dir,
    });
  }

  markStoppedForGood(): void {
    this.#stoppedForGood = true;
  }
}

function keepDir(opt: boolean | undefined): boolean {
  return opt ?? process.env.AIRTWIN_TEST_KEEP === "1";
}

/**
 * Starts nats-server (JetStream on by default) on 127.0.0.1 and a port it picks, with config, log and
 * store in a fresh temp dir; resolves once /healthz answers 200.
 * @throws NatsServerMissingError when the binary is missing (says what to install).
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<TestNatsServer> {
  // fail before creating anything when the binary is missing
  const binary = resolveNatsServerBinary(opts.env);
  const spawnOpts = { binary, readyTimeoutMs: opts.readyTimeoutMs };
  const dir = mkdtempSync(join(tmpdir(), "airtwin-nats-"));
  const storeDir = join(dir, "store");
  const keep = keepDir(opts.keep);
  let server: ManagedNatsServer;
  try {
    server = await ManagedNatsServer.start(
      {
        port: -1,
        jetstream: opts.jetstream === false ? undefined : { storeDir },
        mappings: opts.mappings,
        extra: opts.extraConfig,
      },
      dir,
      spawnOpts,
    );
  } catch (err) {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = server.url;
  const port = server.port;
  const stop = async (): Promise<void> => {
    server.markStoppedForGood();
    await server.stopProcess();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  return {
    url,
    port,
    storeDir,
    dir,
    get monitorUrl() {
      return server.monitorUrl;
    },
    get pid() {
      return server.pid;
    },
    get running() {
      return server.running;
    },
    stop,
    kill: (signal) => server.kill(signal),
    restart: () => server.restart(),
    logTail: (lines) => server.logTail(lines),
    [Symbol.asyncDispose]: stop,
  };
}
