// One source stream's consumer. Either a durable consumer shared by every archive process (JetStream hands
// each pulled batch to one of them; the loop: pull a batch → write it in one transaction → acknowledge
// it), or — the input streams, a message a reading — one process's turn at the stream (source-lease.ts):
// a consumer of its own from the position the last batch wrote, the position moved inside each batch's
// transaction, one acknowledgement a batch (flow control only).
// A failing database holds the batch and retries with growing pauses (telling JetStream the messages
// are still being worked on), so a slow or stopped Postgres makes the archive fall behind — the stream
// keeps everything — and never slows anyone writing to the stream.
import { AckPolicy, DeliverPolicy, JetStreamApiError, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import type { LogFn } from "../../runtime/mod.ts";
import type { Database, Queryable } from "./db/mod.ts";
import { refusesData, type ArchiveDeadLetterFn } from "./dead-letter.ts";
import type { ArchiveMetrics } from "./metrics.ts";
import { leasedLag, readerConsumer, streamUnchanged, takeTurn } from "./leased-source.ts";
import { SourceFencedError, type SourceLease } from "./source-lease.ts";
import type { WriteCounts } from "./writer.ts";

/** The archive logs like the runtime does. */
export type ArchiveLog = LogFn;

/** What a source does with a batch inside the transaction. `gen` identifies the stream's incarnation. */
export type BatchWriter = (tx: Queryable, messages: readonly JsMsg[], gen: number) => Promise<WriteCounts>;

/**
 * Writes a batch and commits it; settles after the commit (the batch is acknowledged then). Most sources
 * run a {@link BatchWriter} in a transaction of their own ({@link ownTransaction}); the snapshot buckets'
 * batches are merged with other shards' (group-commit.ts).
 */
export type BatchCommit = (messages: readonly JsMsg[], gen: number) => Promise<WriteCounts>;

/** A batch written by `write` in a transaction of its own. */
export const ownTransaction = (db: Database, write: BatchWriter): BatchCommit => (messages, gen) => db.transaction((tx) => write(tx, messages, gen));

/** Options of a {@link SourceConsumer}. */
export interface SourceConsumerOptions {
  /** Stream to archive. */
  stream: string;
  /** Label in metrics and logs ("in.0", "out", "snap.12", "registry"). */
  label: string;
  /** Durable consumer name shared by all archive processes. Default "archive". */
  durable?: string;
  commit: BatchCommit;
  /** Most messages per batch (one transaction). Default 256. */
  batchMessages?: number;
  /**
   * How long a pull waits for messages (ms); the server's idle heartbeats come every half of it. Default
   * 10 000: most of the archive's consumers are idle most of the time (a snapshot bucket per shard, the
   * registry), and at 2 s their pulls, expiries and heartbeats were ~100 messages/s on nats-server with
   * 64 shards. A message still arrives at once; this bounds how soon a consumer whose server was lost
   * without the connection noticing is pulled afresh.
   */
  pullWaitMs?: number;
  /**
   * Longest a received message waits for more to share its transaction (ms): a batch is cut when full
   * or when its first message has waited this long. Default {@link DEFAULT_FLUSH_DELAY_MS}.
   */
  flushDelayMs?: number;
  /** Longest pause between retries of a failed write (ms). Default 5000. */
  maxRetryMs?: number;
  /** Pause before looking again for a stream that does not exist yet (ms). Default 2000. */
  missingRetryMs?: number;
  /** How long the server waits for an ack before redelivering (ms). Default 30 000. */
  ackWaitMs?: number;
  /**
   * Read the stream in turns instead (one archive process at a time, from the position in the database,
   * one acknowledgement a batch): `commit` must move the position with {@link SourceLease.advance} in its
   * transaction. A process without the turn waits `missingRetryMs` between tries.
   */
  lease?: SourceLease;
}

export interface ConsumerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  metrics: ArchiveMetrics;
  log: ArchiveLog;
  deadLetter: ArchiveDeadLetterFn;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

export class SourceConsumer {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  /** Generation (creation time, ms) of the stream the consumer was made on. */
  private gen = 0;
  private ready = false;
  /** Last time a batch failed (ms), for ops. */
  lastError: { at: number; message: string } | undefined;
  /** Messages pending in the stream for this consumer at the last look. */
  lag = 0;
  /** True while the stream does not exist (e.g. a shard no node owned yet). */
  missing = false;
  /** True while another archive process has the stream's turn (a leased source). */
  standby = false;
  /** A leased source: the first sequence to read (the position's next). */
  private startSeq = 1;
  /** A message arrived since the last {@link measureLag}. */
  private arrived = false;
  /** {@link lag} was measured on the current consumer at least once. */
  private measured = false;

  constructor(
    private readonly o: SourceConsumerOptions,
    private readonly deps: ConsumerDeps,
  ) {}

  get label(): string {
    return this.o.label;
  }

  /** Generation (creation time, ms) of the stream as last seen; 0 before the consumer was made. */
  get generation(): number {
    return this.gen;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    await this.o.lease?.release();
  }

  /**
   * {@link measureLag} unless nothing can have changed: the last look found the consumer caught up and
   * no message has arrived since (an idle consumer keeps a pull waiting, so anything new in the stream
   * arrives). The archive's periodic look: most of its consumers (a snapshot bucket per shard) are idle
   * most of the time, and a consumer-info request each every few seconds was most of an idle archive's work.
   */
  async measureLagIfMoving(): Promise<void> {
    if (this.ready && this.measured && this.lag === 0 && !this.arrived && this.o.lease === undefined) return;
    await this.measureLag();
  }

  /** Refreshes {@link lag} from the consumer's info (pending + unacknowledged). */
  async measureLag(): Promise<void> {
    if (this.o.lease !== undefined) {
      const lag = await leasedLag(this.deps.jsm, this.o.stream, this.o.lease);
      if (lag === undefined) return; // the stream is missing or NATS or the database did not answer: the last figure stands
      this.lag = lag;
      this.measured = true;
      this.deps.metrics.lag.set({ source: this.o.label }, lag);
      return;
    }
    if (!this.ready) return;
    // set before asking: a message arriving meanwhile is looked at next time
    this.arrived = false;
    try {
      const info = await this.deps.jsm.consumers.info(this.o.stream, this.o.durable ?? "archive");
      this.lag = info.num_pending + info.num_ack_pending;
      this.measured = true;
      this.deps.metrics.lag.set({ source: this.o.label }, this.lag);
    } catch {
      // the next batch recreates a vanished consumer
    }
  }

  private async ensureConsumer(): Promise<boolean> {
    const { jsm } = this.deps;
    const durable = this.o.durable ?? "archive";
    try {
      const info = await jsm.streams.info(this.o.stream);
      this.gen = Date.parse(info.created);
      this.missing = false;
    } catch (err) {
      if (isNotFound(err)) {
        this.missing = true;
        return false;
      }
      throw err;
    }
    if (this.o.lease !== undefined) {
      const start = await takeTurn(jsm, this.o.stream, durable, this.o.lease, this.gen);
      this.standby = start === undefined;
      if (start === undefined) return false;
      this.startSeq = start;
      this.ready = true;
      return true;
    }
    try {
      await jsm.consumers.info(this.o.stream, durable);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.consumers.add(this.o.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(this.o.ackWaitMs ?? 30_000),
        max_ack_pending: MAX_ACK_PENDING,
        // a message the archive cannot take is retried forever: the archive must not skip data
        max_deliver: -1,
      }).catch(async (e: unknown) => {
        // another archive process created it in between
        await jsm.consumers.info(this.o.stream, durable).catch(() => Promise.reject(e));
      });
    }
    this.ready = true;
    return true;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    /** Failures in a row: logged at the first and every 30th (a database away fails every try for as long). */
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.ready && !(await this.ensureConsumer())) {
          await sleep(this.o.missingRetryMs ?? 2000, signal);
          continue;
        }
        failures = 0;
        await this.consumeUntilGone();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof SourceFencedError) {
          this.deps.log("info", "archive source taken over by another process", { source: this.o.label, error: err.message });
          await this.o.lease?.release();
        } else if (!isNotFound(err) && failures++ % 30 === 0) {
          this.deps.log("warn", "archive consumer failed; retrying", { source: this.o.label, failures, error: (err as Error).message });
        }
        await sleep(this.o.missingRetryMs ?? 2000, signal);
      }
      // the stream or our consumer vanished (a reset JetStream), or the pull failed: make it again
      this.ready = false;
      this.measured = false;
    }
  }

  /**
   * Pulls continuously (JetStream keeps a window of messages on the way while a batch is written) and
   * writes what has arrived in batches: a batch is cut when full, or when its first message has waited
   * {@link SourceConsumerOptions.flushDelayMs}. Returns when the consumer is gone or the archive stops.
   */
  private async consumeUntilGone(): Promise<void> {
    const signal = this.abort.signal;
    const durable = this.o.durable ?? "archive";
    const configured = this.o.batchMessages ?? 256;
    const flushDelayMs = this.o.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS;
    const max = batchLimit(configured, Number.MAX_SAFE_INTEGER);
    const lease = this.o.lease;
    const consumer =
      lease === undefined
        ? await this.deps.js.consumers.get(this.o.stream, durable)
        : await readerConsumer(this.deps, { stream: this.o.stream, label: this.o.label, startSeq: this.startSeq, ackWaitMs: this.o.ackWaitMs ?? 30_000, maxAckPending: MAX_ACK_PENDING });
    const iter = await consumer.consume({
      max_messages: max * 2,
      expires: Math.max(1000, this.o.pullWaitMs ?? 10_000),
      // a reader's consumer gone (its stream deleted or recreated) ends the consumption: it is made again
      // from the stored position, in the stream's new generation
      ...(lease === undefined ? {} : { abort_on_missing_resource: true }),
    });
    const buffer: JsMsg[] = [];
    /** When the oldest message in the buffer arrived (performance.now()). */
    let oldestAt = 0;
    let pending = 0;
    let ended = false;
    /** The waiter is woken once the buffer holds this many messages (not on every arrival). */
    let wanted = 1;
    let wake: (() => void) | undefined;
    let turnLost = false;
    void lease?.lost.then(() => {
      turnLost = true;
      wake?.();
    });
    /** A reader's consumer delivered out of order: messages lost in transit (nothing redelivers them). */
    let gap = false;
    let delivered = 0;
    const reader = (async () => {
      try {
        for await (const m of iter) {
          if (lease !== undefined && m.info.deliverySequence !== ++delivered) {
            gap = true;
            this.deps.log("warn", "archive reader missed deliveries; reading again from the stored position", { source: this.o.label, expected: delivered, got: m.info.deliverySequence });
            break;
          }
          if (buffer.push(m) === 1) oldestAt = performance.now();
          this.arrived = true;
          pending = m.info.pending;
          if (buffer.length >= wanted) wake?.();
        }
      } finally {
        ended = true;
        wake?.();
      }
    })().catch(() => undefined);
    /** Resolves when the buffer holds `count` messages, after `ms`, or on stop. */
    const holding = (count: number, ms: number) =>
      new Promise<void>((resolve) => {
        wanted = count;
        const t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          wake = undefined;
          wanted = 1;
          signal.removeEventListener("abort", done);
          resolve();
        }
        wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    try {
      while (!signal.aborted && !ended) {
        // the turn lost (its next batch would be refused anyway) or deliveries missed: from the stored position again
        if (turnLost || gap) return;
        if (buffer.length === 0) {
          // long: with a consumer per shard's snapshot bucket, most are quiet, and each look is a request
          await holding(1, QUIET_CHECK_MS);
          if (buffer.length === 0) {
            // quiet for a while: is our consumer still there (a recreated stream has none)?
            if (!(await this.consumerExists())) return;
            continue;
          }
        }
        // behind: one bigger transaction for many messages (commits, head upserts and round trips per
        // message shrink); caught up: the configured size. Either way the batch waits, up to the flush
        // delay since its first message arrived, to fill: at a fleet's cadence each message holds one
        // reading, and a transaction per message costs the archive and Postgres several times the rows
        const size = batchLimit(configured, pending + buffer.length);
        const waitMs = oldestAt + flushDelayMs - performance.now();
        if (buffer.length < size && waitMs > 0) await holding(size, waitMs);
        const batch = buffer.splice(0, size);
        if (!(await this.writeUntilDone(batch))) return; // stopped while retrying: unacked, redelivered later
        // a reader's consumer is this process's alone: one acknowledgement covers the batch (and those before)
        if (lease === undefined) for (const m of batch) m.ack();
        else batch.at(-1)!.ack();
        this.deps.metrics.messages.inc({ source: this.o.label }, batch.length);
      }
    } finally {
      iter.stop();
      await reader;
      // a reader's consumer is this consumption's alone
      if (lease !== undefined) await this.deps.jsm.consumers.delete(this.o.stream, (await consumer.info(true)).name).catch(() => false);
    }
  }

  private async consumerExists(): Promise<boolean> {
    if (this.o.lease !== undefined) return this.o.lease.held && (await streamUnchanged(this.deps.jsm, this.o.stream, this.gen));
    try {
      await this.deps.jsm.consumers.info(this.o.stream, this.o.durable ?? "archive");
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      return true; // NATS did not answer: keep consuming
    }
  }

  /**
   * Writes the batch, retrying with growing pauses; false when stopped before it succeeded. A leased
   * source's batch refused because another process took the stream over ends the consumption (thrown).
   */
  private async writeUntilDone(messages: JsMsg[]): Promise<boolean> {
    const { metrics, log } = this.deps;
    const signal = this.abort.signal;
    let pauseMs = 100;
    let lastWorking = Date.now();
    for (let attempt = 1; !signal.aborted; attempt++) {
      const started = performance.now();
      try {
        const counts = await this.o.commit(messages, this.gen);
        metrics.batchSeconds.observe({ source: this.o.label }, (performance.now() - started) / 1000);
        for (const [table, n] of Object.entries(counts)) if (n > 0) metrics.rows.inc({ table }, n);
        if (attempt > 1) log("info", "archive caught up with its database again", { source: this.o.label, attempts: attempt });
        return true;
      } catch (err) {
        if (err instanceof SourceFencedError) throw err;
        if (refusesData(err)) return this.writeEachAlone(messages, err);
        metrics.errors.inc({ source: this.o.label, kind: "write" });
        this.lastError = { at: Date.now(), message: (err as Error).message };
        if (attempt === 1 || attempt % 20 === 0) log("warn", "archive write failed; holding the batch and retrying", { source: this.o.label, attempt, error: (err as Error).message });
        await sleep(pauseMs, signal);
        pauseMs = Math.min(pauseMs * 2, this.o.maxRetryMs ?? 5000);
        // keep the held messages ours (no redelivery to another archive while we retry)
        if (Date.now() - lastWorking > (this.o.ackWaitMs ?? 30_000) / 3) {
          for (const m of messages) m.working();
          lastWorking = Date.now();
        }
      }
    }
    return false;
  }

  /**
   * The database refused a batch for its values: writes its messages one at a time, so only a message
   * refused on its own is given up (dead-lettered, then acknowledged with the rest) and its source goes on.
   */
  private async writeEachAlone(messages: JsMsg[], err: unknown): Promise<boolean> {
    if (messages.length === 1) {
      this.deps.deadLetter(this.o.label, messages[0]!, "refused", (err as Error).message);
      // a leased source's position moves past it, or the next reader would give it up again
      await this.o.lease?.advanceAlone(this.gen, messages[0]!.seq);
      return true;
    }
    for (const m of messages) if (!(await this.writeUntilDone([m]))) return false;
    return true;
  }
}

/**
 * Default of {@link SourceConsumerOptions.flushDelayMs}: how far behind the stream a caught-up archive
 * lets its newest rows be, bought back as a transaction per interval instead of one per message.
 */
export const DEFAULT_FLUSH_DELAY_MS = 200;

/** Messages delivered and not yet acknowledged a consumer may have: what an archive holds in memory at most. */
const MAX_ACK_PENDING = 20_000;

/** A consumer that has been delivered nothing this long checks that it still exists (a recreated stream has none). */
const QUIET_CHECK_MS = 60_000;

/** How many times the configured batch a transaction grows to while the consumer is behind. */
export const BEHIND_GROWTH = 4;

/**
 * Most messages in the next transaction: the configured batch, growing with the backlog (`behind`:
 * messages pending on the server plus those already received) up to {@link BEHIND_GROWTH} times it
 * (never past 10,000).
 */
export function batchLimit(configured: number, behind: number): number {
  return Math.max(configured, Math.min(behind, configured * BEHIND_GROWTH, 10_000));
}

export function isNotFound(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === 10059 || err.code === 10014;
  return /not found/i.test((err as Error)?.message ?? "");
}
