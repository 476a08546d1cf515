// A worker node: the node runtime (shard runners) driven by ownership (membership, coordinator, leases),
// with Prometheus metrics over HTTP. `close()` hands every shard off before it returns (SIGTERM path).
import { createServer, type Server } from "node:http";
import type { NatsConnection } from "@nats-io/nats-core";
import type { EntityBehavior } from "./entity.ts";
import { stderrLog, type LogFn } from "./log.ts";
import { createNodeRuntime, type NodeRuntime } from "./node-runtime.ts";
import type { OwnershipOptions } from "./ownership/options.ts";
import { startOwnership, type Ownership } from "./ownership/ownership.ts";
import type { ShardRunnerOptions } from "./shard/mod.ts";

export interface StartNodeOptions {
  nc: NatsConnection;
  /**
   * The connection ownership uses (heartbeats, leases, the cluster watch); default `nc`. One of its own
   * keeps lease renewals from waiting behind the shards' traffic: nats-server handles what one connection
   * sends in order, and a request it is slow to answer (a shard's start reading a bucket of millions of
   * snapshots) held the renewals sent after it until every lease ran out (docs/RELIABILITY.md, "A node
   * that takes too much at once").
   */
  ownershipNc?: NatsConnection;
  nodeId: string;
  prefix: string;
  shards: number;
  streams: number;
  replicas: number;
  behaviors: readonly EntityBehavior[];
  runner?: Partial<ShardRunnerOptions>;
  ownership?: OwnershipOptions;
  memoryBudgetBytes?: number;
  /** Serve `/metrics` on this port (0 = any free port); undefined = no listener. */
  metricsPort?: number;
  /** Interface of the metrics listener. Default "127.0.0.1". */
  metricsHost?: string;
  defaultMetrics?: boolean;
  log?: LogFn;
}

export interface RunningNode extends AsyncDisposable {
  readonly nodeId: string;
  readonly runtime: NodeRuntime;
  readonly ownership: Ownership;
  /** `http://127.0.0.1:<port>/metrics` when a metrics port was given. */
  readonly metricsUrl: string | undefined;
  /** Graceful: hands every shard off (stop, commit, release), then stops. */
  close(): Promise<void>;
}

export async function startNode(o: StartNodeOptions): Promise<RunningNode> {
  const log = o.log ?? stderrLog;
  const runtime = await createNodeRuntime(o.nc, {
    prefix: o.prefix,
    shards: o.shards,
    streams: o.streams,
    replicas: o.replicas,
    behaviors: o.behaviors,
    log,
    ...(o.runner === undefined ? {} : { runner: o.runner }),
    ...(o.memoryBudgetBytes === undefined ? {} : { memoryBudgetBytes: o.memoryBudgetBytes }),
    ...(o.defaultMetrics === undefined ? {} : { defaultMetrics: o.defaultMetrics }),
  });
  let ownership: Ownership;
  try {
    ownership = await startOwnership({
      nc: o.ownershipNc ?? o.nc,
      names: runtime.names,
      nodeId: o.nodeId,
      shards: o.shards,
      streams: o.streams,
      replicas: o.replicas,
      host: runtime.host,
      options: { log, ...o.ownership },
      lagProvider: () => runtime.host.lag(),
    });
  } catch (err) {
    runtime.close();
    throw err;
  }
  const { metrics } = runtime;

  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (o.metricsPort !== undefined) {
    server = createServer((req, res) => {
      if (req.url === "/metrics") {
        metrics.registry.metrics().then(
          (body) => res.writeHead(200, { "Content-Type": metrics.registry.contentType }).end(body),
          () => res.writeHead(500).end(),
        );
      } else if (req.url === "/healthz") {
        res.writeHead(200).end("ok");
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server!.listen(o.metricsPort, o.metricsHost ?? "127.0.0.1", resolve));
    const addr = server.address();
    metricsUrl = typeof addr === "object" && addr !== null ? `http://127.0.0.1:${addr.port}/metrics` : undefined;
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await ownership.close();
      await runtime.host.stopAll(); // anything ownership did not hand off
      runtime.close();
      await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    })());
  return { nodeId: o.nodeId, runtime, ownership, metricsUrl, close, [Symbol.asyncDispose]: close };
}
