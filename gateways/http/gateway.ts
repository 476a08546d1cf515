// A running gateway: NATS connection, registry view, runtime client, the HTTP app listening, and the
// NATS services. `close()` is the graceful shutdown: stop taking requests (HTTP and NATS), finish the
// ones in flight and their publishes, then flush and close the connection.
import type { NatsConnection } from "@nats-io/nats-core";
import type { FastifyInstance } from "fastify";
import { TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { closeNats, connectNats, ensureClusterForClients, names as namesOf, OpsClient, RuntimeClient, type Names } from "../../runtime/mod.ts";
import { StreamAlertSource } from "../api/alerts.ts";
import { NatsLiveFeed } from "../api/live.ts";
import { NatsHealth } from "../api/nats-health.ts";
import { TwinService } from "../api/nats-service.ts";
import { HistoryApi, NatsArchiveClient, type ArchiveClient } from "../api/history-api.ts";
import { TwinApi, type TwinApiDeps, type TwinBackend } from "../api/twin-api.ts";
import { GatewayMetrics } from "../metrics.ts";
import { Registry, type RegistryLog } from "../registry/registry.ts";
import { buildApp, type AppDeps, type HttpOptions } from "./app.ts";
import { DEFAULT_GATHER_MS, DEFAULT_GATHER_READINGS, type GatewayConfig } from "./config.ts";

/** Options of {@link startGateway}; `config` usually comes from loadGatewayConfig(). */
export interface StartGatewayOptions {
  config: GatewayConfig;
  /** Overrides of the HTTP tunables (the config's rate limit applies unless given here). */
  http?: HttpOptions;
  /** Collect Node's default process metrics. Default true. */
  defaultMetrics?: boolean;
  log?: RegistryLog;
}

export interface RunningGateway extends AsyncDisposable {
  /** `http://<host>:<port>` the API listens on. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly nc: NatsConnection;
  /** Graceful shutdown (idempotent). */
  close(): Promise<void>;
}

/** Settings of {@link assembleGateway}. */
export interface AssembleOptions {
  prefix: string;
  shards: number;
  streams: number;
  replicas: number;
  /** PubAck deadline of the runtime client (ms). Default 3000. */
  ackTimeoutMs?: number;
  /** Longest micro-batch linger of the runtime client (ms; only while the shard awaits a PubAck). Default 2. */
  lingerMs?: number;
  /** Shortest time between two input messages of a stream (ms). Default DEFAULT_GATHER_MS (10). */
  gatherMs?: number;
  /** Readings that make a stream's batch leave without waiting out the gap. Default DEFAULT_GATHER_READINGS (200). */
  gatherReadings?: number;
  defaultMetrics?: boolean;
  log?: RegistryLog;
  /** How history reaches the archive. Default: NATS requests to `<prefix>.archive.query.*`. */
  archive?: (nc: NatsConnection) => ArchiveClient;
  /** Wraps the runtime client (tests inject failures here). */
  backend?: (client: RuntimeClient) => TwinBackend;
}

/** The gateway's parts on one NATS connection, before any listener; `close()` stops them in order. */
export interface GatewayParts {
  readonly deps: Omit<AppDeps, "adminToken" | "options">;
  /** What the TwinApi was built from (tests build variants). */
  readonly twinDeps: TwinApiDeps;
  readonly registry: Registry;
  readonly client: RuntimeClient;
  readonly names: Names;
  /** The NATS services; started by {@link GatewayParts.serve}. */
  serve(): TwinService;
  close(): Promise<void>;
}

/**
 * Checks the cluster's shard count, loads the registry view and builds the gateway's parts. Shared by
 * {@link startGateway} and the tests (which call buildApp with `parts.deps` and `inject`).
 */
export async function assembleGateway(nc: NatsConnection, o: AssembleOptions): Promise<GatewayParts> {
  const log: RegistryLog = o.log ?? (() => undefined);
  const names = namesOf(o.prefix);
  // the shard count decides where every reading goes: refuse to run with a count the cluster was not created with
  await ensureClusterForClients(nc, names, { shards: o.shards, streams: o.streams, replicas: o.replicas });
  // checked against the cluster just above: the inputs of a stream share messages (several requests' readings in one)
  const client = new RuntimeClient(nc, { prefix: o.prefix, shards: o.shards, streams: o.streams, ackTimeoutMs: o.ackTimeoutMs ?? 3000, lingerMs: o.lingerMs ?? 2, gatherMs: o.gatherMs ?? DEFAULT_GATHER_MS, gatherWeight: o.gatherReadings ?? DEFAULT_GATHER_READINGS });
  const registry = await Registry.open(nc, { prefix: o.prefix, replicas: o.replicas, log, eraseTwin: (id) => client.erase(TWIN_TYPE, id) }).catch(async (err: unknown) => {
    await client.close();
    throw err;
  });
  const metrics = new GatewayMetrics({ defaultMetrics: o.defaultMetrics ?? true });
  const health = new NatsHealth(nc, metrics, { onChange: (up) => log(up ? "info" : "warn", up ? "NATS reconnected" : "NATS disconnected") });
  const live = new NatsLiveFeed(nc, names);
  const backend = o.backend?.(client) ?? client;
  const twinDeps: TwinApiDeps = { backend, alerts: new StreamAlertSource(nc, names), live, metrics, connected: () => health.connected() };
  const twins = new TwinApi(twinDeps);
  const history = new HistoryApi(twins, o.archive?.(nc) ?? new NatsArchiveClient(nc, o.prefix));
  let service: TwinService | undefined;
  return {
    deps: { registry, twins, history, live, ops: new OpsClient(nc, names), health, metrics },
    twinDeps,
    registry,
    client,
    names,
    serve: () => (service ??= new TwinService({ nc, names, twins, registry, metrics, log })),
    async close() {
      await service?.drain();
      live.close();
      await client.close();
      await registry.close();
    },
  };
}

export async function startGateway(o: StartGatewayOptions): Promise<RunningGateway> {
  const { config } = o;
  const rt = config.runtime;
  const log: RegistryLog = o.log ?? (() => undefined);
  const nc = await connectNats({ servers: rt.natsServers, name: "airtwin gateway" });
  let parts: GatewayParts | undefined;
  let app: FastifyInstance | undefined;
  let service: TwinService | undefined;
  // Graceful: the NATS services stop taking requests and finish theirs; HTTP stops accepting and
  // finishes its in-flight requests (each awaits its PubAck); the client flushes anything batched; the
  // registry watch stops; the connection drains.
  const shutdown = async () => {
    await Promise.allSettled([service?.drain(), app?.close()]);
    await parts?.close().catch(() => undefined);
    await closeNats(nc);
  };
  try {
    parts = await assembleGateway(nc, { ...rt, ackTimeoutMs: config.ackTimeoutMs, lingerMs: config.lingerMs, gatherMs: config.gatherMs, gatherReadings: config.gatherReadings, log, ...(o.defaultMetrics === undefined ? {} : { defaultMetrics: o.defaultMetrics }) });
    app = await buildApp({
      ...parts.deps,
      adminToken: config.adminToken,
      options: {
        rateLimitMax: config.rateLimitMax,
        rateLimitWindowMs: config.rateLimitWindowMs,
        limits: config.httpLimits,
        logger: { level: config.logLevel },
        ...o.http,
      },
    });
    service = parts.serve();
    await app.listen({ port: rt.httpPort, host: config.host });
  } catch (err) {
    await shutdown();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : rt.httpPort;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= shutdown());
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, app, nc, close, [Symbol.asyncDispose]: close };
}
