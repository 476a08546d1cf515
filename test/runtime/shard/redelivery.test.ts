// Exactly-once when nats-server delivers a message again to the runner that applied it: its ack wait ran
// out before a commit acknowledged it (a commit held up by a NATS server going away, a consumer leader
// moving). Every message is skipped the second time — the last one each entity applied too, which an
// entity still marked as applying that message used to apply again (a chaos run found a device with
// two readings counted twice).
import { jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const nats = natsForFile();
const conn = () => nats.conn();

it("a message delivered again to the runner that applied it is skipped, the last one of each entity too", async () => {
  const prefix = "redeliver";
  // no commit within the test's window, so nothing acknowledges: the server sends everything again every 400 ms
  const runtime = await testNode(await conn(), { prefix, shards: 1, runner: { commitIntervalMs: 60_000, commitMaxIntervalMs: 60_000, ackWaitMs: 400 } });
  await runtime.host.start({ shard: 0, epoch: 1, owner: "n1" });
  const client = new RuntimeClient(await conn(), { prefix, shards: 1 });
  const ids = Array.from({ length: 8 }, (_, i) => `e${i}`);
  for (let v = 1; v <= 3; v++) await Promise.all(ids.map((id) => client.send("counter", id, "add", { v })));

  const names = namesOf(prefix);
  const jsm = await jetstreamManager(await conn());
  const messages = (await jsm.streams.info(names.inputStream(0))).state.messages;
  // every message delivered at least twice more
  await waitFor(async () => (await jsm.consumers.info(names.inputStream(0), names.shardConsumer(0, 1))).num_redelivered >= messages && (await runtime.metrics.redeliveriesSkipped.get()).values[0]!.value >= 2 * ids.length * 3, {
    timeoutMs: 20_000,
    message: "the input delivered again",
  });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ n: 3, sum: 6 });

  // and what is committed says the same to the next owner
  await runtime.host.commitAll();
  await runtime.host.stopAll();
  runtime.close();
  const next = await testNode(await conn(), { prefix, shards: 1 });
  await next.host.start({ shard: 0, epoch: 2, owner: "n2" });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ n: 3, sum: 6 });
  await next.host.stopAll();
  next.close();
  await client.close();
}, 60_000);
