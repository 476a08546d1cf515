// Acknowledgements of one consumer written together, once per event-loop turn. nats.js flushes its
// outbound buffer in a microtask after the first command queued, and each delivery finishes on an
// I/O callback of its own (the partner's answer), so acking at once costs one socket write per
// delivery — the largest single cost of the runner's turn at a few thousand deliveries/s (see
// docs/BENCHMARKS.md). Queued here, the acks of every answer read in one poll phase go out in one
// write at the next check phase. An ack is still sent only after the delivery succeeded; a process
// that dies before the flush leaves the message unacknowledged (delivered again, as if it had died
// just before acking).
import type { JsMsg } from "@nats-io/jetstream";

export class AckBatch {
  private pending: JsMsg[] = [];
  private scheduled: NodeJS.Immediate | undefined;

  /** Acks `m` at the end of this event-loop turn. */
  ack(m: JsMsg): void {
    this.pending.push(m);
    this.scheduled ??= setImmediate(this.flush);
  }

  /** Sends every queued ack now (in one write: nats.js flushes in the microtask after the first). */
  readonly flush = (): void => {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const acks = this.pending;
    if (acks.length === 0) return;
    this.pending = [];
    for (const m of acks) m.ack();
  };
}
