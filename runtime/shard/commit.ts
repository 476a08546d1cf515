// A shard's commits: a consistent cut (every due dirty entity encoded, the last applied message noted),
// then the cut's outputs confirmed (published again under the same id while refused) → its snapshots and
// the shard checkpoint written, fenced and pipelined. A crash anywhere in between replays from the
// previous checkpoint. An idle shard's checkpoint follows the stream's reader past messages of other
// shards (shard-input.ts's `idleThrough`), so a restart does not read them again.
// A twin changed only by input is snapshotted about every `snapshotIntervalMs` (once it is up; paced,
// after ½–1½ of it), or after `snapshotMaxInputs` inputs: until then its snapshot waits and the checkpoint (where a new owner's replay starts) stays
// before its first unsaved input, so the log makes up what the snapshot lacks; the checkpoint also names
// the cut's last input (`applied`), whose outputs are stored, so a replay does not publish them again.
// A cut looks at the entities changed since the last one and at the waiting ones that came due, oldest
// first (deferred-snapshots.ts) — not at every waiting entity. Paced (`snapshotPacing`, the node's
// default), the waiting ones are written at an even rate instead, each after ½–1½ intervals (snapshot-pace.ts).
import { retry, type Backoff } from "../backoff.ts";
import { MSGPACK_CONTENT_TYPE, encode } from "../codec.ts";
import type { EntityOutput } from "../entity.ts";
import type { PubAck } from "../publisher.ts";
import { CHECKPOINT_KEY, FencedError, encodeCheckpoint, encodeRecord, type FencedWriter } from "../snapshot-store.ts";
import { sliceUsed, yieldTurn } from "../turns.ts";
import type { EntityTable, Slot } from "./entities.ts";
import { OutputBatches } from "./output-batches.ts";
import type { ShardRunnerDeps, ShardRunnerOptions } from "./options.ts";
import { PACED_MAX_WAIT, PACED_MIN_WAIT, SnapshotPace } from "./snapshot-pace.ts";

/**
 * The commit timer's rule: a shard that still has input not yet applied (`pending`: after the last
 * applied message, the one being applied included) defers its commit until `commitMaxIntervalMs` since
 * the last one; caught up, it commits every tick. (Commits forced by dirty entities or unacknowledged
 * messages do not ask.)
 */
export function commitDeferred(pending: number, sinceLastCommitMs: number, options: Pick<ShardRunnerOptions, "commitMaxIntervalMs">): boolean {
  return pending > 0 && sinceLastCommitMs < options.commitMaxIntervalMs;
}

/**
 * When, within each commit interval, a shard's commit timer fires (ms after its start): spread evenly
 * over the interval by the golden ratio (any number of shards, any subset of them on a node). The shards
 * of a node start together, and with one phase their commits came in one burst every interval —
 * every dirty twin of the node encoded and written at once, the outputs published meanwhile queued
 * behind those writes on the connection, and an alert waited tens of ms for them (docs/BENCHMARKS.md).
 */
export function commitPhaseMs(shard: number, commitIntervalMs: number): number {
  const golden = 0.6180339887498949;
  return Math.floor(((shard * golden) % 1) * commitIntervalMs);
}

interface PendingOutput {
  subject: string;
  data: Uint8Array;
  msgId: string;
  ack: Promise<PubAck>;
}

/** What a shard's commits need of its runner. */
export interface CommitEnv {
  readonly shard: number;
  readonly epoch: number;
  readonly deps: Pick<ShardRunnerDeps, "publisher" | "metrics" | "options">;
  readonly table: EntityTable;
  /** True once the lease is lost or storage failed: nothing more is written. */
  isAborted(): boolean;
  /** Gives the shard up (a write failed or was fenced). */
  fail(err: Error): void;
  /** How far the shard's input is handled when nothing of it waits or is in hand (shard-input.ts), else undefined. */
  idleThrough(): number | undefined;
  /** The shard's input not yet applied: its deliveries not yet applied (the one in hand included) and the stream's messages its reader had not been delivered yet at the last of them. */
  inputPending(): number;
}

