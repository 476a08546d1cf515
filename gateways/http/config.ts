// Configuration of `airtwin gateway`: the runtime's (docs/design.md §6: NATS_URL, AIRTWIN_ADMIN_TOKEN,
// AIRTWIN_HTTP_PORT, AIRTWIN_SHARDS, AIRTWIN_PREFIX, …) plus the gateway's own variables below.
// Invalid values fail fast with AIRTWIN_ERR_CONFIG_INVALID naming every offending variable.
import type { AirtwinConfig } from "../../runtime/mod.ts";
import { envReader } from "../config-env.ts";
import { DEFAULT_HTTP_SERVER_LIMITS, type HttpServerLimits } from "./server.ts";

/** The gateway's default gap between two input messages of a stream (ms; see GatewayConfig.gatherMs). */
export const DEFAULT_GATHER_MS = 10;
/** The readings that make a stream's batch leave without waiting out the gap (see GatewayConfig.gatherReadings). */
export const DEFAULT_GATHER_READINGS = 200;

/** Validated configuration of a gateway process. */
export interface GatewayConfig {
  readonly runtime: AirtwinConfig;
  /** The admin bearer token. `AIRTWIN_ADMIN_TOKEN`; required (`airtwin dev` generates one). */
  readonly adminToken: string;
  /** Interface the HTTP server binds. `AIRTWIN_HTTP_HOST`. Default "0.0.0.0". */
  readonly host: string;
  /** Ingest requests per device per window. `AIRTWIN_INGEST_RATE_MAX`. Default 120. */
  readonly rateLimitMax: number;
  /** Rate-limit window (ms). `AIRTWIN_INGEST_RATE_WINDOW_MS`. Default 60 000. */
  readonly rateLimitWindowMs: number;
  /** How long JetStream may take to confirm a batch of readings before the request gets 503 (ms). `AIRTWIN_INGEST_ACK_TIMEOUT_MS`. Default 3000. */
  readonly ackTimeoutMs: number;
  /**
   * Longest wait of readings for companions in the same per-shard message (ms): a batch waits only while
   * its shard's previous message awaits its PubAck, else leaves at the end of the turn. `AIRTWIN_INGEST_LINGER_MS`. Default 2.
   */
  readonly lingerMs: number;
  /**
   * Shortest time between two input messages of one stream (ms): the requests that arrive meanwhile share
   * the next one. Each stored message costs the whole system far more than the requests in it (store,
   * deliveries, acks, commits, every process woken), so at the fleet's rate this bound, not the PubAck
   * round trip, sets the messages a second; a request after a quiet spell leaves at once (docs/gateway.md). `AIRTWIN_INGEST_GATHER_MS`. Default 10; 0: none.
   */
  readonly gatherMs: number;
  /**
   * Readings that make a stream's batch leave at once, gap or not: its message's cost is spread over them
   * already, and a client sending many readings a request with few in flight is not paced by the gap
   * (docs/gateway.md). `AIRTWIN_INGEST_GATHER_READINGS`. Default 200.
   */
  readonly gatherReadings: number;
  /**
   * Limits against slow and greedy clients (docs/gateway.md, "Slow and greedy clients"):
   * `AIRTWIN_HTTP_HEADERS_TIMEOUT_MS` (10 000), `AIRTWIN_HTTP_REQUEST_TIMEOUT_MS` (30 000, at least the
   * headers timeout), `AIRTWIN_HTTP_IDLE_TIMEOUT_MS` (72 000), `AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT`
   * (256; 0 = unbounded).
   */
  readonly httpLimits: Readonly<HttpServerLimits>;
  /** pino log level. `AIRTWIN_LOG_LEVEL`. Default "info". */
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const { problems, raw, int, done } = envReader(env);
  const adminToken = raw("AIRTWIN_ADMIN_TOKEN");
  if (adminToken === undefined) {
    problems.push({ variable: "AIRTWIN_ADMIN_TOKEN", value: "", reason: "is required (a long random string; `airtwin dev` generates one)" });
  } else if (adminToken.length < 16) {
    problems.push({ variable: "AIRTWIN_ADMIN_TOKEN", value: "(hidden)", reason: "must be at least 16 characters" });
  }
  const host = raw("AIRTWIN_HTTP_HOST") ?? "0.0.0.0";
  const rateLimitMax = int("AIRTWIN_INGEST_RATE_MAX", 120, 1, 1_000_000_000);
  const rateLimitWindowMs = int("AIRTWIN_INGEST_RATE_WINDOW_MS", 60_000, 100, 86_400_000);
  const ackTimeoutMs = int("AIRTWIN_INGEST_ACK_TIMEOUT_MS", 3000, 100, 60_000);
  const lingerMs = int("AIRTWIN_INGEST_LINGER_MS", 2, 0, 1000);
  const gatherMs = int("AIRTWIN_INGEST_GATHER_MS", DEFAULT_GATHER_MS, 0, 1000);
  const gatherReadings = int("AIRTWIN_INGEST_GATHER_READINGS", DEFAULT_GATHER_READINGS, 1, 1_000_000);
  const d = DEFAULT_HTTP_SERVER_LIMITS;
  const httpLimits: HttpServerLimits = {
    headersTimeoutMs: int("AIRTWIN_HTTP_HEADERS_TIMEOUT_MS", d.headersTimeoutMs, 100, 600_000),
    requestTimeoutMs: int("AIRTWIN_HTTP_REQUEST_TIMEOUT_MS", d.requestTimeoutMs, 100, 3_600_000),
    idleTimeoutMs: int("AIRTWIN_HTTP_IDLE_TIMEOUT_MS", d.idleTimeoutMs, 100, 3_600_000),
    maxConnectionsPerClient: int("AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT", d.maxConnectionsPerClient, 0, 1_000_000),
  };
  if (httpLimits.requestTimeoutMs < httpLimits.headersTimeoutMs) {
    problems.push({
      variable: "AIRTWIN_HTTP_REQUEST_TIMEOUT_MS",
      value: String(httpLimits.requestTimeoutMs),
      reason: `must be at least AIRTWIN_HTTP_HEADERS_TIMEOUT_MS (${httpLimits.headersTimeoutMs}): the whole request includes its headers`,
    });
  }
  const level = raw("AIRTWIN_LOG_LEVEL") ?? "info";
  if (!(LEVELS as readonly string[]).includes(level)) problems.push({ variable: "AIRTWIN_LOG_LEVEL", value: level, reason: `must be one of ${LEVELS.join(", ")}` });

  const runtime = done();
  return Object.freeze({
    runtime,
    adminToken: adminToken as string,
    host,
    rateLimitMax,
    rateLimitWindowMs,
    ackTimeoutMs,
    lingerMs,
    gatherMs,
    gatherReadings,
    httpLimits: Object.freeze(httpLimits),
    logLevel: level as GatewayConfig["logLevel"],
  });
}
