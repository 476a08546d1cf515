// The steps of reading an input stream in its turn (source-lease.ts) that differ from a shared durable
// consumer: where the reader starts, the consumer it reads with, its lag, and noticing a recreated
// stream. The batching loop around them is consumer.ts's, the same for every source.
import type { Consumer, JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { nuid } from "@nats-io/nats-core";
import { addReaderConsumer } from "../../runtime/mod.ts";
import { isNotFound } from "./consumer.ts";
import type { SourceLease } from "./source-lease.ts";

/**
 * Takes the stream's turn; returns the first sequence to read — after the stored position in the same
 * generation `gen` of the stream, else its start — or undefined while another process has the turn.
 */
export async function takeTurn(jsm: JetStreamManager, stream: string, durable: string, lease: SourceLease, gen: number): Promise<number | undefined> {
  const position = await lease.claim();
  if (position === undefined) return undefined;
  let start = position.gen === gen ? position.lastSeq + 1 : 1;
  // the shared durable consumer of archive versions before the turns: what it acknowledged was written,
  // what it had not may not be (batches of several processes overlap); start at its floor, then drop it
  const old = await jsm.consumers.info(stream, durable).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  if (old !== undefined) {
    start = Math.min(start, old.ack_floor.stream_seq + 1);
    await lease.rewind(gen, start - 1);
    await jsm.consumers.delete(stream, durable).catch(() => false);
  }
  return start;
}

/**
 * A reader's consumer (runtime's reader-consumer.ts), from `startSeq`, acknowledged once a batch — the
 * position it starts from is in the database. Not nats.js's ordered consumer: after a stream is
 * recreated that one resumes at its old sequence in the new stream, skipping its first messages; this one
 * ends (the loop makes it again).
 */
export function readerConsumer(
  deps: { js: JetStreamClient; jsm: JetStreamManager },
  o: { stream: string; label: string; startSeq: number; ackWaitMs: number; maxAckPending: number },
): Promise<Consumer> {
  const name = `archive_${o.label.replace(/[^A-Za-z0-9]/g, "_")}_${nuid.next()}`;
  return addReaderConsumer(deps, o.stream, { name, startSeq: o.startSeq, ackWaitMs: o.ackWaitMs, maxAckPending: o.maxAckPending });
}

/**
 * The stream's lag from the position in the database, whoever holds the turn (a process waiting its
 * turn answers history queries too, with the reader's lag); undefined when NATS or the database did not answer.
 */
export async function leasedLag(jsm: JetStreamManager, stream: string, lease: SourceLease): Promise<number | undefined> {
  try {
    const [info, position] = await Promise.all([jsm.streams.info(stream), lease.position()]);
    const gen = Date.parse(info.created);
    return position !== undefined && position.gen === gen ? Math.max(0, info.state.last_seq - Math.max(position.lastSeq, info.state.first_seq - 1)) : info.state.messages;
  } catch {
    return undefined;
  }
}

/** The stream is the generation `gen` the reader started on (a recreated one is read from its beginning). */
export async function streamUnchanged(jsm: JetStreamManager, stream: string, gen: number): Promise<boolean> {
  try {
    return Date.parse((await jsm.streams.info(stream)).created) === gen;
  } catch (err) {
    return !isNotFound(err); // NATS did not answer: keep consuming
  }
}
