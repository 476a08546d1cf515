// Assembles what a node needs to run shards — connections to JetStream and KV, the pipelined publisher,
// metrics, streams, and the NodeHost — without deciding which shards it runs (ownership does that).
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { ensureStreams, type StreamsOptions } from "./cluster-setup.ts";
import type { EntityBehavior } from "./entity.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { NodeHost } from "./node-host.ts";
import { PipelinedPublisher } from "./publisher.ts";
import { defaultShardRunnerOptions, type ShardRunnerOptions } from "./shard-runner.ts";
import { names as namesOf, type Names } from "./subjects.ts";

export type LogFn = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface NodeRuntimeOptions {
  prefix: string;
  shards: number;
  streams: number;
  replicas: number;
  behaviors: readonly EntityBehavior[];
  runner?: Partial<ShardRunnerOptions>;
  /** Heap above which least recently used entities are passivated (bytes). Default 1 GiB. */
  memoryBudgetBytes?: number;
  /** Collect Node's default process metrics (off when several nodes share a test process). Default true. */
  defaultMetrics?: boolean;
  log?: LogFn;
  streamsOptions?: Partial<StreamsOptions>;
}

export interface NodeRuntime {
  readonly names: Names;
  readonly host: NodeHost;
  readonly metrics: RuntimeMetrics;
  readonly publisher: PipelinedPublisher;
  close(): void;
}

export const stderrLog: LogFn = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};

export async function createNodeRuntime(nc: NatsConnection, o: NodeRuntimeOptions): Promise<NodeRuntime> {
  const names = namesOf(o.prefix);
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(nc);
  await ensureStreams(jsm, names, { shards: o.shards, streams: o.streams, replicas: o.replicas, ...o.streamsOptions });
  const metrics = new RuntimeMetrics({ defaultMetrics: o.defaultMetrics ?? true });
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 8192 });
  const options = { ...defaultShardRunnerOptions, replicas: o.replicas, ...o.runner };
  const host = new NodeHost(
    {
      nc,
      js,
      jsm,
      kvm,
      publisher,
      names,
      behaviors: new Map(o.behaviors.map((b) => [b.type, b])),
      metrics,
      options,
      log: o.log ?? stderrLog,
    },
    { shards: o.shards, streams: o.streams, memoryBudgetBytes: o.memoryBudgetBytes ?? 1024 ** 3 },
  );
  return {
    names,
    host,
    metrics,
    publisher,
    close() {
      host.close();
      publisher.close();
    },
  };
}
