// A shard's input consumers across owners, against a real nats-server: a start finds the previous
// owner's consumer by name (no listing of every shard's consumers on its path), so after a planned
// move, a crash or a left-over consumer of a racing claim, only the current epoch's consumer remains —
// and a newer owner's consumer is never touched. The sweep of older epochs' consumers tries again while
// listing them fails, as it does while a cluster restarts.
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/nats-core";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import { deleteStaleConsumers, type ConsumerEnv } from "../../../runtime/shard/consumer.ts";
import { defaultShardRunnerOptions } from "../../../runtime/shard/options.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "sc";
const names = namesOf(PREFIX);
const nats = natsForFile();
const conn = () => nats.conn();

async function node(): Promise<NodeRuntime> {
  return testNode(await conn(), { prefix: PREFIX, shards: 1, runner: { commitIntervalMs: 50 } });
}

async function consumers(jsm: JetStreamManager): Promise<string[]> {
  const out: string[] = [];
  for await (const ci of jsm.consumers.list(names.inputStream(0))) if (ci !== null) out.push(ci.name);
  return out.sort();
}

it("only the current epoch's consumer remains after a move, a crash and a racing claim; a newer one is left alone", async () => {
  const nc = await conn();
  const jsm = await jetstreamManager(nc);
  const client = new RuntimeClient(nc, { prefix: PREFIX, shards: 1 });
  const state = () => counterState(client, "c1");

  // planned move: the old owner deletes its own consumer once it committed
  const a = await node();
  await a.host.start({ shard: 0, epoch: 1, owner: "a" });
  await client.command("counter", "c1", "add", { v: 1 });
  await a.host.stop(0, "move");
  const b = await node();
  await b.host.start({ shard: 0, epoch: 2, owner: "b" });
  await waitFor(async () => (await consumers(jsm)).join() === "shard-0-e2", { message: "only e2 after the move" });

  // crash: the next owner deletes the crashed owner's consumer by name (the epoch in the fence it replaced)
  await client.command("counter", "c1", "add", { v: 1 });
  b.host.abort(0, "simulated crash");
  const c = await node();
  await c.host.start({ shard: 0, epoch: 3, owner: "c" });
  expect(await consumers(jsm), "deleted before the start returned").toEqual(["shard-0-e3"]);

  // left-overs: one of an older epoch (a claim that lost a race), and one of a newer epoch (a newer owner)
  const orphan = { filter_subject: names.input(0), ack_policy: AckPolicy.All };
  await jsm.consumers.add(names.inputStream(0), { ...orphan, durable_name: names.shardConsumer(0, 1) });
  await jsm.consumers.add(names.inputStream(0), { ...orphan, durable_name: names.shardConsumer(0, 9) });
  await client.command("counter", "c1", "add", { v: 1 });
  await c.host.stop(0, "move");
  const d = await node();
  await d.host.start({ shard: 0, epoch: 4, owner: "d" });
  await waitFor(async () => (await consumers(jsm)).join() === "shard-0-e4,shard-0-e9", { message: "older left-overs swept, the newer one kept" });

  // and nothing was lost or applied twice on the way
  await client.command("counter", "c1", "add", { v: 1 });
  expect(await state()).toMatchObject({ n: 4, sum: 4 });
  await d.host.stopAll();
  for (const n of [a, b, c, d]) n.close();
  await client.close();
}, 60_000);

it("stale consumers are swept even when listing them fails at first (a cluster restarting), and never after the epoch ends", async () => {
  const nc = await conn();
  const jsm = await jetstreamManager(nc);
  const stream = names.inputStream(0);
  await jsm.streams.add({ name: stream, subjects: [names.input(0)] }).catch(() => undefined);
  const orphan = { filter_subject: names.input(0), ack_policy: AckPolicy.All };
  for (const epoch of [20, 21]) await jsm.consumers.add(stream, { ...orphan, durable_name: names.shardConsumer(0, epoch) });

  // the real manager, except that its first two listings time out as during a restart of every server
  let refusals = 2;
  const failingAtFirst = new Proxy(jsm.consumers, {
    get(target, key, receiver) {
      if (key === "list" && refusals > 0) {
        refusals--;
        return () => {
          throw new natsErrors.TimeoutError();
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const logged: string[] = [];
  let ended = false;
  const env: ConsumerEnv = {
    deps: {
      js: jetstream(nc),
      jsm: { ...jsm, consumers: failingAtFirst } as JetStreamManager,
      names,
      inputStream: stream,
      options: defaultShardRunnerOptions,
      log: (_level, message) => logged.push(message),
    },
    shard: 0,
    epoch: 22,
    askAgain: (request) => request(),
    stopped: () => ended,
  };
  await deleteStaleConsumers(env, { withinMs: 10_000, backoff: { firstMs: 50, maxMs: 100 } });
  expect(refusals).toBe(0);
  expect((await consumers(jsm)).filter((n) => n.startsWith("shard-0-e2"))).toEqual([]);
  expect(logged).toEqual(["stale consumers not cleaned up yet, trying again", "stale consumers cleaned up"]);

  // an epoch that ended stops trying at its next failure
  await jsm.consumers.add(stream, { ...orphan, durable_name: names.shardConsumer(0, 21) });
  refusals = 1_000;
  ended = true;
  await deleteStaleConsumers(env, { withinMs: 10_000, backoff: { firstMs: 50, maxMs: 100 } });
  expect(refusals).toBe(999);
  expect(await consumers(jsm)).toContain(names.shardConsumer(0, 21));
  await jsm.consumers.delete(stream, names.shardConsumer(0, 21));
}, 30_000);
