// Assembles what a node needs to run shards — connections to JetStream and KV, the pipelined publisher,
// metrics, streams, and the NodeHost — without deciding which shards it runs (ownership does that).
import { DeadLetters } from "./dead-letter.ts";
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { ensureStreams, type StreamsOptions } from "./cluster-setup.ts";
import type { EntityBehavior } from "./entity.ts";
import { stderrLog, type LogFn } from "./log.ts";
import { RuntimeMetrics } from "./metrics.ts";
import { NodeHost } from "./node-host.ts";
import { PipelinedPublisher } from "./publisher.ts";
import { defaultShardRunnerOptions, type ShardRunnerOptions } from "./shard/mod.ts";
import { names as namesOf, type Names } from "./subjects.ts";

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

/**
 * Timeout of the node's JetStream API requests (a shard's start: its snapshot bucket, the scan's and the
 * shard's consumers). On a replicated stream each is a raft group of its own, and creating one took
 * 4–11 s on a busy 3-server cluster (test/integration/runtime/nats-loss.test.ts): with nats.js's 5 s a
 * shard's start failed, released its lease and was retried for 20 s and more. Not much longer either:
 * a request sent while the JetStream meta leader is being replaced is never answered, and waits it out.
 * The shard's consumer is asked for again after a timeout (shard/consumer.ts, addConsumer).
 */
export const JS_API_TIMEOUT_MS = 10_000;

export async function createNodeRuntime(nc: NatsConnection, o: NodeRuntimeOptions): Promise<NodeRuntime> {
  const names = namesOf(o.prefix);
  const jsm = await jetstreamManager(nc, { timeout: JS_API_TIMEOUT_MS });
  const js = jetstream(nc, { timeout: JS_API_TIMEOUT_MS });
  const kvm = new Kvm(js);
  await ensureStreams(jsm, names, { shards: o.shards, streams: o.streams, replicas: o.replicas, ...o.streamsOptions });
  const metrics = new RuntimeMetrics({ defaultMetrics: o.defaultMetrics ?? true });
  const publisher = new PipelinedPublisher(nc, { maxInFlight: 8192 });
  const log = o.log ?? stderrLog;
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
      log,
      deadLetters: new DeadLetters(nc, names, metrics, log),
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