const MSGPACK_HEADER = { "Content-Type": MSGPACK_CONTENT_TYPE } as const;
/** Pauses between publishing a cut's refused outputs again. */
const OUTPUTS_BACKOFF: Backoff = { firstMs: 100, maxMs: 2000 };

export class Committer {
  /** The fenced writer of the shard's snapshot bucket, once the shard is claimed. */
  writer: FencedWriter | undefined;
  /** The checkpoint: the input stream sequence after which a new owner replays (every input up to it is in a snapshot). */
  committedSeq = 0;
  /** The checkpoint's `applied`: outputs of inputs up to it are stored (this owner's cuts, or a predecessor's). */
  appliedCommitted = 0;
  private capture: Promise<void> | undefined;
  private committing: Promise<void> | undefined;
  private pendingOutputs: PendingOutput[] = [];
  /** Outputs that travel batched, published with the commit of their cut (output-batches.ts). */
  private readonly batches = new OutputBatches();
  /** Stream sequence of the last message applied (0: none since the start). */
  private lastApplied = 0;
  private appliedSinceCommit = 0;
  /** When the last commit began (performance.now()). */
  private lastCommitAt = performance.now();
  /** The pace of the waiting snapshots' writes, when paced. */
  private readonly pace: SnapshotPace | undefined;
  /** How long a twin's snapshot waits at most (ms): the interval, or 1½ of it when paced. */
  private readonly maxWaitMs: number;

  constructor(private readonly env: CommitEnv) {
    const { snapshotIntervalMs, snapshotPacing } = env.deps.options;
    this.pace = snapshotPacing && snapshotIntervalMs > 0 ? new SnapshotPace(snapshotIntervalMs) : undefined;
    this.maxWaitMs = this.pace === undefined ? snapshotIntervalMs : snapshotIntervalMs * PACED_MAX_WAIT;
  }

  /** Set while a commit captures its cut (encoding, with yields): applying waits until it resolves. */
  get capturing(): Promise<void> | undefined {
    return this.capture;
  }

  /** A message applied: the next cut reaches it. The cut's last input never moves back. */
  noteApplied(seq: number): void {
    if (seq > this.lastApplied) this.lastApplied = seq;
    this.appliedSinceCommit++;
  }

  /** True when a commit should start now rather than at the next tick: many newly dirty entities or unacknowledged messages. */
  get dueEarly(): boolean {
    const { options } = this.env.deps;
    return this.env.table.changed.size >= options.commitMaxDirty || this.appliedSinceCommit >= options.maxAckPending / 2;
  }

  /** The commit timer: commits now unless the shard is behind its input and committed recently. */
  commitIfDue(): void {
    if (commitDeferred(this.env.inputPending(), performance.now() - this.lastCommitAt, this.env.deps.options)) return;
    void this.commit().catch(() => undefined);
  }

  /**
   * Commits unless a commit is running (then that one covers it). `all`: every dirty entity's snapshot
   * is written (after the running commit, if any; see {@link commitNow}).
   */
  commit(all = false): Promise<void> {
    if (this.committing !== undefined) return all ? this.settled().then(() => this.commit(true)) : this.committing;
    this.committing = this.commitNow(all).finally(() => {
      this.committing = undefined;
    });
    return this.committing;
  }

  /** Resolves once the commit running (if any) is over, however it ended. */
  async settled(): Promise<void> {
    await this.committing?.catch(() => undefined);
  }

  /** True when everything applied is written and the writer is sound. */
  get clean(): boolean {
    return this.writer?.failed === undefined && !this.env.table.hasUnsaved;
  }

  /** Publishes outputs at once; each is confirmed (and published again if refused) by the commit of its cut. */
  publishOutputs(outputs: readonly EntityOutput[]): void {
    if (outputs.length === 0) return; // most inputs have none: not even a counter update
    for (const o of outputs) {
      if (o.batch !== undefined) {
        this.batches.add(o as EntityOutput & { batch: string });
        continue;
      }
      const data = encode(o.payload);
      const ack = this.env.deps.publisher.publishNow(o.subject, data, { msgId: o.id, headers: MSGPACK_HEADER });
      ack.catch(() => undefined); // confirmed (and retried) at commit
      this.pendingOutputs.push({ subject: o.subject, data, msgId: o.id, ack });
    }
    this.env.deps.metrics.outputsPublished.inc(outputs.length);
  }

