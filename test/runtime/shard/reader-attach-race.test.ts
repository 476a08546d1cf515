// A node's stream reader ends its reading loop when its last shard leaves and starts it again with the
// next shard that arrives. The two can meet: a shard aborted (its lease lost) and one started a moment
// later — a zombie node resumed and handed shards again at once. Whatever the interleaving, a shard
// attached to the reader is read. The loop's end and the flag that says it runs were a microtask apart,
// and a shard attached in between found the reader "running", waited for messages that never came, and
// held its twins unserved until another shard arrived. This test attaches at every offset, in
// microtasks, from the last shard's leaving up to well past the loop's end, and checks each attached
// shard receives the next message.
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { RuntimeMetrics } from "../../../runtime/metrics.ts";
import type { ShardDelivery, ShardInput } from "../../../runtime/shard/shard-input.ts";
import { StreamReader } from "../../../runtime/stream-reader.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { debugLog, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "race";
const names = namesOf(PREFIX);
const nats = natsForFile();
/** Microtask offsets tried: the loop ends a few microtasks after the last shard leaves (the gap was at two). */
const OFFSETS = 120;

async function microtasks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** The next delivery of `input`, or undefined if none comes within `ms`. */
async function nextWithin(input: ShardInput, ms: number): Promise<ShardDelivery | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([Promise.resolve(input.next()), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

it("reads for a shard attached at any moment around the end of its reading loop", { timeout: 120_000 }, async () => {
  const nc = await nats.conn();
  // the cluster's streams, made by a node that runs no shard: the reader under test is the only one
  const node = await testNode(nc, { prefix: PREFIX, shards: 1 });
  const client = new RuntimeClient(await nats.conn(), { prefix: PREFIX, shards: 1 });
  const reader = new StreamReader({
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    stream: names.inputStream(0),
    shards: 1,
    streamShards: new Set([0]),
    options: { fetchBatch: 16, pullExpiresMs: 5_000, ackWaitMs: 30_000, maxAckPending: 1_000 },
    metrics: new RuntimeMetrics({ defaultMetrics: false }),
    log: debugLog,
    deadLetters: { record: () => undefined },
  });
  let last = 0;
  const send = async () => {
    await client.send("counter", "c1", "add", { v: 1 });
    last++;
  };
  await send();
  let input = reader.attach(0, 0);
  expect((await nextWithin(input, 10_000))?.seq).toBe(last);

  const stranded: number[] = [];
  for (let offset = 0; offset < OFFSETS; offset++) {
    input.close(); // the shard leaves (aborted): the reader had nothing else, its loop ends
    await microtasks(offset);
    input = reader.attach(0, last); // the shard arrives again, from its checkpoint
    await send();
    const d = await nextWithin(input, 3_000);
    if (d === undefined) {
      stranded.push(offset);
      // let the test go on: attached once more, the shard finds the reader stopped and starts it
      input = reader.attach(0, last - 1);
      expect((await nextWithin(input, 10_000))?.seq).toBe(last);
    } else expect(d.seq).toBe(last);
  }
  expect(stranded, "offsets (microtasks after the last shard left) at which an attached shard was never read").toEqual([]);
  reader.close();
  await node.close();
});
