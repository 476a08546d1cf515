// The whole system of a chaos run, each part a separate OS process as an operator runs it (the shape of
// deploy/local-cluster.ts): a 3-server NATS JetStream cluster (replicas 3, 3 input streams), 3 `airtwin
// node`s, 2 `airtwin gateway`s on fixed ports, `airtwin archive` (Postgres through a proxy the run can
// cut, or PGlite without DATABASE_URL) and `airtwin integrations --providers webhook`. Any part can be
// killed, frozen and started again; `settled()` says when the cluster serves every shard again.
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { AirtwinProcess } from "../e2e/processes.ts";
import { getFreePorts } from "../harness/free-port.ts";
import { startNatsCluster, type TestNatsCluster } from "../harness/nats-cluster.ts";
import { pgProxy, type PgProxy } from "../harness/pg-proxy.ts";
import { waitFor } from "../harness/wait-for.ts";
import type { ChaosParams } from "./params.ts";

export const ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef";
export const PREFIX = "chaos";
export const NODE_IDS = ["chaos-node-1", "chaos-node-2", "chaos-node-3"] as const;
export const GATEWAYS = ["gateway-1", "gateway-2"] as const;
/** Lease TTL of the nodes: a pause longer than this (plus the heartbeat's expiry) moves the node's shards. */
export const LEASE_TTL_MS = 4000;

export type RoleName = (typeof NODE_IDS)[number] | (typeof GATEWAYS)[number] | "archive" | "integrations";

interface Role {
  readonly name: RoleName;
  readonly args: string[];
  readonly env: Record<string, string>;
  readonly ready: (p: AirtwinProcess) => Promise<boolean>;
  /** Still serving, once ready (a gateway's /readyz also asks JetStream, with a 1 s deadline a loaded machine misses). */
  readonly serving?: (p: AirtwinProcess) => Promise<boolean>;
}

/** Subset of GET /v1/ops/cluster the run looks at. */
export interface ClusterPicture {
  nodes: Array<{ nodeId: string; live: boolean; draining: boolean; owned: number[] }>;
  shards: Array<{ shard: number; owner: string | null; assigned: string | null; pinned: boolean }>;
}

const printed = (line: string) => (p: AirtwinProcess) => Promise.resolve(p.output().includes(line));

export class ChaosSystem {
  readonly procs = new Map<RoleName, AirtwinProcess>();
  /** Every process ever started, for the logs of a failure. */
  readonly incarnations: AirtwinProcess[] = [];
  /** Processes that ended without the run killing or stopping them. */
  readonly unexpectedExits: string[] = [];
  readonly roles = new Map<RoleName, Role>();
  readonly gatewayUrls: string[];
  readonly env: Record<string, string>;
  #deliberate = new Set<AirtwinProcess>();

