// Micro-batching of inputs into one message per key — an input stream (the client knows the stream
// count: any shards of the stream share a message) or a shard — with one flush schedule for all keys.
// (Below, "shard" is the key.)
//
// Adaptive linger (group commit): a shard's batch leaves at the end of the current event-loop turn
// when no earlier message of that shard awaits its PubAck, so an idle client adds no delay; while one
// does, the batch waits for that PubAck (at most `lingerMs`), gathering the requests that arrive
// meanwhile. The wait is thus the store's own round trip: short when idle, longer under load, when
// packing more requests into each JetStream message (one store, one delivery, one commit share)
// saves the most. Every batch that is ready leaves in the same synchronous run — nats.js writes what
// was published in one turn with one socket write — instead of one timer (and one write) per shard.
//
// Gathering (`gatherMs`, the gateway's AIRTWIN_INGEST_GATHER_MS): a shard's messages leave at least
// this far apart. The round trip alone packed ~5 requests a message at the fleet's 3,333 requests/s,
// and each stored message costs the system far more than the requests in it (docs/BENCHMARKS.md,
// "Gathering requests into fewer messages"); a first request after a quiet spell still leaves at once.
import type { InputItem } from "./envelope.ts";
import type { PubAck } from "./publisher.ts";

/** One published message holding the first `count` items not yet accounted for. */
export interface PublishedPart {
  count: number;
  ack: Promise<PubAck>;
}

/** Publishes a shard's items (in as many messages as their size needs), in order. */
export type PublishBatch = (shard: number, items: InputItem[]) => PublishedPart[];

export interface InputBatcherOptions {
  /** Longest a batch waits for the PubAck of its shard's previous message (ms); 0: never waits. */
  lingerMs: number;
  /** Most items in one batch: a full batch leaves at once. */
  maxBatchItems: number;
  /** Shortest time between two messages of one key (ms); 0: none. See the file header. */
  gatherMs?: number;
  /** A batch of at least this weight leaves without waiting out `gatherMs`. Default: none does. */
  gatherWeight?: number;
}

interface Waiter {
  resolve(ack: PubAck): void;
  reject(err: Error): void;
}

interface ShardBatch {
  items: InputItem[];
  waiters: Waiter[];
  /** The items' weights summed. */
  weight: number;
  /** performance.now() after which the batch leaves even while its shard awaits a PubAck. */
  dueAt: number;
}

/** Node's timers have millisecond resolution: a timer may fire up to this early. */
const TIMER_SLACK_MS = 1;

export class InputBatcher {
  private readonly batches = new Map<number, ShardBatch>();
  /** Messages of each shard awaiting their PubAck. */
  private readonly unacked = new Map<number, number>();
  /** performance.now() when each key's last message left (kept only with gatherMs). */
  private readonly lastSent = new Map<number, number>();
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly publish: PublishBatch,
    private readonly options: InputBatcherOptions,
  ) {}

  /**
   * Adds an item to its shard's batch; resolves with the PubAck of the message that holds it. `weight`:
   * how much the item counts toward `gatherWeight` (its readings, say).
   */
  add(shard: number, item: InputItem, weight = 1): Promise<PubAck> {
    let batch = this.batches.get(shard);
    if (batch === undefined) {
      batch = { items: [], waiters: [], weight: 0, dueAt: performance.now() + this.options.lingerMs };
      this.batches.set(shard, batch);
    }
    const b = batch;
    const done = new Promise<PubAck>((resolve, reject) => b.waiters.push({ resolve, reject }));
    b.items.push(item);
    b.weight += weight;
    if (b.items.length >= this.options.maxBatchItems) this.send(shard, b);
    else {
      const now = performance.now();
      const at = this.readyAt(shard, b);
      if (at <= now) this.sweepSoon();
      else this.wakeAt(at, now);
    }
    return done;
  }

  /** Items waiting in batches (not yet published). */
  get pendingItems(): number {
    let n = 0;
    for (const b of this.batches.values()) n += b.items.length;
    return n;
  }

  /** Publishes every batch now, waiting or not (on close). */
  flushAll(): void {
    for (const [shard, b] of this.batches) this.send(shard, b);
  }

  /** Stops the timers; call after flushAll. */
  close(): void {
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private awaitingAck(shard: number): boolean {
    return (this.unacked.get(shard) ?? 0) > 0;
  }

  /**
   * When the key's batch may leave: once its previous message is confirmed (or it has lingered
   * `lingerMs`), and not before `gatherMs` after the key's last message unless it weighs `gatherWeight`.
   */
  private readyAt(shard: number, b: ShardBatch): number {
    const heavy = b.weight >= (this.options.gatherWeight ?? Number.POSITIVE_INFINITY);
    const gathered = heavy ? Number.NEGATIVE_INFINITY : (this.lastSent.get(shard) ?? Number.NEGATIVE_INFINITY) + (this.options.gatherMs ?? 0);
    return Math.max(gathered, this.awaitingAck(shard) && this.options.lingerMs > 0 ? b.dueAt : Number.NEGATIVE_INFINITY);
  }

  /** The timer fires by `at` (re-armed when it was set later). */
  private wakeAt(at: number, now: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - now));
  }

  private sweepSoon(): void {
    // setImmediate, not a microtask: the requests read in this I/O phase join their batches first
    this.immediate ??= setImmediate(() => this.sweep());
  }

  /** Publishes every batch that is ready, in one synchronous run; re-arms the timer for the rest. */
  private sweep(): void {
    this.immediate = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let nextDueAt = Number.POSITIVE_INFINITY;
    for (const [shard, b] of this.batches) {
      const at = this.readyAt(shard, b);
      if (at <= now + TIMER_SLACK_MS) this.send(shard, b);
      else nextDueAt = Math.min(nextDueAt, at);
    }
    if (nextDueAt !== Number.POSITIVE_INFINITY) this.wakeAt(nextDueAt, now);
  }

  private send(shard: number, b: ShardBatch): void {
    this.batches.delete(shard);
    if (this.options.gatherMs) this.lastSent.set(shard, performance.now());
    let parts: PublishedPart[];
    try {
      parts = this.publish(shard, b.items);
    } catch (err) {
      for (const w of b.waiters) w.reject(err as Error);
      return;
    }
    let at = 0;
    for (const part of parts) {
      const waiters = b.waiters.slice(at, at + part.count);
      at += part.count;
      this.unacked.set(shard, (this.unacked.get(shard) ?? 0) + 1);
      part.ack.then(
        (ack) => {
          this.acked(shard);
          for (const w of waiters) w.resolve(ack);
        },
        (err: Error) => {
          this.acked(shard);
          for (const w of waiters) w.reject(err);
        },
      );
    }
  }

  /** A message of the shard was confirmed (or failed): a batch that waited for it may leave now. */
  private acked(shard: number): void {
    const left = (this.unacked.get(shard) ?? 1) - 1;
    if (left > 0) {
      this.unacked.set(shard, left);
      return;
    }
    this.unacked.delete(shard);
    if (this.batches.has(shard)) this.sweepSoon();
  }
}
