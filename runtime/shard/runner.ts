// Runs one owned shard: fence, bulk-load, take the shard's input in stream order from the node's reader
// of its stream (stream-reader.ts, shard-input.ts), apply each entity's inputs turn by turn (apply.ts),
// publish outputs, answer live queries (queries.ts); on its timers (shard-timers.ts) fire wake-ups and
// commit: outputs confirmed → due snapshots written (fenced, pipelined) → checkpoint (commit.ts). A
// crash anywhere in between replays from the checkpoint; inputs already in a snapshot are skipped per
// entity (`seq <= appliedSeq`), so every input takes effect exactly once. This file is the lifecycle:
// start, planned stop with its linger, abort.
import type { Subscription } from "@nats-io/nats-core";
import { announceServing, listenForNewerOwner, newInstanceId } from "../handoff.ts";
import { askAgain } from "../backoff.ts";
import type { EntityReply } from "../protocol.ts";
import type { ShardLease } from "../shard-host.ts";
import { FencedError, claimShard, openSnapshotBucket, scanShard } from "../snapshot-store.ts";
import { sliceUsed, yieldTurn } from "../turns.ts";
import { applyBatch, type ApplyEnv } from "./apply.ts";
import { Committer } from "./commit.ts";
import { compactIdle } from "./compaction.ts";
import { deleteStaleConsumers, type ConsumerEnv } from "./consumer.ts";
import { EntityTable, type Slot } from "./entities.ts";
import { ShardLag } from "./lag.ts";
import type { ShardRunnerDeps } from "./options.ts";
import { answerQuery, sendReply, type QueryEnv } from "./queries.ts";
import type { ShardDelivery, ShardInput } from "./shard-input.ts";
import { ShardTimers } from "./shard-timers.ts";
import { WakeUps } from "./timers.ts";

/**
 * Where a runner is in its life. It moves down this list, except that `abort` jumps from any phase to
 * "aborted":
 * - "starting": fencing, loading, attaching to the stream's reader (queries are answered once loaded);
 * - "running": applying input, committing, firing wake-ups, answering queries;
 * - "stopping": a planned stop takes no new input, finishes the message in hand and commits;
 * - "lingering": stopped and committed, answering queries from that state until the next owner serves;
 * - "draining": the linger is over; queries already on their way are answered, then the entities go;
 * - "released": stopped cleanly, entities dropped: nothing is answered any more;
 * - "aborted": the lease is lost or storage failed: nothing more is applied, written or answered.
 */
export type ShardPhase = "starting" | "running" | "stopping" | "lingering" | "draining" | "released" | "aborted";

/** A shard start's steps, in order (see `ShardRunner.start`). */
const START_STEPS = ["open", "fence", "scan", "consumer"] as const;

export class ShardRunner {
  readonly shard: number;
  readonly epoch: number;
  private readonly deps: ShardRunnerDeps;
  private phaseNow: ShardPhase = "starting";
  private readonly table: EntityTable;
  private readonly wakeUps: WakeUps;
  private readonly committer: Committer;
  private readonly applyEnv: ApplyEnv;
  private readonly consumerEnv: ConsumerEnv;
  private readonly queryEnv: QueryEnv;
  private readonly timers: ShardTimers;
  private input: ShardInput | undefined;
  private rpc: Subscription | undefined;
  /** Announcements of newer runners of this shard (handoff.ts). */
  private handoff: Subscription | undefined;
  private readonly instance = newInstanceId();
  private lingerTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private consumedSinceRate = 0;
  /** The last input of the cut the checkpoint we started from committed: its outputs, and those before, are stored. */
  private replayedUpTo = 0;
  /** The message being applied is one whose outputs are stored already (see `replayedUpTo`). */
  private replaying = false;
  private readonly lagKnown: ShardLag;

