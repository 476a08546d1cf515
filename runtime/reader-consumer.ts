// A reader's consumer of a stream: ephemeral, from a start sequence, in memory with one replica — the
// position a reader starts from is its own (the shards' checkpoints, the archive's database), not the
// server's — and acknowledged all-at-once now and then, for flow control only. Used by the node's stream
// readers (stream-reader.ts) and the archive's readers of the input streams (gateways/archive).
import { AckPolicy, DeliverPolicy, type Consumer, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";

/** How long nats-server keeps a reader's consumer nobody pulls from (its reader died). */
const READER_INACTIVE_MS = 60_000;

export interface ReaderConsumerOptions {
  /** The consumer's name: each reader makes its own, unique one. */
  name: string;
  /** First stream sequence delivered; 1 (or less): the stream's first message. */
  startSeq: number;
  /** How long a delivery waits for its acknowledgement before it is sent again (ms). */
  ackWaitMs: number;
  /** Messages the server sends ahead of the reader's last acknowledgement. */
  maxAckPending: number;
  /** Pull requests the consumer lets wait (`max_waiting`). Default: nats-server's (512). */
  maxWaiting?: number;
}

/**
 * Creates a reader's consumer of `stream`. Acknowledged with AckPolicy.All for flow control only:
 * without acknowledgements nothing bounds what the server sends ahead of a reader held back (a slow
 * shard, a database), and a reader far behind would pull its whole backlog into memory. A dead reader's
 * consumer is removed by the server after {@link READER_INACTIVE_MS}.
 */
export async function addReaderConsumer(deps: { js: JetStreamClient; jsm: JetStreamManager }, stream: string, o: ReaderConsumerOptions): Promise<Consumer> {
  const info = await deps.jsm.consumers.add(stream, {
    name: o.name,
    ack_policy: AckPolicy.All,
    ack_wait: nanos(o.ackWaitMs),
    max_ack_pending: o.maxAckPending,
    // nats-server starts a sequence below the stream's first at its first, as DeliverPolicy.All does
    ...(o.startSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.startSeq } : { deliver_policy: DeliverPolicy.All }),
    inactive_threshold: nanos(READER_INACTIVE_MS),
    mem_storage: true,
    num_replicas: 1,
    ...(o.maxWaiting === undefined ? {} : { max_waiting: o.maxWaiting }),
  });
  return deps.js.consumers.getConsumerFromInfo(info);
}
