// Runtime configuration (docs/design.md §6): environment variables in, a validated, frozen AirtwinConfig out.
// Invalid values fail fast with AIRTWIN_ERR_CONFIG_INVALID naming every offending variable and why.

import { hostname } from "node:os";
import { RuntimeError } from "./errors.ts";
import { maskUrl } from "./connect.ts";

/** Validated configuration of an airtwin process. Every field is read from the environment variable named. */
export interface AirtwinConfig {
  /**
   * NATS server URL, or several separated by commas (a cluster). `NATS_URL`.
   * Default "nats://127.0.0.1:4222". Schemes nats, tls, ws, wss; a bare host:port means nats.
   */
  readonly natsUrl: string;
  /** The entries of {@link natsUrl}, split and trimmed. */
  readonly natsServers: readonly string[];
  /** Postgres URL of the archive (postgres:// or postgresql://). `DATABASE_URL`. Default: unset (embedded PGlite under dataDir). */
  readonly databaseUrl: string | undefined;
  /** Admin bearer token of the HTTP API. `AIRTWIN_ADMIN_TOKEN`. Default: unset (`airtwin dev` generates one). */
  readonly adminToken: string | undefined;
  /** HTTP port of the gateway; 0 = any free port. `AIRTWIN_HTTP_PORT`. Default 8080. */
  readonly httpPort: number;
  /** Number of shards twins are hashed into, 1..4096; fixed when the cluster is first created. `AIRTWIN_SHARDS`. Default 64. */
  readonly shards: number;
  /**
   * Number of input (and snapshot) streams, each holding a contiguous group of shards, 1..64 and at most
   * `shards`; fixed when the cluster is first created. `AIRTWIN_STREAMS`. Default 1.
   */
  readonly streams: number;
  /** This node's id: 1-64 of [A-Za-z0-9_-] (it appears in subjects and KV keys). `AIRTWIN_NODE_ID`. Default `<hostname>-<pid>`. */
  readonly nodeId: string;
  /** Port of a node's Prometheus `/metrics`; 0 = any free port. `AIRTWIN_METRICS_PORT`. Default: unset (no metrics listener). */
  readonly metricsPort: number | undefined;
  /**
   * Interface the metrics listener binds. `AIRTWIN_METRICS_HOST`. Default "127.0.0.1" (only this machine
   * scrapes); "0.0.0.0" in a container or pod, where Prometheus scrapes over the network.
   */
  readonly metricsHost: string;
  /** First token of every subject and part of stream/bucket names: 1-32 of [A-Za-z0-9_-]. `AIRTWIN_PREFIX`. Default "airtwin". */
  readonly prefix: string;
  /** JetStream replicas of streams and KV buckets: 1, 3 or 5. `AIRTWIN_REPLICAS`. Default 1. */
  readonly replicas: 1 | 3 | 5;
  /** Local state directory (nats-server store of `airtwin dev`, embedded PGlite). `AIRTWIN_DATA_DIR`. Default ".airtwin". */
  readonly dataDir: string;
  /** Milliseconds between commits of dirty snapshots and consumer acks, 10..60 000. `AIRTWIN_COMMIT_INTERVAL_MS`. Default 1000. */
  readonly commitIntervalMs: number;
  /** Longest gap between commits while a shard works off a backlog (fewer snapshot writes, faster catch-up; bounds what a crash replays), commitIntervalMs..60 000; keep it well under the shard consumers' ack_wait (60 s), or the server redelivers what waits for its commit. `AIRTWIN_COMMIT_MAX_INTERVAL_MS`. Default 5000, or commitIntervalMs when that is larger. */
  readonly commitMaxIntervalMs: number;
  /**
   * A twin's snapshot is written about this often (ms) while only input changes it (see `snapshotPacing`),
   * or after 1000 inputs; the input log replays the rest after a crash (so a crash replays up to this long
   * of input, 1½ of it paced).
   * 0..3 600 000; 0 writes every changed twin at every commit. `AIRTWIN_SNAPSHOT_INTERVAL_MS`. Default 1 800 000 (30 min:
   * a snapshot every sixth reading at a Foobot's 5-minute cadence; 15 min until 2026-12-05, 30 s before that).
   */
  readonly snapshotIntervalMs: number;
  /**
   * A shard writes its waiting snapshots at an even pace — each after ½–1½ of `snapshotIntervalMs`,
   * about one interval on average — so twins that start waiting together (a fleet's first readings, a
   * restart) are not all written one interval later. `AIRTWIN_SNAPSHOT_PACING`: `on` (default) or `off`
   * (each written as soon as its interval is up, never later).
   */
  readonly snapshotPacing: boolean;
  /** Milliseconds a shard lease lasts without renewal, 500..600 000. `AIRTWIN_LEASE_TTL_MS`. Default 5000; 10 000 with replicas 3 or 5. */
  readonly leaseTtlMs: number;
  /** Milliseconds between lease renewals and node heartbeats, 50..600 000, at most half of leaseTtlMs. `AIRTWIN_HEARTBEAT_MS`. Default 1000. */
  readonly heartbeatMs: number;
  /** Milliseconds without input after which an idle twin is passivated (dropped from memory); 0 = never. `AIRTWIN_IDLE_PASSIVATE_MS`. Default 600 000 (10 min). */
  readonly idlePassivateMs: number;
  /**
   * Milliseconds without input after which a twin is kept in memory as its encoded snapshot only, decoded
   * again by its next reading (whether or not that snapshot is stored yet); 0 = never. 0..604 800 000.
   * `AIRTWIN_COMPACT_AFTER_MS`. Default 30 000 (at a Foobot's 5-minute cadence, ~90 % of twins compact).
   */
  readonly compactAfterMs: number;
  /** Megabytes of live twins (heap and array buffers) a node keeps in memory before passivating the least recently used, 16..1 048 576. `AIRTWIN_MEMORY_BUDGET_MB`. Default 1024. */
  readonly memoryBudgetMb: number;
  /** Maximum messages per pull from a shard consumer, 1..10 000; shards × this × message size is what a node can have in flight (keep it under nats-server's 64 MiB max_pending). `AIRTWIN_FETCH_BATCH`. Default 32. */
  readonly fetchBatch: number;
}