  constructor(deps: ShardRunnerDeps, lease: ShardLease) {
    this.deps = deps;
    this.shard = lease.shard;
    this.epoch = lease.epoch;
    this.table = new EntityTable(deps.behaviors, deps.metrics, deps.options.idlePassivateMs, deps.options.compactAfterMs);
    this.wakeUps = new WakeUps(deps.metrics);
    this.lagKnown = new ShardLag(this.shard, deps.metrics);
    this.committer = new Committer({
      shard: this.shard,
      epoch: this.epoch,
      deps,
      table: this.table,
      isAborted: () => this.aborted,
      fail: (err) => this.fail(err),
      idleThrough: () => this.input?.idleThrough,
      // behind: input not yet applied — the shard's lag (lag.ts), the delivery in hand included. A commit
      // now cannot hold the message being applied, so its cut is outdated a moment later, which is what
      // the deferral spares; and so a shard is deferred exactly while its lag shows input
      inputPending: () => (this.input === undefined ? 0 : this.input.unapplied + this.input.pendingAtPosition),
    });
    this.applyEnv = {
      table: this.table,
      wakeUps: this.wakeUps,
      metrics: deps.metrics,
      log: deps.log,
      shard: this.shard,
      prefix: deps.names.prefix,
      // a replayed input's outputs are stored already when a committed cut held it (`replayedUpTo`)
      publish: (outputs) => {
        if (!this.replaying) this.committer.publishOutputs(outputs);
      },
      reply: (subject, reply) => this.reply(subject, reply),
      deadLetters: deps.deadLetters,
    };
    this.table.onUndecodable = (slot, bytes, err) => this.deadSnapshot(slot.key, bytes, err.message);
    this.queryEnv = { table: this.table, isReleased: () => this.released, isAborted: () => this.aborted };
    this.consumerEnv = {
      deps,
      shard: this.shard,
      epoch: this.epoch,
      askAgain: (request) => askAgain(request, { withinMs: deps.options.askAgainMs, stopped: () => this.stopped }),
      stopped: () => this.stopped,
    };
    this.timers = new ShardTimers({
      shard: this.shard,
      deps,
      table: this.table,
      wakeUps: this.wakeUps,
      committer: this.committer,
      isAborted: () => this.aborted,
      isStopped: () => this.stopped,
      wakeClock: () => this.input?.wakeClock(Date.now()) ?? Date.now(),
      fail: (err) => this.fail(err),
    });
  }

  /** Where the runner is in its life. */
  get phase(): ShardPhase {
    return this.phaseNow;
  }

  /** No new input is taken (planned stop or abort). */
  private get stopped(): boolean {
    return this.phaseNow !== "starting" && this.phaseNow !== "running";
  }

  /** Lease lost or storage failed: nothing more is applied or written. */
  private get aborted(): boolean {
    return this.phaseNow === "aborted";
  }

  /** Entities dropped (stopped or aborted): nothing may be answered from them any more. */
  private get released(): boolean {
    return this.phaseNow === "released" || this.phaseNow === "aborted";
  }

  /**
   * Fences the shard, loads its snapshots, answers queries, has older owners stop answering
   * (handoff.ts), attaches to the stream's reader and starts applying.
   */
  async start(): Promise<void> {
    const stepsMs: Record<string, number> = {};
    try {
      await this.startSteps(stepsMs);
    } catch (err) {
      // which request did not come back (a bucket, the fence, the scan, the handoff) tells why a
      // start keeps failing, e.g. while a NATS server is replaced
      const phase = START_STEPS.find((p) => !(p in stepsMs)) ?? "consume";
      this.deps.log("warn", "shard start failed", { shard: this.shard, epoch: this.epoch, phase, phasesMs: stepsMs, error: (err as Error).message });
      throw err;
    }
  }

  private async startSteps(stepsMs: Record<string, number>): Promise<void> {
    const { names, kvm, jsm, js, nc, publisher, options, metrics } = this.deps;
    const { askAgain } = this.consumerEnv;
    const started = performance.now();
    let mark = started;
    const lap = (step: string) => {
      const now = performance.now();
      stepsMs[step] = Math.round(now - mark);
      mark = now;
    };
    const bucket = names.snapshotBucket(this.shard);
    const kv = await askAgain(() => openSnapshotBucket(kvm, bucket, { replicas: options.replicas }));
    this.table.kv = kv;
    lap("open");
    const writer = await claimShard(jsm, kv, publisher, bucket, this.shard, this.epoch).catch((err: unknown) => {
      if (err instanceof FencedError) metrics.fencingRejections.inc();
      throw err;
    });
    this.committer.writer = writer;
    lap("fence");
    const scan = await askAgain(() => scanShard(js, jsm, bucket, writer.claimed.keys));
    for (const u of scan.undecodable) this.deadSnapshot(u.key, u.data, u.error);
    for (const [key, rec] of scan.entities) {
      const slot = this.table.load(key, rec);
      if (slot !== undefined) this.wakeUps.schedule(slot, rec.wakeAt);
    }
    this.committer.committedSeq = scan.checkpoint;
    this.committer.appliedCommitted = scan.applied;
    this.replayedUpTo = scan.applied;
    lap("scan");
    if (this.stopped) return;
    // Answer queries from the loaded (committed) state at once: an old owner that stopped cleanly
    // answers from the very same state until it hears the announcement below.
    const self = { epoch: this.epoch, instance: this.instance };
    this.rpc = nc.subscribe(names.rpc(this.shard), { callback: (err, msg) => (err ? undefined : void answerQuery(this.queryEnv, msg)) });
    const handoff = await announceServing(nc, names.handoff(this.shard), self, options.handoffTimeoutMs);
    lap("consumer");
    if (this.stopped) return;
    // listening only now: our own announcement must find no listener when no older runner is left
    this.handoff = listenForNewerOwner(nc, names.handoff(this.shard), self, (epoch) => this.onNewerOwner(epoch));
    this.input = this.deps.reader.attach(this.shard, scan.checkpoint);
    this.loop = this.consume(this.input);
    this.timers.start();
    // a stop or abort during the last await has moved the phase on already
    if (this.phaseNow === "starting") this.phaseNow = "running";
    metrics.handoffSeconds.observe({ phase: "start" }, (performance.now() - started) / 1000);
    this.deps.log("info", "shard started", {
      shard: this.shard,
      epoch: this.epoch,
      entities: this.table.count,
      checkpoint: scan.checkpoint,
      replayedUpTo: scan.applied,
      ms: Math.round(performance.now() - started),
      phasesMs: stepsMs,
      handoff,
    });
    // consumers of older epochs (versions that read a shard with a consumer of its own), off the start's path
    void deleteStaleConsumers(this.consumerEnv);
  }

