// The tunables of shard processing and what a shard runner is given by its node.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { EntityBehavior } from "../entity.ts";
import type { RuntimeMetrics } from "../metrics.ts";
import type { PipelinedPublisher } from "../publisher.ts";
import type { DeadLetterSink } from "../dead-letter.ts";
import type { LogFn } from "../log.ts";
import type { Names } from "../subjects.ts";
import type { StreamReader } from "../stream-reader.ts";
import type { LegacyConsumers } from "./consumer.ts";

/** Tunables of shard processing. */
export interface ShardRunnerOptions {
  /** Commit at least this often while there is something to commit and the shard is caught up (ms). Default 1000. */
  commitIntervalMs: number;
  /**
   * While the shard is behind its input (a backlog after a restart or a takeover, or more input than
   * the node keeps up with), commits are spaced up to this far apart (ms): the snapshot of a twin that
   * changes again a moment later is not worth writing, and a backlog is worked off faster without it.
   * Caught up, commits come every `commitIntervalMs` again. Bounds what a crash replays. Default 5000.
   */
  commitMaxIntervalMs: number;
  /** Commit early once this many entities are due for a snapshot. Default 5000. */
  commitMaxDirty: number;
  /**
   * A twin changed by input is snapshotted at most this often (ms): a commit leaves a twin whose first
   * unsaved input is younger than this out of its writes, and the shard checkpoint (where a new owner's
   * replay starts) stays before that input, so the input log makes up what the snapshot lacks. Input
   * stays in the log (limits retention), so nothing waits for an ack. Bounds what a crash replays: about
   * this long of the shard's input. 0: every dirty twin at every commit. Default 0 (off); 30000 is
   * what the benchmarks measured (docs/BENCHMARKS.md, "Snapshots deferred per twin").
   */
  snapshotIntervalMs: number;
  /**
   * The waiting snapshots of a shard are written at an even pace (snapshot-pace.ts): each waits about
   * `snapshotIntervalMs` on average, at least half of it and at most one and a half, so twins that start
   * waiting together are not all written together. False: each is written as soon as its
   * `snapshotIntervalMs` is up. Default false; the node's configuration turns it on (AIRTWIN_SNAPSHOT_PACING).
   */
  snapshotPacing: boolean;
  /** …or once this many inputs changed it since its last snapshot, whichever comes first. Default 1000. */
  snapshotMaxInputs: number;
  /**
   * Messages requested per pull per shard (re-pulled at 75%). A node has up to shards × this × message
   * size in flight, which must stay under nats-server's per-client max_pending (64 MiB): past it the
   * server drops the connection and what was in transit (the runner then replays from its checkpoint).
   * Counted in messages because nats.js's byte-bounded consume stalls whenever a pull's remaining bytes
   * cannot hold the next message. Default 32 (64 shards × 32 × 25 KB gateway batches ≈ 51 MB).
   */
  fetchBatch: number;
  /**
   * How long each pull request lives (ms), and the idle heartbeat the server sends while it waits. A
   * consumer whose server (an R3 consumer's leader) died answers nothing: two missed heartbeats make the
   * runner pull again from the consumer's new leader. nats.js's defaults (30 s pulls, 15 s heartbeats)
   * left a shard idle ~30–60 s after a NATS server loss. Default 5000 (heartbeat 1000).
   */
  pullExpiresMs: number;
  /**
   * How long a shard keeps asking JetStream again (ms) while a server is being replaced: a start's
   * requests that time out or find no JetStream leader (backoff.ts, askAgain: its snapshot bucket, the scan's
   * consumer, the shard's consumer), and a commit's refused outputs (`confirmOutputs`). Default 30000.
   */
  askAgainMs: number;
  /** Consumer max_ack_pending; must exceed the messages one commit interval brings. Default 100000. */
  maxAckPending: number;
  /** Consumer ack_wait (ms); far above a commit, only matters if a node stalls. Default 60000. */
  ackWaitMs: number;
  /** Drop decoded state of entities idle this long (ms); they are fetched from their snapshot when needed again. Default 600000. */
  idlePassivateMs: number;
  /**
   * Keep an entity idle this long (ms) as its encoded state only, decoded again on its next use
   * (compaction.ts): at a twin's 5-minute cadence most of a node's twins are idle, and compact they cost
   * a fraction of the memory and of the GC's marking. 0: never. Default 30000.
   */
  compactAfterMs: number;
  /** At most this many wake-ups fired per timer round (missed timers after downtime drain gradually). Default 2000. */
  wakeBatch: number;
  /** Timer round interval (ms). Default 250. */
  wakeIntervalMs: number;
  /** Snapshot bucket replicas. Default 1. */
  replicas: number;
  /**
   * After a planned stop, keep answering live queries from the committed state until the next owner
   * announces itself (handoff.ts), at most this long (ms). 0: stop answering at once. Default 5000.
   */
  lingerMs: number;
  /** How long a starting owner waits for older owners to confirm they stopped answering queries (ms). Default 500. */
  handoffTimeoutMs: number;
}

export const defaultShardRunnerOptions: ShardRunnerOptions = {
  commitIntervalMs: 1000,
  commitMaxIntervalMs: 5000,
  commitMaxDirty: 5000,
  snapshotIntervalMs: 0,
  snapshotPacing: false,
  snapshotMaxInputs: 1000,
  fetchBatch: 32,
  pullExpiresMs: 5000,
  askAgainMs: 30_000,
  maxAckPending: 100_000,
  ackWaitMs: 60_000,
  idlePassivateMs: 600_000,
  compactAfterMs: 30_000,
  wakeBatch: 2000,
  wakeIntervalMs: 250,
  replicas: 1,
  lingerMs: 5000,
  handoffTimeoutMs: 500,
};

export interface ShardRunnerDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
  publisher: PipelinedPublisher;
  names: Names;
  /** Input stream that holds this shard. */
  inputStream: string;
  /** The node's reader of that stream: the shard's input (stream-reader.ts). */
  reader: Pick<StreamReader, "attach">;
  /** The consumers of older versions left on that stream, as the node listed them once (consumer.ts). */
  legacyConsumers: Pick<LegacyConsumers, "found">;
  behaviors: ReadonlyMap<string, EntityBehavior>;
  metrics: RuntimeMetrics;
  options: ShardRunnerOptions;
  log: LogFn;
  /** Where inputs that cannot be applied go (dead-letter.ts). */
  deadLetters: DeadLetterSink;
  /** Called when the runner stops itself (fenced, or storage failed); the node gives the shard up. */
  onFailure: (shard: number, err: Error) => void;
}
