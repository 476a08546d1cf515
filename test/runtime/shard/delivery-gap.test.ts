// Exactly-once when a delivery never reaches the runner. In production this is nats-server dropping a slow
// consumer: what was in its outbound buffer is lost in transit while JetStream counts it delivered, and
// acknowledging a later message (AckPolicy.All) plus a checkpoint past it would lose those inputs for good.
// Here the same thing is made deterministic with real NATS: another client pulls from the node's reader's
// consumer, so a message is delivered — and never seen by the reader. The reader must notice the gap in
// the consumer's delivery sequence and read again after the last message it handed over (no shard fails).
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { shardOf } from "../../../runtime/shard-id.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const SHARDS = 2;
const ENTITIES = 40;
const ADDS = 150;
const PAD = "x".repeat(200);

const nats = natsForFile();
const conn = () => nats.conn();

it("a delivery the reader never received is read again: nothing lost, nothing twice", async () => {
  // small input messages (20 adds), so the backlog is many messages
  const client = new RuntimeClient(await conn(), { prefix: "gap", shards: SHARDS, maxBatchItems: 20 });

  // small pulls: the runner must come back for more, and the thief's pull gets its turn in between
  const runtime = await testNode(await conn(), { prefix: "gap", shards: SHARDS, runner: { commitIntervalMs: 50, fetchBatch: 4 } });
  // the backlog (the runtime created the input stream)
  const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < ADDS; i++) for (const id of ids) sends.push(client.send("counter", id, "add", { v: i, pad: PAD }));
  await Promise.all(sends);
  const failures: string[] = [];
  runtime.host.onShardFailed = (_shard, err) => failures.push(err.message);
  // the thief's pull waits in the consumer's queue between the reader's
  const names = namesOf("gap");
  const js = jetstream(await conn());
  const jsm = await jetstreamManager(await conn());
  const thief = await (async () => {
    await runtime.host.start({ shard: 0, epoch: 1, owner: "n1" });
    // the reader makes its consumer after the start resolves: looked up before, no name was found and
    // consumers.get(stream, undefined) made an ordered consumer of the thief's own — which took message 1
    // from nobody (seen under load, the test then waiting for a gap that could not come)
    const reader = await waitFor(
      async () => {
        for await (const ci of jsm.consumers.list(names.inputStream(0))) if (ci?.name.startsWith("node_") === true) return ci.name;
        return undefined;
      },
      { message: "the reader's consumer" },
    );
    const consumer = await js.consumers.get(names.inputStream(0), reader);
    return consumer.next({ expires: 5000 });
  })();
  expect(thief, "the thief got a delivery").not.toBeNull();
  // a gap shows in the next delivery after it: on a busy machine the reader may have read everything
  // else already, so one more input of shard 0 (an entity the checks below leave alone) comes after
  const tail = Array.from({ length: 100 }, (_, i) => `tail${i}`).find((id) => shardOf(id, SHARDS) === 0)!;
  await client.send("counter", tail, "add", { v: 1, pad: PAD });
  // the reader must meet the gap before shard 1 arrives: shard 1, behind the reader, makes it go back on
  // a new consumer, which would deliver the stolen message again without a gap (a race seen on a busy CI)
  const gaps = async () => (await runtime.metrics.deliveryGaps.get()).values[0]?.value ?? 0;
  await waitFor(async () => (await gaps()) >= 1, { timeoutMs: 30_000, message: "the reader noticed the gap" });
  await runtime.host.start({ shard: 1, epoch: 1, owner: "n1" });

  const state = (id: string) => counterState(client, id);
  await waitFor(async () => (await Promise.all(ids.map(state))).every((c) => c.n >= ADDS), { timeoutMs: 30_000, message: "every add applied" });
  await runtime.host.commitAll();
  const expected = (ADDS * (ADDS - 1)) / 2;
  for (const id of ids) expect(await state(id), id).toMatchObject({ n: ADDS, sum: expected });
  expect(failures, "no shard failed").toEqual([]);
  expect(await gaps()).toBe(1);

  // and a second owner, starting from what was committed, agrees
  await runtime.host.stopAll();
  runtime.close();
  const next = await testNode(await conn(), { prefix: "gap", shards: SHARDS });
  for (let s = 0; s < SHARDS; s++) await next.host.start({ shard: s, epoch: 2, owner: "n2" });
  for (const id of ids) expect(await state(id), id).toMatchObject({ n: ADDS, sum: expected });
  await next.host.stopAll();
  next.close();
  await client.close();
}, 60_000);
