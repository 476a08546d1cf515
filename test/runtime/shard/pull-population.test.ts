// A node's waiting pulls on an input stream stay few however often its client resets them. nats.js's consume() pulls
// afresh when two idle heartbeats go missing (nats-server saturated, or paused as here), while the
// earlier pulls stay waiting on the server; each of those, expiring with messages left, makes the client
// pull again — so the population never shrinks. At a million twins the registration's load left ~45
// waiting pulls per shard, each with a heartbeat a second and an expiry every 5 s (docs/BENCHMARKS.md,
// "The node at a million twins"). The reader's consumer's `max_waiting` bounds them. A reader that misses
// its heartbeats asks the server for its consumer: kept when the server still has it (a silence is not a
// loss — a node held back by its replay was silent too, and made its consumer again every few seconds),
// made again when the server does not answer (it may have died with it), the old one deleted.
import { jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { MAX_WAITING_PULLS } from "../../../runtime/stream-reader.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "pp";
const names = namesOf(PREFIX);
const nats = natsForFile();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("keeps at most MAX_WAITING_PULLS pulls waiting after repeated heartbeat losses, and goes on applying", { timeout: 120_000 }, async () => {
  const nc = await nats.conn();
  const jsm = await jetstreamManager(nc);
  const node = await testNode(nc, { prefix: PREFIX, shards: 1, runner: { commitIntervalMs: 50, pullExpiresMs: 5_000 } });
  await node.host.start({ shard: 0, epoch: 1, owner: "a" });
  const client = new RuntimeClient(await nats.conn(), { prefix: PREFIX, shards: 1 });
  await client.command("counter", "c1", "add", { v: 1 });
  const readers = async () => {
    const out: Array<{ name: string; waiting: number }> = [];
    for await (const ci of jsm.consumers.list(names.inputStream(0))) if (ci?.name.startsWith("node_") === true) out.push({ name: ci.name, waiting: ci.num_waiting });
    return out;
  };
  await waitFor(async () => (await readers()).length === 1, { message: "the reader's consumer" });
  const [before] = await readers();
  // the server paused longer than two heartbeats (1 s each with 5-s pulls): the client resets its pulls each time
  for (let i = 0; i < 6; i++) {
    process.kill(nats.server.pid, "SIGSTOP");
    await sleep(3_500);
    process.kill(nats.server.pid, "SIGCONT");
    await sleep(1_000);
  }
  // the server answered for the consumer after each silence: the same one, never made again
  const after = await readers();
  expect(after.map((r) => r.name)).toEqual([before!.name]);
  // without the bound: 7 (the first pull and one per pause)
  expect(after[0]!.waiting).toBeLessThanOrEqual(MAX_WAITING_PULLS);
  await client.command("counter", "c1", "add", { v: 2 });
  await waitFor(async () => (await counterState(client, "c1"))?.sum === 3, { message: "applied after the pauses" });

  // silent past the JetStream API timeout (10 s): no answer for the consumer, taken for lost and made again
  process.kill(nats.server.pid, "SIGSTOP");
  await sleep(13_000);
  process.kill(nats.server.pid, "SIGCONT");
  await waitFor(async () => {
    const now = await readers();
    return now.length === 1 && now[0]!.name !== before!.name;
  }, { timeoutMs: 20_000, message: "a new reader consumer, the old one deleted" });
  await client.command("counter", "c1", "add", { v: 4 });
  await waitFor(async () => (await counterState(client, "c1"))?.sum === 7, { message: "applied with the new consumer" });
  await node.close();
});
