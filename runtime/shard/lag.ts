// What a shard runner knows of its consumer's backlog: the lag housekeeping reads every second without
// asking the server (estimated from the runner's own deliveries), and the server's own count when an ops
// view asks for it.
import type { JsMsg } from "@nats-io/jetstream";
import type { RuntimeMetrics } from "../metrics.ts";

export class ShardLag {
  private last = 0;
  /** The last delivery's consumer delivery number, and what the server still held for us then (two fields: no object per message). */
  private lastDeliverySequence = 0;
  private lastDeliveryPending = 0;
  private readonly label: { shard: string };

  constructor(
    shard: number,
    private readonly metrics: RuntimeMetrics,
  ) {
    this.label = { shard: String(shard) };
  }

  /** Input messages not yet delivered to the consumer, or delivered and not acknowledged, as last estimated or asked. */
  get value(): number {
    return this.last;
  }

  /** A delivery arrived. */
  noteDelivery(m: JsMsg): void {
    this.lastDeliverySequence = m.info.deliverySequence;
    this.lastDeliveryPending = m.info.pending;
  }

  /**
   * The lag as the runner knows it, without asking the server: what was still pending at the last
   * delivery, plus the deliveries not yet acknowledged (`ackedDelivery`: the last one acknowledged). A
   * shard with a pull outstanding is delivered what arrives at once, so this is current while it consumes;
   * housekeeping uses it every second instead of a consumer-info request per shard (64 shards: 64
   * requests, replies and API advisories a second on nats-server).
   */
  estimate(ackedDelivery: number): number {
    this.last = this.lastDeliveryPending + Math.max(0, this.lastDeliverySequence - ackedDelivery);
    this.metrics.consumerLag.set(this.label, this.lastDeliveryPending);
    return this.last;
  }

  /** The server's own count (consumer info), for the ops views. */
  refreshed(backlog: { pending: number; ackPending: number }): number {
    this.last = backlog.pending + backlog.ackPending;
    this.metrics.consumerLag.set(this.label, backlog.pending);
    return this.last;
  }
}