  private constructor(
    readonly params: ChaosParams,
    readonly nats: TestNatsCluster,
    readonly proxy: PgProxy | undefined,
    readonly dir: string,
    httpPorts: number[],
    /** The archive's Postgres schema (its own: test/harness/process-schema.ts's are dropped by any vitest run's teardown on a shared database). */
    readonly schema: string | undefined,
  ) {
    this.env = {
      NATS_URL: nats.urls.join(","),
      AIRTWIN_PREFIX: PREFIX,
      AIRTWIN_SHARDS: String(params.shards),
      AIRTWIN_STREAMS: "3",
      AIRTWIN_REPLICAS: "3",
      AIRTWIN_DATA_DIR: dir,
      AIRTWIN_ADMIN_TOKEN: ADMIN_TOKEN,
      AIRTWIN_METRICS_PORT: "",
      AIRTWIN_LOG_LEVEL: "warn",
      AIRTWIN_LEASE_TTL_MS: String(LEASE_TTL_MS),
      AIRTWIN_HEARTBEAT_MS: "500",
      // the fleet posts faster than a real Foobot; the rate limit is not what this run is about
      AIRTWIN_INGEST_RATE_MAX: "100000",
    };
    this.gatewayUrls = httpPorts.map((p) => `http://127.0.0.1:${p}`);
    for (const id of NODE_IDS) this.roles.set(id, { name: id, args: ["node"], env: { AIRTWIN_NODE_ID: id }, ready: printed('"node ready"') });
    GATEWAYS.forEach((name, i) =>
      this.roles.set(name, {
        name,
        args: ["gateway"],
        env: { AIRTWIN_HTTP_PORT: String(httpPorts[i]), AIRTWIN_HTTP_HOST: "127.0.0.1" },
        ready: async () => (await fetch(`${this.gatewayUrls[i]}/readyz`).catch(() => undefined))?.status === 200,
        serving: async () => (await fetch(`${this.gatewayUrls[i]}/healthz`).catch(() => undefined))?.status === 200,
      }),
    );
    const database: Record<string, string> = proxy === undefined ? {} : { DATABASE_URL: proxy.url, AIRTWIN_ARCHIVE_SCHEMA: schema! };
    this.roles.set("archive", { name: "archive", args: ["archive"], env: database, ready: printed('"archive ready"') });
    this.roles.set("integrations", {
      name: "integrations",
      args: ["integrations", "--providers", "webhook"],
      env: { AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1" },
      ready: printed('"integrations ready"'),
    });
  }

  /** Starts NATS, then the nodes, then gateways, archive and integrations, and waits until all shards are served. */
  static async start(params: ChaosParams): Promise<ChaosSystem> {
    const dir = mkdtempSync(join(tmpdir(), "airtwin-chaos-"));
    const nats = await startNatsCluster({ size: 3, name: "airtwin-chaos" });
    const url = process.env.DATABASE_URL;
    const proxy = url === undefined || url === "" ? undefined : await pgProxy(new URL(url));
    const schema = proxy === undefined ? undefined : `chaos_${randomBytes(6).toString("hex")}`;
    mkdirSync(join(dir, "logs"));
    const system = new ChaosSystem(params, nats, proxy, dir, await getFreePorts(GATEWAYS.length), schema);
    try {
      await Promise.all(NODE_IDS.map((id) => system.startRole(id)));
      await Promise.all([...GATEWAYS, "archive" as const, "integrations" as const].map((r) => system.startRole(r)));
      await system.settled();
    } catch (err) {
      console.error(system.logTails(25, true));
      await system.stop({ keepLogs: true });
      throw err;
    }
    return system;
  }

  /** Starts `name` (again) and waits until it is ready. */
  async startRole(name: RoleName): Promise<AirtwinProcess> {
    const role = this.roles.get(name)!;
    const p = new AirtwinProcess(name, role.args, { ...this.env, ...role.env });
    this.procs.set(name, p);
    this.incarnations.push(p);
    const file = createWriteStream(join(this.dir, "logs", `${name}.${this.incarnations.filter((x) => x.name === name).length}.log`));
    p.child.stdout!.pipe(file);
    p.child.stderr!.pipe(file);
    void p.exited.then(() => {
      if (!this.#deliberate.has(p)) this.unexpectedExits.push(`${name} (pid ${p.child.pid}, ${p.child.signalCode ?? `exit ${p.child.exitCode}`}): ${tail(p.output(), 8)}`);
    });
    await waitFor(
      async () => {
        if (!p.running) throw new Error(`${name} exited while starting:\n${tail(p.output(), 30)}`);
        return role.ready(p);
      },
      { timeoutMs: 120_000, intervalMs: 100, message: `${name} ready` },
    );
    return p;
  }

  running(name: RoleName): boolean {
    return this.procs.get(name)?.running === true;
  }

  /** Sends `signal` to `name`; SIGKILL and SIGTERM wait for the exit. */
  async signal(name: RoleName, signal: NodeJS.Signals): Promise<void> {
    const p = this.procs.get(name);
    if (p === undefined || !p.running) return;
    if (signal === "SIGKILL" || signal === "SIGTERM") this.#deliberate.add(p);
    if (signal === "SIGTERM") {
      await p.stop(30_000);
      return;
    }
    p.child.kill(signal);
    if (signal === "SIGKILL") await p.exited;
  }

  /** Starts every role that is not running (after its fault, or after it died on its own). */
  async restartMissing(): Promise<RoleName[]> {
    const missing = [...this.roles.keys()].filter((r) => !this.running(r));
    const nodes = missing.filter((r) => r.startsWith("chaos-node"));
    await Promise.all(nodes.map((r) => this.startRole(r)));
    await Promise.all(missing.filter((r) => !nodes.includes(r)).map((r) => this.startRole(r)));
    return missing;
  }

  /** GET/POST on an ops route through the first gateway that answers. */
  async ops<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let last: unknown;
    for (const url of this.gatewayUrls) {
      try {
        const r = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(20_000),
        });
        const json = (await r.json()) as T;
        if (r.status < 500) return { status: r.status, body: json };
        last = new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
      } catch (err) {
        last = err;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  cluster(): Promise<ClusterPicture> {
    return this.ops<ClusterPicture>("GET", "/v1/ops/cluster").then((r) => {
      if (r.status !== 200) throw new Error(`ops cluster: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    });
  }

  /** Until every part runs, both gateways are ready and every shard is held by a live node. */
  settled(timeoutMs = 180_000): Promise<void> {
    return this.until("every part running and every shard served", (c) => c.shards.every((s) => s.owner !== null && c.nodes.some((n) => n.live && n.nodeId === s.owner)), timeoutMs);
  }

  /**
   * Until every part runs, both gateways are ready and `condition` holds for the cluster; a timeout says
   * what was missing and how the cluster looked.
   */
  async until(what: string, condition: (c: ClusterPicture) => boolean, timeoutMs = 180_000): Promise<void> {
    let waitingFor = "";
    await waitFor(
      async () => {
        for (const [name, role] of this.roles) {
          const p = this.procs.get(name);
          waitingFor = `${name} serving`;
          if (p === undefined || !p.running || !(await (role.serving ?? role.ready)(p))) return false;
        }
        waitingFor = "GET /v1/ops/cluster";
        const c = await this.cluster();
        waitingFor = `the cluster: ${describe(c)}`;
        return condition(c);
      },
      { timeoutMs, intervalMs: 250, message: what },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; still waiting for ${waitingFor}`, { cause: err });
    });
  }

  /** Asks every running node for its ownership state (SIGUSR2: one log line each), then lets the lines land. */
  async diagnose(): Promise<void> {
    for (const name of NODE_IDS) if (this.running(name)) this.procs.get(name)!.child.kill("SIGUSR2");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }

  /** The last lines of every process's output; `kept`: the logs will be kept (a failed run). */
  logTails(lines = 25, kept = false): string {
    const nats = this.nats.servers.map((m) => `--- NATS ${m.name} ${m.dir} ---\n${m.logTail(10)}`).join("\n");
    const procs = this.incarnations.map((p) => `--- ${p.name} (pid ${p.child.pid}, ${p.running ? "running" : "ended"}) ---\n${tail(p.output(), lines)}`).join("\n");
    return `${procs}\n${nats}\nevery process's log: ${join(this.dir, "logs")}${kept || process.env.AIRTWIN_TEST_KEEP === "1" ? " (kept)" : " (removed; AIRTWIN_TEST_KEEP=1 keeps it)"}`;
  }

  /** Kills what still runs and removes the temp dir (kept with AIRTWIN_TEST_KEEP=1, or `keepLogs` after a failed run). */
  async stop(o: { keepLogs?: boolean } = {}): Promise<void> {
    await Promise.all([...this.procs.keys()].map((r) => this.signal(r, "SIGKILL")));
    await this.nats.stop();
    await this.proxy?.close();
    if (this.schema !== undefined) await dropSchema(this.schema);
    if (process.env.AIRTWIN_TEST_KEEP !== "1" && o.keepLogs !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Nodes (live, draining, shards they report) and every shard not held by its assigned node. */
export function describe(c: ClusterPicture): string {
  const nodes = c.nodes.map((n) => `${n.nodeId}${n.live ? "" : " (dead)"}${n.draining ? " (draining)" : ""} owns [${n.owned.join(",")}]`).join("; ");
  const off = c.shards.filter((s) => s.owner === null || s.owner !== s.assigned).map((s) => `${s.shard}: owner ${s.owner ?? "none"}, assigned ${s.assigned ?? "none"}${s.pinned ? " (pinned)" : ""}`);
  return `nodes ${nodes}; shards not held by their assigned node: ${off.join("; ") || "none"}`;
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}
