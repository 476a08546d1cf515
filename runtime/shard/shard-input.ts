// A shard's input as its node's stream reader hands it over (runtime/stream-reader.ts): the messages of
// the input stream that hold items of this shard, in stream order, each with only this shard's items, and
// how far the reader has looked at the stream for it — messages with nothing for the shard move that
// mark without waking the runner, and a commit of an idle shard takes its checkpoint there.
import type { InputItem } from "../envelope.ts";

/** A message of the input stream, as far as one shard is concerned. */
export interface ShardDelivery {
  /** The message's stream sequence. */
  readonly seq: number;
  /** Wall-clock ms at which the client accepted the message's items. */
  readonly acceptedAt: number;
  /** This shard's items of the message, in the message's order. */
  readonly items: InputItem[];
  /** Each item's index in the whole message (its place in the log: output ids, the archive's order); undefined: 0, 1, 2… */
  readonly indexes: number[] | undefined;
  /** Wall-clock ms at which the stream stored the message. */
  readonly storedAt: number;
  /** The stream's messages after this one the reader had not been delivered yet when this one came. */
  readonly pending: number;
}

/** Most deliveries a shard's queue holds before its stream's reader waits for it (the backpressure on a slow shard). */
export const SHARD_QUEUE_LIMIT = 4096;

/**
 * The queue between a stream's reader and one shard's runner. The reader pushes in stream order; the
 * runner takes one delivery at a time (`next`). `seenThrough` is the last stream sequence the reader
 * looked at for this shard — every item of the shard up to it has been pushed.
 */
export class ShardInput {
  /** Last stream sequence the reader handled for this shard (pushed or passed over). */
  position: number;
  /** The reader's pending count at `position`: messages of the stream not yet delivered to it. */
  pendingAtPosition = 0;
  /**
   * When the stream stored the last message handled with nothing of the shard before it waiting (wall-clock
   * ms): a delivery the runner is done with, or one passed over; 0 before any.
   */
  private handledStoredAt = 0;
  /** When the stream stored the delivery in the runner's hand. */
  private inHandStoredAt = 0;
  /** The reader has said how far behind the stream the shard is (a delivery, a message passed over, or its count when it took the shard on). */
  private told = false;
  /** Items delivered since the last call of {@link takeDelivered} (for rate-weighted balancing). */
  private delivered = 0;
  private readonly queue: ShardDelivery[] = [];
  private head = 0;
  private waiter: ((d: ShardDelivery | undefined) => void) | undefined;
  private drained: (() => void) | undefined;
  private closedNow = false;
  /** A delivery taken by the runner and not yet done with (see {@link done}). */
  private inHand = false;

  constructor(
    readonly shard: number,
    /** The shard's checkpoint: the reader skips every message up to it. */
    checkpoint: number,
    /** Lets the reader holding it go of it (a catch-up reader hands it on: stream-reader.ts). */
    public onClose: (input: ShardInput) => void,
  ) {
    this.position = checkpoint;
  }

  /** The stream's messages not yet delivered to the reader holding it, as the server counts them (set by that reader). */
  backlog: () => Promise<number> = () => Promise.resolve(this.pendingAtPosition);

  get closed(): boolean {
    return this.closedNow;
  }

  /** Deliveries queued for the runner (the reader's backpressure; the runner's own count is {@link unapplied}). */
  private get queued(): number {
    return this.queue.length - this.head;
  }

  /**
   * Deliveries not yet applied: queued, and the one in the runner's hand. What the shard's lag counts
   * (lag.ts) and what defers its commit (commit.ts's `commitDeferred`).
   */
  get unapplied(): number {
    return this.queued + (this.inHand ? 1 : 0);
  }

  /**
   * How far the shard's input is handled: every message up to it is applied (or passed over) once the
   * runner holds nothing and nothing waits. Undefined while something does (the commit then takes the
   * last message the runner applied).
   */
  get idleThrough(): number | undefined {
    return this.unapplied > 0 ? undefined : this.position;
  }

  /**
   * The time the shard's wake-ups fire by: the wall clock `now` once the reader has nothing more for the
   * shard, else when the stream stored the input handled last. A wake-up must not fire ahead of input
   * stored before it — a device's offline deadline while its readings wait in the backlog of a replay
   * (after a crash, or a move): fired by the wall clock, every twin whose readings were that far behind
   * raised `offline`, and `online` with its next replayed reading. 0 (nothing fires) until the reader has
   * said where the shard stands.
   */
  wakeClock(now: number): number {
    if (!this.told) return 0;
    if (this.unapplied === 0 && this.pendingAtPosition === 0) return now;
    return Math.min(now, this.handledStoredAt);
  }

  /**
   * The reader took the shard on (made its consumer, or adopted the shard while reading) with `pending`
   * messages of the stream not yet delivered to it: the shard is at most that far behind, and counts as
   * that far until the reader reaches its position.
   */
  behind(pending: number): void {
    this.pendingAtPosition = pending;
    this.told = true;
  }

  /** The reader: a message with items of this shard. */
  push(d: ShardDelivery): void {
    if (this.closedNow) return;
    this.position = d.seq;
    this.pendingAtPosition = d.pending;
    this.told = true;
    this.delivered++;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      this.inHand = true;
      this.inHandStoredAt = d.storedAt;
      w(d);
      return;
    }
    this.queue.push(d);
  }

  /** The reader: a message with nothing for this shard, stored at `storedAt`. */
  pass(seq: number, pending: number, storedAt: number): void {
    if (this.closedNow) return;
    this.position = seq;
    this.pendingAtPosition = pending;
    if (this.unapplied === 0) this.handledStoredAt = storedAt; // nothing of the shard before it waits
    this.told = true;
  }

  /** The reader waits while the queue is full; resolves once the runner has taken half of it (or it closed). */
  whenRoom(): Promise<void> | undefined {
    if (this.queued < SHARD_QUEUE_LIMIT || this.closedNow) return undefined;
    return new Promise<void>((resolve) => (this.drained = resolve));
  }

  /** The runner: the next delivery, waiting for one; undefined once closed. */
  next(): ShardDelivery | undefined | Promise<ShardDelivery | undefined> {
    this.done();
    if (this.closedNow) return undefined;
    if (this.queued > 0) {
      const d = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as ShardDelivery;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      if (this.drained !== undefined && this.queued <= SHARD_QUEUE_LIMIT / 2) {
        const drained = this.drained;
        this.drained = undefined;
        drained();
      }
      this.inHand = true;
      this.inHandStoredAt = d.storedAt;
      return d;
    }
    return new Promise<ShardDelivery | undefined>((resolve) => (this.waiter = resolve));
  }

  /** The runner is done with the delivery in hand (applied, or the runner stops). */
  done(): void {
    if (this.inHand) this.handledStoredAt = this.inHandStoredAt;
    this.inHand = false;
  }

  /** Items' messages delivered since the previous call. */
  takeDelivered(): number {
    const n = this.delivered;
    this.delivered = 0;
    return n;
  }

  /**
   * The runner stops taking input: what waits is dropped (the next owner reads it from the checkpoint)
   * and the position goes back before it — a planned stop's last commit must not pass it — and the
   * reader lets go. The delivery in hand is still applied.
   */
  close(): void {
    if (this.closedNow) return;
    this.closedNow = true;
    if (this.queued > 0) this.position = this.queue[this.head]!.seq - 1;
    this.queue.length = 0;
    this.head = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
    const drained = this.drained;
    this.drained = undefined;
    drained?.();
    this.onClose(this);
  }
}