/** One reason the configuration is invalid. */
export interface ConfigProblem {
  variable: string;
  value: string;
  reason: string;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;
const NATS_SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);

/** Reads and validates the configuration from `env` (default process.env). Empty values count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AirtwinConfig {
  const problems: ConfigProblem[] = [];
  const raw = (variable: string): string | undefined => {
    const v = env[variable]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const fail = (variable: string, value: string, reason: string): undefined => {
    problems.push({ variable, value, reason });
    return undefined;
  };
  const int = (variable: string, fallback: number, min: number, max: number): number => {
    const v = raw(variable);
    if (v === undefined) return fallback;
    const n = /^\+?\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      fail(variable, v, `must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  };
  const optionalInt = (variable: string, min: number, max: number): number | undefined =>
    raw(variable) === undefined ? undefined : int(variable, 0, min, max);

  const natsUrl = raw("NATS_URL") ?? "nats://127.0.0.1:4222";
  const natsServers = natsUrl.split(",").map((s) => s.trim());
  for (const server of natsServers) {
    const reason = natsServerProblem(server);
    if (reason) fail("NATS_URL", maskUrl(natsUrl), `"${maskUrl(server)}" ${reason}`);
  }

  const databaseUrl = raw("DATABASE_URL");
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/\S+$/.test(databaseUrl)) {
    fail("DATABASE_URL", redact(databaseUrl), "must be a postgres:// or postgresql:// URL");
  }

  const adminToken = raw("AIRTWIN_ADMIN_TOKEN");
  if (adminToken !== undefined && /\s/.test(adminToken)) fail("AIRTWIN_ADMIN_TOKEN", "(hidden)", "must not contain whitespace");

  const httpPort = int("AIRTWIN_HTTP_PORT", 8080, 0, 65535);
  const metricsPort = optionalInt("AIRTWIN_METRICS_PORT", 0, 65535);
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === httpPort) {
    fail("AIRTWIN_METRICS_PORT", String(metricsPort), "must differ from AIRTWIN_HTTP_PORT");
  }

  const metricsHost = raw("AIRTWIN_METRICS_HOST") ?? "127.0.0.1";
  if (!/^[A-Za-z0-9.:_-]{1,253}$/.test(metricsHost)) fail("AIRTWIN_METRICS_HOST", metricsHost, "must be a host name or IP address (e.g. 0.0.0.0)");

  const shards = int("AIRTWIN_SHARDS", 64, 1, 4096);
  const streams = int("AIRTWIN_STREAMS", 1, 1, 64);
  if (streams > shards) fail("AIRTWIN_STREAMS", String(streams), `must not exceed AIRTWIN_SHARDS (${shards}): each stream holds at least one shard`);

  const nodeId = raw("AIRTWIN_NODE_ID") ?? defaultNodeId();
  if (!TOKEN.test(nodeId) || nodeId.length > 64) fail("AIRTWIN_NODE_ID", nodeId, "must be 1-64 characters of [A-Za-z0-9_-]");

  const prefix = raw("AIRTWIN_PREFIX") ?? "airtwin";
  if (!TOKEN.test(prefix) || prefix.length > 32) {
    fail("AIRTWIN_PREFIX", prefix, "must be 1-32 characters of [A-Za-z0-9_-] (a subject token usable in stream names)");
  }

  const replicas = int("AIRTWIN_REPLICAS", 1, 1, 5);
  if (replicas !== 1 && replicas !== 3 && replicas !== 5) fail("AIRTWIN_REPLICAS", String(replicas), "must be 1, 3 or 5");

  const dataDir = raw("AIRTWIN_DATA_DIR") ?? ".airtwin";

  const commitIntervalMs = int("AIRTWIN_COMMIT_INTERVAL_MS", 1000, 10, 60_000);
  const commitMaxIntervalMs = int("AIRTWIN_COMMIT_MAX_INTERVAL_MS", Math.max(5000, commitIntervalMs), 10, 60_000);
  if (commitMaxIntervalMs < commitIntervalMs) {
    fail("AIRTWIN_COMMIT_MAX_INTERVAL_MS", String(commitMaxIntervalMs), `must be at least AIRTWIN_COMMIT_INTERVAL_MS (${commitIntervalMs})`);
  }
  // 30 min: at a Foobot's one reading per 5 minutes a snapshot every sixth reading, not every one. Each
  // snapshot costs the servers ~0.25 ms of CPU (nats-server, archive, Postgres, node): at 15 min they were
  // a fifth of a million-device fleet's CPU (docs/BENCHMARKS.md, "Snapshots every 30 minutes"). The price:
  // a crash replays up to 1½ intervals of a shard's input (paced), and a restore the archived inputs
  // after each twin's snapshot
  const snapshotIntervalMs = int("AIRTWIN_SNAPSHOT_INTERVAL_MS", 1_800_000, 0, 3_600_000);
  const pacing = raw("AIRTWIN_SNAPSHOT_PACING") ?? "on";
  if (pacing !== "on" && pacing !== "off") fail("AIRTWIN_SNAPSHOT_PACING", pacing, "must be on or off");
  const snapshotPacing = pacing !== "off";
  // replicated: a stream or bucket leader election after a NATS server loss outlasts 5 s leases, and
  // every expiry moves shards for nothing (nats-loss test: 28–38 aborted starts and recovery in 33–42 s
  // with 5 s, 6 and 19 s with 10 s)
  const leaseTtlMs = int("AIRTWIN_LEASE_TTL_MS", replicas > 1 ? 10_000 : 5000, 500, 600_000);
  const heartbeatMs = int("AIRTWIN_HEARTBEAT_MS", 1000, 50, 600_000);
  if (heartbeatMs * 2 > leaseTtlMs) {
    fail("AIRTWIN_HEARTBEAT_MS", String(heartbeatMs), `must be at most half of AIRTWIN_LEASE_TTL_MS (${leaseTtlMs}), so one missed renewal does not lose the lease`);
  }
  const idlePassivateMs = int("AIRTWIN_IDLE_PASSIVATE_MS", 600_000, 0, 7 * 24 * 3_600_000);
  // a twin idle half a minute of its 5-minute cadence waits for the next reading: keep it encoded meanwhile
  const compactAfterMs = int("AIRTWIN_COMPACT_AFTER_MS", 30_000, 0, 7 * 24 * 3_600_000);
  const memoryBudgetMb = int("AIRTWIN_MEMORY_BUDGET_MB", 1024, 16, 1_048_576);
  const fetchBatch = int("AIRTWIN_FETCH_BATCH", 32, 1, 10_000);

  if (problems.length > 0) {
    const list = problems.map((p) => `${p.variable}=${p.value}: ${p.reason}`).join("; ");
    throw new RuntimeError("CONFIG_INVALID", `invalid configuration: ${list}`, {
      details: { problems, variables: problems.map((p) => p.variable) },
    });
  }
  return Object.freeze({
    natsUrl,
    natsServers: Object.freeze(natsServers),
    databaseUrl,
    adminToken,
    httpPort,
    shards,
    streams,
    nodeId,
    metricsPort,
    metricsHost,
    prefix,
    replicas: replicas as 1 | 3 | 5,
    dataDir,
    commitIntervalMs,
    commitMaxIntervalMs,
    snapshotIntervalMs,
    snapshotPacing,
    leaseTtlMs,
    heartbeatMs,
    idlePassivateMs,
    compactAfterMs,
    memoryBudgetMb,
    fetchBatch,
  });
}

/** `<hostname>-<pid>`, reduced to the characters a node id may hold. */
export function defaultNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "") || "node";
  const pid = String(process.pid);
  return `${host.slice(0, 63 - pid.length)}-${pid}`;
}

function natsServerProblem(server: string): string | undefined {
  if (server === "") return "is empty";
  let url: URL;
  try {
    url = new URL(server.includes("://") ? server : `nats://${server}`);
  } catch {
    return "is not a URL";
  }
  if (!NATS_SCHEMES.has(url.protocol)) return `has scheme ${url.protocol} (nats, tls, ws or wss expected)`;
  if (url.hostname === "") return "has no host";
  return undefined;
}

/** Hides the password of a URL in error messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