  /**
   * Planned stop: stop consuming, finish the message in hand, commit everything. Live queries are
   * answered throughout and, once all is committed, from that state until the next owner serves
   * (at most `lingerMs`; see handoff.ts).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    this.phaseNow = "stopping";
    this.timers.clear();
    this.input?.close();
    await this.loop;
    await this.committer.settled();
    try {
      await this.committer.commitNow(true);
    } catch (err) {
      this.endLinger();
      throw err;
    } finally {
      this.deps.metrics.handoffSeconds.observe({ phase: "stop" }, (performance.now() - started) / 1000);
    }
    const committed = !this.aborted && this.committer.clean;
    // only a runner that hears the next owner's announcement may linger
    if (committed && this.handoff !== undefined && this.deps.options.lingerMs > 0) {
      this.phaseNow = "lingering";
      this.lingerTimer = setTimeout(() => this.endLinger(), this.deps.options.lingerMs);
    } else {
      this.endLinger();
    }
  }

  /** True while a stopped runner still answers queries for the next owner (see {@link stop}). */
  get isLingering(): boolean {
    return this.phaseNow === "lingering";
  }

  /**
   * Stops answering queries and drops the entities: the end of a planned stop's linger, or earlier when
   * the node closes or loses its NATS connection (it could miss the next owner's announcement).
   */
  endLinger(): void {
    if (this.phaseNow === "lingering" || this.phaseNow === "stopping") this.phaseNow = "draining";
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
    if (this.isLingering) this.endLinger();
    else if (this.stopped) {
      this.deps.log("info", "shard stop overtaken", { shard: this.shard, epoch: this.epoch, reason: why });
      this.abort();
    }
    else {
      this.deps.metrics.fencingRejections.inc();
      this.fail(new FencedError(this.shard, this.epoch, `shard ${this.shard} epoch ${this.epoch}: ${why}`));
    }
  }

  /**
   * Lease lost: stop at once and write nothing more. The caller logs why (ownership's "shard aborted", a
   * failure, a failed start, a newer owner); when the runner logged it as well, every abort was in the
   * node's log twice.
   */
  abort(): void {
    if (this.aborted) return;
    this.phaseNow = "aborted";
    this.rpc?.unsubscribe();
    this.handoff?.unsubscribe();
    clearTimeout(this.lingerTimer);
    this.timers.clear();
    this.input?.close();
    this.release();
  }

  /** Commits every dirty entity's snapshot now (after the commit running, if any). */
  commit(): Promise<void> {
    return this.committer.commit(true);
  }

  /** Messages consumed since the previous call (for rate-weighted balancing). */
  takeConsumed(): number {
    const n = this.consumedSinceRate;
    this.consumedSinceRate = 0;
    return n;
  }

  /** Input messages not yet delivered to the stream's reader, or waiting for this runner (lag.ts). */
  get lag(): number {
    return this.lagKnown.value;
  }

  /** The lag from this runner's own deliveries, without asking the server (housekeeping, every second). */
  estimateLag(): number {
    return this.stopped || this.input === undefined ? this.lagKnown.value : this.lagKnown.estimate(this.input);
  }

