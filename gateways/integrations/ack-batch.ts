// Acknowledgements of one consumer written together. nats.js flushes its outbound buffer in the
// microtask after the first command queued, and each delivery finishes on an I/O callback of its own
// (the partner's answer), so acking at once costs a socket write — and a wake-up of nats-server — per
// delivery: at a few thousand deliveries/s the largest single cost of the runner after the HTTP calls
// themselves (docs/BENCHMARKS.md). Queued here, they go out together `delayMs` after the first (or at
// once when `maxBatch` are queued). An ack is still sent only after the delivery succeeded; a process
// that dies before the flush leaves those messages unacknowledged: delivered again after the ack wait
// with the same id, as if it had died just before acking.
import type { JsMsg } from "@nats-io/jetstream";

/** Options of {@link AckBatch}. */
export interface AckBatchOptions {
  /** The longest an ack waits for others (ms). Default 5. */
  delayMs?: number;
  /** Acks that are sent at once without waiting. Default 256. */
  maxBatch?: number;
}

export class AckBatch {
  private pending: JsMsg[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly delayMs: number;
  private readonly maxBatch: number;

  constructor(o: AckBatchOptions = {}) {
    this.delayMs = o.delayMs ?? 5;
    this.maxBatch = o.maxBatch ?? 256;
  }

  /** Acks `m` with the next batch. */
  ack(m: JsMsg): void {
    this.pending.push(m);
    if (this.pending.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(this.flush, this.delayMs);
  }

  /** Sends every queued ack now, in one write (nats.js flushes in the microtask after the first). */
  readonly flush = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const acks = this.pending;
    if (acks.length === 0) return;
    this.pending = [];
    for (const m of acks) m.ack();
  };
}