  /**
   * Commits now (a planned stop's last commit; otherwise see {@link commit}). `all`: every dirty entity's
   * snapshot is written (a planned stop, an explicit commit); otherwise those of entities changed only by
   * input whose first unsaved input is younger than `snapshotIntervalMs` (and fewer than
   * `snapshotMaxInputs`) wait — paced, as the pace allows, ½–1½ intervals — and the checkpoint stays
   * before that input.
   */
  async commitNow(all = false): Promise<void> {
    const { table, epoch } = this.env;
    const writer = this.writer;
    if (writer === undefined || writer.failed !== undefined) return;
    // how far this owner has applied (an idle shard: how far the reader has looked); the checkpoint never passes it
    const progress = Math.max(this.lastApplied > 0 ? this.lastApplied : this.committedSeq, this.env.idleThrough() ?? 0);
    // outputs stored up to here: this cut's, or a predecessor's not yet re-applied by a replay
    const appliedSeq = Math.max(progress, this.appliedCommitted);
    if (!table.hasUnsaved && progress === this.committedSeq && appliedSeq === this.appliedCommitted && this.pendingOutputs.length === 0 && this.batches.count === 0) return;
    const started = performance.now();
    const wallNow = Date.now();
    this.lastCommitAt = started;
    // Capture a consistent cut: nothing is applied to this shard until every due entity is encoded.
    // Encoding yields to the event loop every few ms — a large cut (a backlog, a first ingest) takes
    // seconds, and lease renewals, acks and queries must not wait for it; the other shards go on.
    // Once captured, the loop keeps applying while this commit waits for its writes.
    let release!: () => void;
    this.capture = new Promise<void>((resolve) => (release = resolve));
    const records: Array<{ slot: Slot; record: Uint8Array; unsavedSeq: number }> = [];
    const capture = (slot: Slot) => {
      // a compact twin's bytes are its state as of this cut (nothing is applied to it before it is decoded)
      const bytes = table.encodedState(slot);
      records.push({ slot, unsavedSeq: slot.unsavedSeq, record: encodeRecord({ appliedSeq: slot.appliedSeq, wakeAt: slot.wakeAt, state: bytes, commands: table.commandsOf(slot) }) });
      table.markCaptured(slot);
      table.writing.add(slot);
    };
    const { snapshotIntervalMs } = this.env.deps.options;
    const { pace, maxWaitMs } = this;
    try {
      // the entities changed since the last cut: written now, or left waiting (in the order of their first unsaved input)
      for (const slot of table.changed) {
        if (!all && this.mayWait(slot, started, wallNow) && table.deferred.defer(slot, started)) table.changed.delete(slot);
        else capture(slot);
        if (sliceUsed()) await yieldTurn();
      }
      // the waiting ones whose time is up, oldest first (all of them for a commit of everything); paced,
      // those past the longest wait, then as many as the pace allows of those past the shortest
      const minWaitMs = snapshotIntervalMs * PACED_MIN_WAIT;
      if (pace !== undefined) {
        const oldest = table.deferred.oldest();
        pace.accrue(started, { waiting: table.deferred.count, eligible: table.deferred.queuedBy(started - minWaitMs), oldestWaitedMs: oldest === undefined ? 0 : started - oldest.unsavedSince });
      }
      for (let slot = table.deferred.oldest(); slot !== undefined; slot = table.deferred.oldest()) {
        const waited = started - slot.unsavedSince;
        if (!all && waited < maxWaitMs && (pace === undefined || waited < minWaitMs || !pace.take())) break;
        capture(slot);
        if (sliceUsed()) await yieldTurn();
      }
    } finally {
      this.capture = undefined;
      release();
    }
    // the first input not in any snapshot (the oldest waiting entity's): the next owner's replay starts there
    const firstUnsaved = table.deferred.oldest()?.unsavedSeq ?? Number.MAX_SAFE_INTEGER;
    if (this.env.isAborted()) return; // the lease was lost while capturing: write nothing
    // never below the last checkpoint: entities waiting then still wait on the same input, and input applied
    // since came after it
    const checkpointSeq = Math.min(progress, firstUnsaved - 1);
    // the cut's batched outputs go out now, one message per batch (nothing was applied since the capture)
    for (const b of this.batches.take(this.env.shard, writer.claim)) {
      const ack = this.env.deps.publisher.publishNow(b.subject, b.data, { msgId: b.msgId, headers: MSGPACK_HEADER });
      ack.catch(() => undefined); // confirmed (and retried) below
      this.pendingOutputs.push({ ...b, ack });
    }
    const outputs = this.pendingOutputs;
    if (records.length === 0 && outputs.length === 0 && appliedSeq === this.appliedCommitted && checkpointSeq === this.committedSeq) return;
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
      writes.push(writer.put(CHECKPOINT_KEY, encodeCheckpoint(checkpointSeq, epoch, appliedSeq)));
      await Promise.all(writes);
      for (const { slot } of records) table.writing.delete(slot);
      this.committedSeq = checkpointSeq;
      this.appliedCommitted = appliedSeq;
      const { metrics } = this.env.deps;
      metrics.commitSeconds.observe((performance.now() - started) / 1000);
      metrics.commitRecords.observe(records.length);
      metrics.commitBytes.inc(bytes);
    } catch (err) {
      // Nothing of this cut is committed: put it back so nothing is forgotten, then give the shard up.
      for (const { slot, unsavedSeq } of records) {
        table.markDirty(slot);
        if (unsavedSeq !== 0 && (slot.unsavedSeq === 0 || unsavedSeq < slot.unsavedSeq)) slot.unsavedSeq = unsavedSeq;
      }
      this.pendingOutputs = outputs.concat(this.pendingOutputs);
      if (err instanceof FencedError) this.env.deps.metrics.fencingRejections.inc();
      this.env.fail(err as Error);
      throw err;
    }
  }

  /**
   * True when the entity's snapshot may wait: changed only by input, recently and not much, and still in
   * use (an idle entity is written so it can be passivated).
   */
  private mayWait(slot: Slot, now: number, wallNow: number): boolean {
    const { snapshotIntervalMs, snapshotMaxInputs, idlePassivateMs } = this.env.deps.options;
    if (slot.mustSave || slot.unsavedSeq === 0 || slot.unsavedInputs >= snapshotMaxInputs) return false;
    if (wallNow - slot.lastUsed >= idlePassivateMs) return false;
    // paced, a twin changed again past its interval keeps its place in the pace (up to the longest wait)
    return slot.unsavedSince === 0 ? snapshotIntervalMs > 0 : now - slot.unsavedSince < this.maxWaitMs;
  }

  /**
   * Waits until every output of the cut is stored, publishing the refused ones again (their `Nats-Msg-Id`
   * makes a repeat harmless) with growing pauses for up to `askAgainMs`: while the output stream elects
   * a new leader (a NATS server lost) every publish is refused at once with "no stream answered", and
   * giving up then would restart the shard from its checkpoint for a pause of a few seconds.
   */
  private async confirmOutputs(outputs: PendingOutput[]): Promise<void> {
    const { publisher, options } = this.env.deps;
    let todo = outputs;
    await retry(
      async (attempt) => {
        if (attempt > 0) todo = todo.map((o) => ({ ...o, ack: publisher.publishNow(o.subject, o.data, { msgId: o.msgId, headers: MSGPACK_HEADER }) }));
        const results = await Promise.allSettled(todo.map((o) => o.ack));
        const failed = todo.filter((_, i) => results[i]!.status === "rejected");
        if (failed.length === 0) return;
        todo = failed;
        throw (results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason;
      },
      { withinMs: options.askAgainMs, backoff: OUTPUTS_BACKOFF, stopped: () => this.env.isAborted() },
    );
  }
}
