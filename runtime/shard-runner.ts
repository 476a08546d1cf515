// Runs one owned shard: fence, bulk-load, consume the shard's input in stream order, apply each entity's
// inputs turn by turn, publish outputs, answer live queries, fire wake-ups, and commit periodically:
// outputs confirmed → dirty snapshots written (fenced, pipelined) → checkpoint → consumer acked.
// A crash anywhere in between replays from the checkpoint; inputs already in a snapshot are skipped
// per entity (`seq <= appliedSeq`), so every input takes effect exactly once.
import { AckPolicy, DeliverPolicy, type Consumer, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import type { KV, Kvm } from "@nats-io/kv";
import { nanos, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { decode, encode, MSGPACK_CONTENT_TYPE, msgpackHeaders } from "./codec.ts";
import { commandFingerprint, sameFingerprint } from "./command-fingerprint.ts";
import { CommandKeys, idempotencyKeyProblem, type AppliedCommand } from "./command-keys.ts";
import { askAgain, worthAskingAgain } from "./js-retry.ts";
import { decodeQuery, encodeReply, errorReply, type EntityReply } from "./protocol.ts";
import { ERASE_KIND, type Applied, type EntityBehavior, type EntityOutput } from "./entity.ts";
import { RuntimeErrors } from "./errors.ts";
import { decodeBatch, type InputItem } from "./envelope.ts";
import { announceServing, listenForNewerOwner, newInstanceId } from "./handoff.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import type { PipelinedPublisher, PubAck } from "./publisher.ts";
import type { ShardLease } from "./shard-host.ts";
import {
  CHECKPOINT_KEY,
  FencedError,
  claimShard,
  encodeCheckpoint,
  encodeRecord,
  entityKey,
  openSnapshotBucket,
  readSnapshot,
  scanShard,
  type FencedWriter,
} from "./snapshot-store.ts";
import type { Names } from "./subjects.ts";
import { sliceUsed, yieldTurn } from "./turns.ts";
import { WakeQueue } from "./wake-queue.ts";

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
  /** Commit early once this many entities are dirty. Default 5000. */
  commitMaxDirty: number;
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
   * requests that time out or find no JetStream leader (js-retry.ts: its snapshot bucket, the scan's
   * consumer, the shard's consumer), and a commit's refused outputs (`confirmOutputs`). Default 30000.
   */
  askAgainMs: number;
  /** Consumer max_ack_pending; must exceed the messages one commit interval brings. Default 100000. */
  maxAckPending: number;
  /** Consumer ack_wait (ms); far above a commit, only matters if a node stalls. Default 60000. */
  ackWaitMs: number;
  /** Drop decoded state of entities idle this long (ms); they are fetched from their snapshot when needed again. Default 600000. */
  idlePassivateMs: number;
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
  fetchBatch: 32,
  pullExpiresMs: 5000,
  askAgainMs: 30_000,
  maxAckPending: 100_000,
  ackWaitMs: 60_000,
  idlePassivateMs: 600_000,
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
  behaviors: ReadonlyMap<string, EntityBehavior>;
  metrics: RuntimeMetrics;
  options: ShardRunnerOptions;
  log: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  /** Called when the runner stops itself (fenced, or storage failed); the node gives the shard up. */
  onFailure: (shard: number, err: Error) => void;
}

interface Slot {
  key: string;
  entityId: string;
  behavior: EntityBehavior;
  state: unknown;
  /**
   * Snapshot bytes of an entity that is not resident (read by the bulk load at acquisition, or fetched
   * on demand); dropped once decoded — a resident entity's state is its only copy in memory.
   */
  bytes: Uint8Array | undefined;
  /** True when a snapshot may exist in the bucket (a passivated entity is fetched from there). */
  persisted: boolean;
  appliedSeq: number;
  /** Sequence of the message being applied, so several items of one message for one entity all apply. */
  applyingSeq: number;
  /** Wall-clock wake-up the entity wants (persisted with its snapshot). */
  wakeAt: number | undefined;
  /** Time of the entity's live entry in the wake queue (≤ wakeAt; see `schedule`). */
  queuedAt: number | undefined;
  dirty: boolean;
  lastUsed: number;
}

interface PendingOutput {
  subject: string;
  data: Uint8Array;
  msgId: string;
  ack: Promise<PubAck>;
}

/**
 * The commit timer's rule: a shard that still has input waiting on the server (`pending` after the
 * last applied message) defers its commit until `commitMaxIntervalMs` since the last one; caught up, it
 * commits every tick. (Commits forced by dirty entities or unacknowledged messages do not ask.)
 */
export function commitDeferred(pending: number, sinceLastCommitMs: number, options: Pick<ShardRunnerOptions, "commitMaxIntervalMs">): boolean {
  return pending > 0 && sinceLastCommitMs < options.commitMaxIntervalMs;
}

/** A shard start's phases, in order (see `ShardRunner.start`). */
const START_PHASES = ["open", "fence", "scan", "consumer"] as const;

export class ShardRunner {
  readonly shard: number;
  readonly epoch: number;
  private readonly deps: ShardRunnerDeps;
  /** Every entity of the shard this runner knows, by type, then id (the per-item lookup builds no key string). */
  private readonly slots = new Map<string, Map<string, Slot>>();
  private slotCount = 0;
  /** Entities with decoded state, least recently used first (re-inserted on use). */
  private readonly resident = new Map<string, Slot>();
  private readonly dirty = new Set<Slot>();
  /** Entities whose snapshot write is in flight: not passivated until it is stored (a fetch would miss it). */
  private readonly writing = new Set<Slot>();
  private readonly wakes = new WakeQueue<Slot>();
  /**
   * The keyed commands each entity applied last (command-keys.ts), only for entities that got one: a
   * side table rather than a slot field, so the other entities — nearly all — pay nothing for it.
   * Kept while an entity is passivated, like its `appliedSeq`; persisted in its snapshot record.
   */
  private readonly commandKeys = new Map<Slot, CommandKeys>();
  private pendingOutputs: PendingOutput[] = [];
  private writer: FencedWriter | undefined;
  private kv: KV | undefined;
  private messages: ConsumerMessages | undefined;
  private rpc: Subscription | undefined;
  /** Announcements of newer runners of this shard (handoff.ts). */
  private handoff: Subscription | undefined;
  private readonly instance = newInstanceId();
  private lingerTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Set while a commit captures its cut (encoding, with yields): applying waits until it resolves. */
  private capturing: Promise<void> | undefined;
  private committing: Promise<void> | undefined;
  private lastApplied: JsMsg | undefined;
  private committedSeq = 0;
  /** Highest consumer delivery sequence seen (this epoch's consumer starts at 1). */
  private lastDelivered = 0;
  private appliedSinceCommit = 0;
  private readonly lruGrainMs: number;
  /** When the last commit began (performance.now()). */
  private lastCommitAt = performance.now();
  /** No new input is taken (planned stop or abort). */
  private stopped = false;
  /** Lease lost or storage failed: nothing more is applied or written. */
  private aborted = false;
  /** Entities dropped (stopped or aborted): nothing may be answered from them any more. */
  private released = false;
  /** Stopped and fully committed, still answering queries until the next owner serves. */
  private lingering = false;
  private consumedSinceRate = 0;
  private lastLag = 0;

  constructor(deps: ShardRunnerDeps, lease: ShardLease) {
    this.deps = deps;
    // coarse, but far finer than the idle time after which entities are passivated
    this.lruGrainMs = Math.min(LRU_GRAIN_MS, deps.options.idlePassivateMs / 10);
    this.shard = lease.shard;
    this.epoch = lease.epoch;
  }

  /**
   * Fences the shard, loads its snapshots, answers queries, has older owners stop answering
   * (handoff.ts), positions the consumer and starts applying.
   */
  async start(): Promise<void> {
    const phasesMs: Record<string, number> = {};
    try {
      await this.startPhases(phasesMs);
    } catch (err) {
      // which request did not come back (a bucket, the fence, the scan, the consumer) tells why a
      // start keeps failing, e.g. while a NATS server is replaced
      const phase = START_PHASES.find((p) => !(p in phasesMs)) ?? "consume";
      this.deps.log("warn", "shard start failed", { shard: this.shard, epoch: this.epoch, phase, phasesMs, error: (err as Error).message });
      throw err;
    }
  }

  private async startPhases(phasesMs: Record<string, number>): Promise<void> {
    const { names, kvm, jsm, js, nc, publisher, options, metrics } = this.deps;
    const started = performance.now();
    let mark = started;
    const lap = (phase: string) => {
      const now = performance.now();
      phasesMs[phase] = Math.round(now - mark);
      mark = now;
    };
    const bucket = names.snapshotBucket(this.shard);
    this.kv = await this.askAgain(() => openSnapshotBucket(kvm, bucket, { replicas: options.replicas }));
    lap("open");
    const writer = await claimShard(jsm, this.kv, publisher, bucket, this.shard, this.epoch).catch((err: unknown) => {
      if (err instanceof FencedError) metrics.fencingRejections.inc();
      throw err;
    });
    this.writer = writer;
    lap("fence");
    const scan = await this.askAgain(() => scanShard(js, jsm, bucket, writer.claimed.keys));
    for (const [key, rec] of scan.entities) {
      const dot = key.indexOf(".");
      const behavior = this.deps.behaviors.get(key.slice(0, dot));
      if (behavior === undefined) continue;
      const slot = this.newSlot(key, key.slice(dot + 1), behavior);
      slot.bytes = rec.state;
      slot.persisted = true;
      slot.appliedSeq = rec.appliedSeq;
      if (rec.commands !== undefined && rec.commands.length > 0) this.commandKeys.set(slot, new CommandKeys(rec.commands));
      this.schedule(slot, rec.wakeAt);
    }
    this.committedSeq = scan.checkpoint;
    lap("scan");
    if (this.stopped) return;
    // Answer queries from the loaded (committed) state at once: an old owner that stopped cleanly
    // answers from the very same state until it hears the announcement below.
    const self = { epoch: this.epoch, instance: this.instance };
    this.rpc = nc.subscribe(names.rpc(this.shard), { callback: (err, msg) => (err ? undefined : void this.answer(msg)) });
    const [consumer, handoff] = await Promise.all([
      this.positionConsumer(scan.checkpoint, writer.claimed.previousEpoch),
      announceServing(nc, names.handoff(this.shard), self, options.handoffTimeoutMs),
    ]);
    lap("consumer");
    if (this.stopped) return;
    // listening only now: our own announcement must find no listener when no older runner is left
    this.handoff = listenForNewerOwner(nc, names.handoff(this.shard), self, (epoch) => this.onNewerOwner(epoch));
    this.messages = await consumer.consume({
      max_messages: options.fetchBatch,
      expires: options.pullExpiresMs,
      idle_heartbeat: Math.max(500, Math.round(options.pullExpiresMs / 5)),
    });
    void this.watchConsumer(this.messages);
    this.loop = this.consume(this.messages);
    this.commitTimer = setInterval(() => this.commitIfDue(), options.commitIntervalMs);
    this.wakeTimer = setInterval(() => void this.fireWakes(), options.wakeIntervalMs);
    metrics.handoffSeconds.observe({ phase: "start" }, (performance.now() - started) / 1000);
    metrics.knownEntities.inc(this.slotCount);
    this.deps.log("info", "shard started", {
      shard: this.shard,
      epoch: this.epoch,
      entities: this.slotCount,
      checkpoint: scan.checkpoint,
      ms: Math.round(performance.now() - started),
      phasesMs,
      handoff,
    });
    // consumers of older epochs left behind (a crash, two claims racing): cleaned up off the start's path
    void this.deleteStaleConsumers();
  }

  /**
   * Planned stop: stop consuming, finish the message in hand, commit everything. Live queries are
   * answered throughout and, once all is committed, from that state until the next owner serves
   * (at most `lingerMs`; see handoff.ts).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    this.stopped = true;
    this.clearTimers();
    await this.messages?.close().catch(() => undefined);
    await this.loop;
    await this.committing?.catch(() => undefined);
    try {
      await this.commitNow();
    } catch (err) {
      this.endLinger();
      throw err;
    } finally {
      this.deps.metrics.handoffSeconds.observe({ phase: "stop" }, (performance.now() - started) / 1000);
    }
    // this epoch's consumer is done with: the next owner creates its own at the checkpoint
    const { jsm, inputStream, names } = this.deps;
    void jsm.consumers.delete(inputStream, names.shardConsumer(this.shard, this.epoch)).catch(() => false);
    const committed = !this.aborted && this.writer?.failed === undefined && this.dirty.size === 0;
    // only a runner that hears the next owner's announcement may linger
    if (committed && this.handoff !== undefined && this.deps.options.lingerMs > 0) {
      this.lingering = true;
      this.lingerTimer = setTimeout(() => this.endLinger(), this.deps.options.lingerMs);
    } else {
      this.endLinger();
    }
  }

  /** True while a stopped runner still answers queries for the next owner (see {@link stop}). */
  get isLingering(): boolean {
    return this.lingering;
  }

  /**
   * Stops answering queries and drops the entities: the end of a planned stop's linger, or earlier when
   * the node closes or loses its NATS connection (it could miss the next owner's announcement).
   */
  endLinger(): void {
    this.lingering = false;
    clearTimeout(this.lingerTimer);
    this.handoff?.unsubscribe();
    const rpc = this.rpc;
    if (rpc === undefined) return this.release();
    // drain, not unsubscribe: queries already on their way are answered (from the committed state)
    // instead of waiting out the caller's timeout; the entities go once the drain is through
    void rpc
      .drain()
      .catch(() => undefined)
      .then(() => this.release());
  }

  /**
   * A newer runner of this shard serves (handoff.ts): stop answering now, before the announcer applies
   * anything. A runner that was not stopping has been overtaken: a zombie, fenced.
   */
  private onNewerOwner(epoch: number): void {
    this.rpc?.unsubscribe();
    const why = `a newer owner (epoch ${epoch}) serves the shard`;
    if (this.lingering) this.endLinger();
    else if (this.stopped) this.abort(why);
    else {
      this.deps.metrics.fencingRejections.inc();
      this.fail(new FencedError(this.shard, this.epoch, `shard ${this.shard} epoch ${this.epoch}: ${why}`));
    }
  }

  /** Lease lost: stop at once and write nothing more. */
  abort(reason: string): void {
    if (this.aborted) return;
    this.stopped = true;
    this.aborted = true;
    this.deps.log("warn", "shard aborted", { shard: this.shard, epoch: this.epoch, reason });
    this.rpc?.unsubscribe();
    this.handoff?.unsubscribe();
    this.lingering = false;
    clearTimeout(this.lingerTimer);
    this.clearTimers();
    void this.messages?.close().catch(() => undefined);
    this.release();
  }

  /** Messages consumed since the previous call (for rate-weighted balancing). */
  takeConsumed(): number {
    const n = this.consumedSinceRate;
    this.consumedSinceRate = 0;
    return n;
  }

  /** Input messages not yet delivered to this shard's consumer (refreshed by `refreshLag`). */
  get lag(): number {
    return this.lastLag;
  }

  async refreshLag(): Promise<number> {
    if (this.stopped) return this.lastLag;
    const info = await this.deps.jsm.consumers.info(this.deps.inputStream, this.deps.names.shardConsumer(this.shard, this.epoch));
    this.lastLag = info.num_pending + info.num_ack_pending;
    this.deps.metrics.consumerLag.set({ shard: String(this.shard) }, info.num_pending);
    return this.lastLag;
  }

  get entityCount(): number {
    return this.slotCount;
  }

  get residentCount(): number {
    return this.resident.size;
  }

  /** Drops decoded state of entities idle longer than `idleMs` (their snapshot is in the bucket); returns how many. */
  passivateIdle(idleMs: number): number {
    const cutoff = Date.now() - idleMs;
    return this.passivateWhile((slot) => slot.lastUsed <= cutoff);
  }

  /** Drops decoded state of the `count` least recently used entities. */
  passivateLeastRecent(count: number): number {
    let n = 0;
    return this.passivateWhile(() => n++ < count);
  }

  private passivateWhile(more: (slot: Slot) => boolean): number {
    let dropped = 0;
    for (const slot of this.resident.values()) {
      if (!more(slot)) break; // resident is in least-recently-used order
      if (slot.dirty || this.writing.has(slot)) continue; // not stored yet: keep
      slot.state = undefined;
      this.resident.delete(slot.key);
      dropped++;
    }
    this.deps.metrics.residentEntities.dec(dropped);
    return dropped;
  }

  /**
   * Creates this epoch's durable consumer at the checkpoint. The previous claimer's consumer (its epoch
   * is in the fence this start replaced) is deleted by name meanwhile: normally its owner deleted it at
   * its planned stop; after a crash it is still there. No listing of every shard's consumers on this path.
   */
  private async positionConsumer(checkpoint: number, previousEpoch: number | undefined): Promise<Consumer> {
    const { jsm, js, names, inputStream, options } = this.deps;
    const name = names.shardConsumer(this.shard, this.epoch);
    const config: Partial<ConsumerConfig> & { durable_name: string } = {
      durable_name: name,
      filter_subject: names.input(this.shard),
      ack_policy: AckPolicy.All,
      ...(checkpoint > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: checkpoint + 1 } : { deliver_policy: DeliverPolicy.All }),
      ack_wait: nanos(options.ackWaitMs),
      max_ack_pending: options.maxAckPending,
      max_deliver: -1,
    };
    const previous =
      previousEpoch !== undefined && previousEpoch < this.epoch
        ? jsm.consumers.delete(inputStream, names.shardConsumer(this.shard, previousEpoch)).catch(() => false)
        : undefined;
    const info = await this.addConsumer(config);
    await previous;
    return js.consumers.getConsumerFromInfo(info);
  }

  /**
   * Creates this epoch's consumer, asking again while the request times out or finds no JetStream
   * leader (js-retry.ts). A consumer of this name that has delivered already (an earlier attempt of this
   * epoch, restarted after a storage failure) or has another config (refused) is deleted and made afresh.
   */
  private async addConsumer(config: Partial<ConsumerConfig> & { durable_name: string }): Promise<ConsumerInfo> {
    const { jsm, inputStream } = this.deps;
    const add = () => this.askAgain(() => jsm.consumers.add(inputStream, config));
    const info = await add().catch((err: unknown) => (worthAskingAgain(err) ? Promise.reject(err) : undefined));
    if (info !== undefined && info.delivered.consumer_seq === 0) return info;
    await jsm.consumers.delete(inputStream, config.durable_name).catch(() => false);
    return add();
  }

  /** A start's JetStream request, asked again while worth it (js-retry.ts), until `askAgainMs`. */
  private askAgain<T>(request: () => Promise<T>): Promise<T> {
    return askAgain(request, { withinMs: this.deps.options.askAgainMs, stopped: () => this.stopped });
  }

  /** Deletes this shard's consumers of older epochs still there (a crash, two claims racing). */
  private async deleteStaleConsumers(): Promise<void> {
    const { jsm, inputStream } = this.deps;
    const prefix = `shard-${this.shard}-e`;
    try {
      const stale: string[] = [];
      for await (const ci of jsm.consumers.list(inputStream) as AsyncIterable<ConsumerInfo | null>) {
        // nats-server 2.9 lists a consumer deleted meanwhile (another shard starting) as null (fixed upstream in nats-server#4669)
        if (ci?.name.startsWith(prefix) !== true) continue;
        const epoch = Number(ci.name.slice(prefix.length));
        // never a newer owner's
        if (Number.isInteger(epoch) && epoch < this.epoch) stale.push(ci.name);
      }
      for (const old of stale) await jsm.consumers.delete(inputStream, old).catch(() => false);
    } catch (err) {
      this.deps.log("warn", "stale consumers not cleaned up", { shard: this.shard, error: (err as Error).message });
    }
  }

  /**
   * Only a newer owner deletes this epoch's consumer: when it is gone, stop at once (a zombie learns it
   * here even before its next write is refused). Not reported as fenced: if the consumer only looked
   * missing (a NATS failover), the host restarts the shard, and the restart's claim is refused if a
   * newer owner really holds it.
   */
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (this.stopped) return;
        if (s.type === "consumer_deleted" || s.type === "consumer_not_found") {
          this.fail(new Error(`shard ${this.shard} epoch ${this.epoch}: consumer gone (${s.type}), a newer owner may hold the shard`));
          return;
        }
      }
    } catch {
      // the iterator ends with the consumer
    }
  }

  private async consume(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const m of messages) {
        // Buffered messages resume this loop through microtasks only: without a macrotask turn now and
        // then, a backlog starves lease renewals, heartbeats and commits, and the node loses its leases.
        if (sliceUsed()) await yieldTurn();
        if (this.aborted) break;
        if (this.capturing !== undefined) await this.capturing;
        if (!this.inSequence(m)) return;
        await this.handle(m);
        if (this.stopped) break; // planned stop: the message in hand is applied, the rest is the next owner's
        if (this.dirty.size >= this.deps.options.commitMaxDirty || this.appliedSinceCommit >= this.deps.options.maxAckPending / 2) {
          void this.commit().catch(() => undefined);
        }
      }
    } catch (err) {
      if (!this.aborted) this.fail(err as Error);
    }
  }

  /**
   * The consumer numbers its deliveries 1, 2, 3…; a jump means messages were lost in transit (nats-server
   * closed a slow consumer's connection). Acking past them (AckPolicy.All) and checkpointing would lose
   * them for good, so the shard stops and restarts from its checkpoint instead.
   */
  private inSequence(m: JsMsg): boolean {
    const delivered = m.info.deliverySequence;
    if (delivered > this.lastDelivered + 1) {
      this.deps.metrics.deliveryGaps.inc();
      this.fail(new Error(`shard ${this.shard}: deliveries ${this.lastDelivered + 1}..${delivered - 1} lost in transit; restarting from the checkpoint`));
      return false;
    }
    if (delivered > this.lastDelivered) this.lastDelivered = delivered;
    return true;
  }

  private async handle(m: JsMsg): Promise<void> {
    const seq = m.info.streamSequence;
    this.consumedSinceRate++;
    let batch;
    try {
      batch = decodeBatch(m.data);
    } catch (err) {
      this.deps.log("error", "undecodable input message skipped", { shard: this.shard, seq, error: (err as Error).message });
      this.lastApplied = m;
      return;
    }
    const slots: Array<Slot | undefined> = batch.items.map((item) => this.slotFor(item.type, item.entityId));
    const missing = slots.filter((s): s is Slot => s !== undefined && s.state === undefined && s.bytes === undefined && s.persisted);
    if (missing.length > 0) await Promise.all(missing.map((s) => this.fetchBytes(s)));
    if (this.capturing !== undefined) await this.capturing; // a commit began its cut meanwhile
    if (this.aborted) return;
    const started = performance.now();
    const now = Date.now();
    const { metrics, names } = this.deps;
    const ctx = { prefix: names.prefix, acceptedAt: batch.acceptedAt };
    // labelled counters are counted per run of items of one type and kind (a label lookup per item costs)
    const counted = { type: "", kind: "", items: 0, units: 0 };
    for (let i = 0; i < batch.items.length; i++) {
      const item = batch.items[i]!;
      const slot = slots[i];
      if (slot === undefined) {
        if (item.replyTo !== undefined) this.reply(item.replyTo, { ok: false, error: { code: RuntimeErrors.ENTITY_UNKNOWN.code, message: `unknown entity type "${item.type}"` } });
        continue;
      }
      if (slot.appliedSeq > seq || (slot.appliedSeq === seq && slot.applyingSeq !== seq)) {
        metrics.redeliveriesSkipped.inc();
        continue;
      }
      const key = item.idempotencyKey;
      let fingerprint: Uint8Array | undefined;
      if (key !== undefined) {
        fingerprint = this.keyedCommand(slot, item, key, seq);
        if (fingerprint === undefined) continue;
      }
      this.activate(slot, now);
      let applied;
      try {
        applied = item.kind === ERASE_KIND ? this.erased(slot) : slot.behavior.apply(slot.state, item.kind, item.payload, ctx);
      } catch (err) {
        this.deps.log("error", "apply failed; input skipped", { shard: this.shard, seq, key: slot.key, error: (err as Error).message });
        if (item.replyTo !== undefined) this.reply(item.replyTo, { ok: false, error: { code: RuntimeErrors.ENTITY_APPLY.code, message: RuntimeErrors.ENTITY_APPLY.message } });
        continue;
      }
      slot.state = applied.state;
      slot.appliedSeq = seq;
      slot.applyingSeq = seq;
      this.markDirty(slot);
      this.publishOutputs(applied.outputs);
      this.schedule(slot, slot.behavior.nextWakeAt(slot.state));
      if (counted.type !== slot.behavior.type || counted.kind !== item.kind) {
        this.countApplied(counted);
        counted.type = slot.behavior.type;
        counted.kind = item.kind;
      }
      counted.items++;
      counted.units += applied.units ?? 0;
      if (key !== undefined) this.remember(slot, { key, seq, reply: encode(applied.reply), fingerprint });
      if (item.replyTo !== undefined) this.reply(item.replyTo, { ok: true, value: applied.reply, seq });
    }
    this.countApplied(counted);
    metrics.applySeconds.observe((performance.now() - started) / 1000);
    metrics.messagesApplied.inc();
    this.lastApplied = m;
    this.appliedSinceCommit++;
  }

  /**
   * Decides a keyed command. Refused: its key is invalid (a client that did not validate it), or the
   * entity applied a different command under it (another fingerprint; entries recorded before
   * fingerprints are not compared). Answered with the earlier reply and seq: the entity applied this
   * command already. Refused or answered, nothing changes and undefined is returned; otherwise the
   * command's fingerprint, to be recorded with the key once it is applied.
   */
  private keyedCommand(slot: Slot, item: InputItem, key: string, seq: number): Uint8Array | undefined {
    const problem = idempotencyKeyProblem(key);
    if (problem !== undefined) {
      this.refuse(item, RuntimeErrors.IDEMPOTENCY_KEY_INVALID.code, `idempotency key ${problem}`);
      return undefined;
    }
    let fingerprint: Uint8Array;
    try {
      fingerprint = commandFingerprint(item.kind, item.payload);
    } catch (err) {
      // only a payload nested deeper than the stack gets here; it would not apply either
      this.deps.log("error", "keyed command not fingerprinted; input skipped", { shard: this.shard, seq, key: slot.key, error: (err as Error).message });
      this.refuse(item, RuntimeErrors.ENTITY_APPLY.code, RuntimeErrors.ENTITY_APPLY.message);
      return undefined;
    }
    const earlier = this.commandKeys.get(slot)?.find(key);
    if (earlier === undefined) return fingerprint;
    if (earlier.fingerprint !== undefined && !sameFingerprint(earlier.fingerprint, fingerprint)) {
      this.refuse(item, RuntimeErrors.IDEMPOTENCY_KEY_REUSED.code, RuntimeErrors.IDEMPOTENCY_KEY_REUSED.message);
      return undefined;
    }
    this.deps.metrics.commandsReplayed.inc();
    if (item.replyTo !== undefined) this.reply(item.replyTo, { ok: true, value: decode(earlier.reply), seq: earlier.seq, replayed: true });
    return undefined;
  }

  private refuse(item: InputItem, code: string, message: string): void {
    if (item.replyTo !== undefined) this.reply(item.replyTo, { ok: false, error: { code, message } });
  }

  private remember(slot: Slot, applied: AppliedCommand): void {
    let keys = this.commandKeys.get(slot);
    if (keys === undefined) this.commandKeys.set(slot, (keys = new CommandKeys()));
    keys.add(applied);
  }

  /** What erasing an entity applies: a fresh state in place of the old one (see ERASE_KIND), and no keyed commands remembered. */
  private erased(slot: Slot): Applied<unknown> {
    this.commandKeys.delete(slot);
    return { state: slot.behavior.create(slot.entityId), outputs: [], reply: { erased: true } };
  }

  private countApplied(c: { type: string; kind: string; items: number; units: number }): void {
    if (c.items > 0) this.deps.metrics.itemsApplied.inc({ type: c.type, kind: c.kind }, c.items);
    if (c.units > 0) this.deps.metrics.unitsApplied.inc({ type: c.type }, c.units);
    c.items = c.units = 0;
  }

  /** The commit timer: commits now unless the shard is behind its input and committed recently. */
  private commitIfDue(): void {
    if (commitDeferred(this.lastApplied?.info.pending ?? 0, performance.now() - this.lastCommitAt, this.deps.options)) return;
    void this.commit().catch(() => undefined);
  }

  /** Commits unless a commit is running (then that one covers it). */
  commit(): Promise<void> {
    if (this.committing !== undefined) return this.committing;
    this.committing = this.commitNow().finally(() => {
      this.committing = undefined;
    });
    return this.committing;
  }

  private async commitNow(): Promise<void> {
    const writer = this.writer;
    if (writer === undefined || writer.failed !== undefined) return;
    const checkpointMsg = this.lastApplied;
    const checkpointSeq = checkpointMsg?.info.streamSequence ?? this.committedSeq;
    if (this.dirty.size === 0 && checkpointSeq === this.committedSeq && this.pendingOutputs.length === 0) return;
    const started = performance.now();
    this.lastCommitAt = started;
    // Capture a consistent cut: nothing is applied to this shard until every dirty entity is encoded.
    // Encoding yields to the event loop every few ms — a large cut (a backlog, a first ingest) takes
    // seconds, and lease renewals, acks and queries must not wait for it; the other shards go on.
    // Once captured, the loop keeps applying while this commit waits for its writes.
    let release!: () => void;
    this.capturing = new Promise<void>((resolve) => (release = resolve));
    const records: Array<{ slot: Slot; record: Uint8Array }> = [];
    try {
      for (const slot of this.dirty) {
        const bytes = slot.behavior.encode(slot.state);
        slot.dirty = false;
        this.writing.add(slot);
        // the table is empty on a shard that never got a keyed command: no lookup per snapshot then
        const commands = this.commandKeys.size === 0 ? undefined : this.commandKeys.get(slot)?.list();
        records.push({ slot, record: encodeRecord({ appliedSeq: slot.appliedSeq, wakeAt: slot.wakeAt, state: bytes, commands }) });
        if (sliceUsed()) await yieldTurn();
      }
      this.dirty.clear();
    } finally {
      this.capturing = undefined;
      release();
    }
    if (this.aborted) return; // the lease was lost while capturing: write nothing
    const outputs = this.pendingOutputs;
    this.pendingOutputs = [];
    this.appliedSinceCommit = 0;
    try {
      // 1. every output of the cut is stored (re-published under the same id if an ack failed)
      await this.confirmOutputs(outputs);
      // 2. snapshots, then the checkpoint, all fenced by the shard's stream sequence
      let bytes = 0;
      const writes = records.map(({ slot, record }) => {
        bytes += record.length;
        slot.persisted = true;
        return writer.put(slot.key, record);
      });
      writes.push(writer.put(CHECKPOINT_KEY, encodeCheckpoint(checkpointSeq, this.epoch)));
      await Promise.all(writes);
      for (const { slot } of records) this.writing.delete(slot);
      // 3. only now the input may be forgotten
      checkpointMsg?.ack();
      this.committedSeq = checkpointSeq;
      const { metrics } = this.deps;
      metrics.commitSeconds.observe((performance.now() - started) / 1000);
      metrics.commitRecords.observe(records.length);
      metrics.commitBytes.inc(bytes);
    } catch (err) {
      // Nothing of this cut is acknowledged: put it back so nothing is forgotten, then give the shard up.
      for (const { slot } of records) this.markDirty(slot);
      this.pendingOutputs = outputs.concat(this.pendingOutputs);
      if (err instanceof FencedError) this.deps.metrics.fencingRejections.inc();
      this.fail(err as Error);
      throw err;
    }
  }

  /**
   * Waits until every output of the cut is stored, publishing the refused ones again (their `Nats-Msg-Id`
   * makes a repeat harmless) with growing pauses for up to `askAgainMs`: while the output stream elects
   * a new leader (a NATS server lost) every publish is refused at once with "no stream answered", and
   * giving up then would restart the shard from its checkpoint for a pause of a few seconds.
   */
  private async confirmOutputs(outputs: PendingOutput[]): Promise<void> {
    const deadline = performance.now() + this.deps.options.askAgainMs;
    let todo = outputs;
    for (let attempt = 0; todo.length > 0; attempt++) {
      const results = await Promise.allSettled(todo.map((o) => o.ack));
      const failed = todo.filter((_, i) => results[i]!.status === "rejected");
      if (failed.length === 0) return;
      if (this.aborted || performance.now() >= deadline) throw (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
      todo = failed.map((o) => ({ ...o, ack: this.deps.publisher.publishNow(o.subject, o.data, { msgId: o.msgId, headers: MSGPACK_HEADER }) }));
    }
  }

  private publishOutputs(outputs: readonly EntityOutput[]): void {
    for (const o of outputs) {
      const data = encode(o.payload);
      const ack = this.deps.publisher.publishNow(o.subject, data, { msgId: o.id, headers: MSGPACK_HEADER });
      ack.catch(() => undefined); // confirmed (and retried) at commit
      this.pendingOutputs.push({ subject: o.subject, data, msgId: o.id, ack });
    }
    this.deps.metrics.outputsPublished.inc(outputs.length);
  }

  private async answer(msg: Msg): Promise<void> {
    if (this.released) return; // a drained query that came too late: the caller retries with the next owner
    let req;
    try {
      req = decodeQuery(msg.data);
    } catch {
      return this.respond(msg, errorReply(RuntimeErrors.CODEC_DECODE.code, "undecodable request"));
    }
    const slot = req === undefined ? undefined : this.slotFor(req.type, req.id);
    if (req === undefined || slot === undefined) return this.respond(msg, { ok: false, error: { code: RuntimeErrors.ENTITY_UNKNOWN.code, message: RuntimeErrors.ENTITY_UNKNOWN.message } });
    try {
      if (slot.state === undefined && slot.bytes === undefined && slot.persisted) await this.fetchBytes(slot);
      if (this.aborted) return; // the lease was lost: the next owner answers the retry
      // released meanwhile after a planned stop: the slot in hand still holds the committed state
      if (!this.released) this.activate(slot);
      const state = slot.state ?? (slot.bytes !== undefined ? slot.behavior.decode(slot.bytes) : slot.behavior.create(slot.entityId));
      this.respond(msg, { ok: true, value: slot.behavior.query(state, req.q), seq: slot.appliedSeq });
    } catch (err) {
      this.respond(msg, { ok: false, error: { code: RuntimeErrors.ENTITY_QUERY.code, message: (err as Error).message } });
    }
  }

  private respond(msg: Msg, reply: EntityReply): void {
    msg.respond(encodeReply(reply), { headers: MSGPACK });
  }

  private reply(subject: string, reply: EntityReply): void {
    this.deps.nc.publish(subject, encodeReply(reply), { headers: MSGPACK });
  }

  /** Fires due wake-ups, at most `wakeBatch` per round; each entity once, however many it missed. */
  private async fireWakes(): Promise<void> {
    if (this.capturing !== undefined) return; // a commit is capturing its cut; the next round fires them
    const now = Date.now();
    const due: Array<Slot> = [];
    while (due.length < this.deps.options.wakeBatch) {
      const at = this.wakes.peekTime();
      if (at === undefined || at > now) break;
      const slot = this.wakes.pop()!.key;
      this.deps.metrics.timersQueued.dec();
      if (slot.queuedAt !== at) continue; // superseded by an earlier entry
      slot.queuedAt = undefined;
      if (slot.wakeAt === undefined) continue; // cancelled
      if (slot.wakeAt > now) {
        this.enqueueWake(slot, slot.wakeAt); // moved later since: on to that time
        continue;
      }
      slot.wakeAt = undefined;
      due.push(slot);
    }
    if (due.length === 0) return;
    const missing = due.filter((s) => s.state === undefined && s.bytes === undefined && s.persisted);
    if (missing.length > 0) await Promise.all(missing.map((s) => this.fetchBytes(s)));
    if (this.capturing !== undefined) await this.capturing;
    if (this.aborted) return;
    for (const slot of due) {
      this.activate(slot, now);
      const applied = slot.behavior.tick(slot.state, now, { prefix: this.deps.names.prefix });
      slot.state = applied.state;
      this.markDirty(slot);
      this.publishOutputs(applied.outputs);
      this.schedule(slot, slot.behavior.nextWakeAt(slot.state));
    }
    this.deps.metrics.timersFired.inc(due.length);
  }

  /**
   * Sets the entity's wake-up. A later time than the one queued adds no entry: the queued one moves on
   * when it comes due. (The twin's offline timer moves later with every reading; an entry per reading
   * kept every reading of the last offline period in the heap.)
   */
  private schedule(slot: Slot, at: number | undefined): void {
    if (at === slot.wakeAt) return;
    slot.wakeAt = at;
    if (at !== undefined && (slot.queuedAt === undefined || at < slot.queuedAt)) this.enqueueWake(slot, at);
  }

  private enqueueWake(slot: Slot, at: number): void {
    slot.queuedAt = at;
    this.wakes.push(at, slot);
    this.deps.metrics.timersQueued.inc();
  }

  private slotFor(type: string, entityId: string): Slot | undefined {
    const slot = this.slots.get(type)?.get(entityId);
    if (slot !== undefined) return slot;
    const behavior = this.deps.behaviors.get(type);
    if (behavior === undefined) return undefined;
    // The scan at acquisition saw every snapshot of this shard and only this owner writes: a key we
    // do not know has no snapshot.
    this.deps.metrics.knownEntities.inc();
    return this.newSlot(entityKey(type, entityId), entityId, behavior);
  }

  private newSlot(key: string, entityId: string, behavior: EntityBehavior): Slot {
    const slot: Slot = { key, entityId, behavior, state: undefined, bytes: undefined, persisted: false, appliedSeq: 0, applyingSeq: 0, wakeAt: undefined, queuedAt: undefined, dirty: false, lastUsed: 0 };
    let byId = this.slots.get(behavior.type);
    if (byId === undefined) this.slots.set(behavior.type, (byId = new Map()));
    byId.set(entityId, slot);
    this.slotCount++;
    return slot;
  }

  /**
   * Decodes (or creates) the entity's state and marks it most recently used — at a second's grain: moving
   * an entity to the end of the LRU order on every input was ~3% of a busy shard's time (the fleet
   * shape), and passivation needs no finer order than that.
   */
  private activate(slot: Slot, now = Date.now()): void {
    if (slot.state === undefined) {
      slot.state = slot.bytes !== undefined ? slot.behavior.decode(slot.bytes) : slot.behavior.create(slot.entityId);
      slot.bytes = undefined;
      this.deps.metrics.residentEntities.inc();
    } else if (now - slot.lastUsed < this.lruGrainMs) {
      return;
    } else {
      this.resident.delete(slot.key);
    }
    slot.lastUsed = now;
    this.resident.set(slot.key, slot);
  }

  private async fetchBytes(slot: Slot): Promise<void> {
    const rec = this.kv === undefined ? undefined : await readSnapshot(this.kv, slot.key);
    if (rec !== undefined && slot.state === undefined) slot.bytes = rec.state;
  }

  private markDirty(slot: Slot): void {
    slot.dirty = true;
    this.dirty.add(slot);
  }

  private fail(err: Error): void {
    if (this.aborted) return;
    const fenced = err instanceof FencedError;
    this.deps.log("error", fenced ? "shard stopped: a newer owner fenced it" : "shard stopped, restarting from its checkpoint", { shard: this.shard, epoch: this.epoch, error: err.message });
    this.abort(fenced ? "fenced" : `failure: ${err.message}`);
    // fenced: this epoch is over for good, and its consumer with it (a failure restarts on it instead)
    if (fenced) void this.deps.jsm.consumers.delete(this.deps.inputStream, this.deps.names.shardConsumer(this.shard, this.epoch)).catch(() => false);
    this.deps.onFailure(this.shard, err);
  }

  private clearTimers(): void {
    if (this.commitTimer !== undefined) clearInterval(this.commitTimer);
    if (this.wakeTimer !== undefined) clearInterval(this.wakeTimer);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.deps.metrics.residentEntities.dec(this.resident.size);
    this.deps.metrics.knownEntities.dec(this.slotCount);
    this.deps.metrics.timersQueued.dec(this.wakes.size);
    this.wakes.clear();
    this.deps.metrics.consumerLag.remove({ shard: String(this.shard) });
    this.slots.clear();
    this.commandKeys.clear();
    this.slotCount = 0;
    this.resident.clear();
    this.dirty.clear();
    this.writing.clear();
  }
}

/** Resolution of the least-recently-used order of resident entities (ms), at most: see `lruGrainMs`. */
const LRU_GRAIN_MS = 1000;

const MSGPACK_HEADER = { "Content-Type": MSGPACK_CONTENT_TYPE } as const;
/** One header set for every reply (nats.js only reads it). */
const MSGPACK = msgpackHeaders();
