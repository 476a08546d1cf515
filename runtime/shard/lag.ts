// What a shard runner knows of its input's backlog: the messages of its stream the node's reader has not
// been delivered yet, plus the shard's deliveries waiting for the runner. Housekeeping estimates it every
// second without asking the server; an ops view asks the server for the reader's count.
import type { RuntimeMetrics } from "../metrics.ts";
import type { ShardInput } from "./shard-input.ts";

export class ShardLag {
  private last = 0;
  private readonly label: { shard: string };

  constructor(
    shard: number,
    private readonly metrics: RuntimeMetrics,
  ) {
    this.label = { shard: String(shard) };
  }

  /** Input messages not yet delivered, or delivered and not yet applied, as last estimated or asked. */
  get value(): number {
    return this.last;
  }

  /** The lag from what the reader saw at its last delivery for the shard, without asking the server (housekeeping). */
  estimate(input: ShardInput): number {
    return this.set(input.pendingAtPosition, input.unapplied);
  }

  /** The lag with the server's own count of the reader's backlog (ops views). */
  refreshed(input: ShardInput, readerBacklog: number): number {
    return this.set(readerBacklog, input.unapplied);
  }

  private set(undelivered: number, waiting: number): number {
    this.last = undelivered + waiting;
    this.metrics.consumerLag.set(this.label, undelivered);
    return this.last;
  }
}