  /** The lag as the server counts it (ops views). */
  async refreshLag(): Promise<number> {
    const input = this.input;
    return this.stopped || input === undefined ? this.lagKnown.value : this.lagKnown.refreshed(input, await input.backlog());
  }

  get entityCount(): number {
    return this.table.count;
  }

  /** Entities with decoded state. */
  get residentCount(): number {
    return this.table.residentCount;
  }

  /** Entities held as their encoded state only. */
  get compactCount(): number {
    return this.table.compactCount;
  }

  /** Compacts the decoded entities idle `idleMs` or longer (at most `max`); returns how many (benchmarks and tests force it). */
  compactIdle(idleMs: number, max?: number): number {
    return compactIdle(this.table, idleMs, Date.now(), max);
  }

  /** Drops decoded state of entities idle longer than `idleMs` (their snapshot is in the bucket); returns how many. */
  passivateIdle(idleMs: number): number {
    return this.table.passivateIdle(idleMs);
  }

  /** Drops decoded state of the `count` least recently used entities. */
  passivateLeastRecent(count: number): number {
    return this.table.passivateLeastRecent(count);
  }

  private async consume(input: ShardInput): Promise<void> {
    try {
      for (;;) {
        const next = input.next();
        const d = next instanceof Promise ? await next : next;
        if (d === undefined) break; // closed: a planned stop or an abort
        // Queued deliveries resume this loop through microtasks only: without a macrotask turn now and
        // then, a backlog starves lease renewals, heartbeats and commits, and the node loses its leases.
        if (sliceUsed()) await yieldTurn();
        if (this.aborted) break;
        if (this.committer.capturing !== undefined) await this.committer.capturing;
        await this.handle(d);
        if (this.stopped) break; // planned stop: the message in hand is applied, the rest is the next owner's
        if (this.committer.dueEarly) void this.committer.commit().catch(() => undefined);
      }
    } catch (err) {
      if (!this.aborted) this.fail(err as Error);
    } finally {
      input.done();
    }
  }

  private async handle(d: ShardDelivery): Promise<void> {
    const seq = d.seq;
    this.consumedSinceRate++;
    const batch = { acceptedAt: d.acceptedAt, items: d.items };
    const slots: Array<Slot | undefined> = batch.items.map((item) => this.table.slotFor(item.type, item.entityId));
    await this.table.fetchMissing(slots);
    if (this.committer.capturing !== undefined) await this.committer.capturing; // a commit began its cut meanwhile
    if (this.aborted) return;
    const started = performance.now();
    this.replaying = seq <= this.replayedUpTo;
    applyBatch(this.applyEnv, batch, slots, seq, Date.now(), d.indexes);
    this.replaying = false;
    const { metrics } = this.deps;
    if (seq > this.replayedUpTo) metrics.inputAgeSeconds.observe(Math.max(0, Date.now() - d.storedAt) / 1000);
    metrics.applySeconds.observe((performance.now() - started) / 1000);
    metrics.messagesApplied.inc();
    this.committer.noteApplied(seq);
  }

  /** A snapshot no owner wrote (undecodable): a dead letter; its entity starts afresh. */
  private deadSnapshot(key: string, data: Uint8Array, error: string): void {
    const dot = key.indexOf(".");
    const entity = dot < 0 ? undefined : { type: key.slice(0, dot), id: key.slice(dot + 1), kind: "snapshot" };
    const subject = `$KV.${this.deps.names.snapshotBucket(this.shard)}.${key}`;
    this.deps.deadLetters.record({ reason: "undecodable", source: "snapshot", subject, shard: this.shard, seq: 0, ...(entity === undefined ? {} : { entity }), error, data });
  }

  private reply(subject: string, reply: EntityReply): void {
    sendReply(this.deps.nc, subject, reply);
  }

  private fail(err: Error): void {
    if (this.aborted) return;
    const fenced = err instanceof FencedError;
    this.deps.log("error", fenced ? "shard stopped: a newer owner fenced it" : "shard stopped, restarting from its checkpoint", { shard: this.shard, epoch: this.epoch, error: err.message });
    this.abort();
    this.deps.onFailure(this.shard, err);
  }

  /** Drops the entities; after a planned stop's drain, or at once on abort (a second call finds nothing left). */
  private release(): void {
    if (this.phaseNow !== "aborted") this.phaseNow = "released";
    this.table.clear();
    this.wakeUps.clear();
    this.deps.metrics.consumerLag.remove({ shard: String(this.shard) });
  }
}
