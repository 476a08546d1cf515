// A node's waiting pulls on an input stream stay few however often its client resets them. nats.js's consume() pulls
// afresh when two idle heartbeats go missing (nats-server saturated, or paused as here), while the
// earlier pulls stay waiting on the server; each of those, expiring with messages left, makes the client
// pull again — so the population never shrinks. At a million twins the registration's load left ~45
// waiting pulls per shard, each with a heartbeat a second and an expiry every 5 s (docs/BENCHMARKS.md,
// "The node at a million twins"). The reader's consumer's `max_waiting` bounds them, and a reader that
// misses its heartbeats makes its consumer again (its server may have died with it), the old one deleted.
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

it("keeps at most MAX_WAITING_PULLS pulls waiting after repeated heartbeat losses, and goes on applying", { timeout: 90_000 }, async () => {
  const nc = await nats.conn();
  const jsm = await jetstreamManager(nc);
  const node = await testNode(nc, { prefix: PREFIX, shards: 1, runner: { commitIntervalMs: 50, pullExpiresMs: 5_000 } });
  await node.host.start({ shard: 0, epoch: 1, owner: "a" });
  const client = new RuntimeClient(await nats.conn(), { prefix: PREFIX, shards: 1 });
  await client.command("counter", "c1", "add", { v: 1 });
  const readers = async () => {
    const out: number[] = [];
    for await (const ci of jsm.consumers.list(names.inputStream(0))) if (ci?.name.startsWith("node_") === true) out.push(ci.num_waiting);
    return out;
  };
  // the server paused longer than two heartbeats (1 s each with 5-s pulls): the client resets its pulls each time
  for (let i = 0; i < 6; i++) {
    process.kill(nats.server.pid, "SIGSTOP");
    await sleep(3_500);
    process.kill(nats.server.pid, "SIGCONT");
    await sleep(1_000);
  }
  // the consumers made before the pauses' last are deleted (or were dropped by the server: inactive)
  await waitFor(async () => (await readers()).length === 1, { timeoutMs: 10_000, message: "one reader consumer left" });
  // without the bound: 7 (the first pull and one per pause)
  expect((await readers())[0]).toBeLessThanOrEqual(MAX_WAITING_PULLS);
  await client.command("counter", "c1", "add", { v: 2 });
  await waitFor(async () => (await counterState(client, "c1"))?.sum === 3, { message: "applied after the pauses" });
  await node.close();
});
