// The input stream's consumers across owners, against a real nats-server: a node reads the stream with
// one consumer of its own (`node_*`, runtime/stream-reader.ts), gone once its last shard of the stream
// stops; the per-shard consumers of versions before the readers (`shard-<s>-e<epoch>`) are swept at a
// shard's start when their epoch is older — a newer owner's is never touched — from one listing of the
// stream per node, not one per shard's start. The sweep tries again while listing them fails, as it does
// while a cluster restarts.
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { errors as natsErrors } from "@nats-io/nats-core";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import { isConsumerNotFound } from "../../../runtime/jetstream-errors.ts";
import { deleteStaleConsumers, LegacyConsumers, type ConsumerEnv } from "../../../runtime/shard/consumer.ts";
import { defaultShardRunnerOptions } from "../../../runtime/shard/options.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "sc";
const names = namesOf(PREFIX);
const nats = natsForFile();
const conn = () => nats.conn();

async function node(prefix = PREFIX, shards = 1): Promise<NodeRuntime> {
  return testNode(await conn(), { prefix, shards, runner: { commitIntervalMs: 50 } });
}

async function consumers(jsm: JetStreamManager): Promise<string[]> {
  const out: string[] = [];
  for await (const ci of jsm.consumers.list(names.inputStream(0))) if (ci !== null) out.push(ci.name.startsWith("node_") ? "node_*" : ci.name);
  return out.sort();
}

it("a node reads with one consumer of its own, gone when its shards stop; older epochs' per-shard consumers are swept, a newer one is left alone", async () => {
  const nc = await conn();
  const jsm = await jetstreamManager(nc);
  const client = new RuntimeClient(nc, { prefix: PREFIX, shards: 1 });
  const state = () => counterState(client, "c1");

  // a planned move: the old owner's reader lets go of its consumer with its last shard
  const a = await node();
  await a.host.start({ shard: 0, epoch: 1, owner: "a" });
  await client.command("counter", "c1", "add", { v: 1 });
  expect(await consumers(jsm)).toEqual(["node_*"]);
  await a.host.stop(0, "move");
  await waitFor(async () => (await consumers(jsm)).length === 0, { message: "the reader's consumer gone with the shard" });

  // left-overs of a version before the readers: one of an older epoch, one of a newer (a newer owner's)
  const orphan = { filter_subject: names.input(0), ack_policy: AckPolicy.All };
  await jsm.consumers.add(names.inputStream(0), { ...orphan, durable_name: names.shardConsumer(0, 1) });
  await jsm.consumers.add(names.inputStream(0), { ...orphan, durable_name: names.shardConsumer(0, 9) });
  const b = await node();
  await b.host.start({ shard: 0, epoch: 4, owner: "b" });
  await waitFor(async () => (await consumers(jsm)).join() === "node_*,shard-0-e9", { message: "the older left-over swept, the newer one kept" });
  await jsm.consumers.delete(names.inputStream(0), names.shardConsumer(0, 9));

  // a crash: the next owner reads with a consumer of its own
  await client.command("counter", "c1", "add", { v: 1 });
  b.host.abort(0, "simulated crash");
  const c = await node();
  await c.host.start({ shard: 0, epoch: 5, owner: "c" });
  await waitFor(async () => (await consumers(jsm)).join() === "node_*", { message: "one reader's consumer" });

  // and nothing was lost or applied twice on the way
  await client.command("counter", "c1", "add", { v: 1 });
  expect(await state()).toMatchObject({ n: 3, sum: 3 });
  await c.host.stopAll();
  for (const n of [a, b, c]) n.close();
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
  const failing = { ...jsm, consumers: failingAtFirst } as JetStreamManager;
  const env: ConsumerEnv = {
    deps: {
      js: jetstream(nc),
      jsm: failing,
      names,
      inputStream: stream,
      legacyConsumers: new LegacyConsumers(failing, stream),
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

  // an epoch that ended stops trying at its next failure (on a node that has not listed the stream yet)
  await jsm.consumers.add(stream, { ...orphan, durable_name: names.shardConsumer(0, 21) });
  refusals = 1_000;
  ended = true;
  await deleteStaleConsumers({ ...env, deps: { ...env.deps, legacyConsumers: new LegacyConsumers(failing, stream) } }, { withinMs: 10_000, backoff: { firstMs: 50, maxMs: 100 } });
  expect(refusals).toBe(999);
  expect(await consumers(jsm)).toContain(names.shardConsumer(0, 21));
  await jsm.consumers.delete(stream, names.shardConsumer(0, 21));
}, 30_000);

it("a node lists a stream's consumers once for all its shards of it; each shard's start sweeps its own older left-overs from that listing", async () => {
  const SHARDS = 4;
  const names = namesOf("sl");
  const nc = await conn();
  const jsm = await jetstreamManager(nc);
  const stream = names.inputStream(0);
  const a = await node("sl", SHARDS);
  // the listings of the stream's consumers, as nats-server receives them (the test itself only asks by name)
  let listings = 0;
  const listed = nc.subscribe(`$JS.API.CONSUMER.LIST.${stream}`, { callback: () => void listings++ });
  await nc.flush();
  const orphan = { ack_policy: AckPolicy.All };
  for (let s = 0; s < SHARDS; s++) await jsm.consumers.add(stream, { ...orphan, filter_subject: names.input(s), durable_name: names.shardConsumer(s, 1) });
  await jsm.consumers.add(stream, { ...orphan, filter_subject: names.input(2), durable_name: names.shardConsumer(2, 9) });
  const exists = (name: string) => jsm.consumers.info(stream, name).then(
    () => true,
    (err: unknown) => (isConsumerNotFound(err) ? false : Promise.reject(err)),
  );

  // a cold start: shards starting together share one listing
  await Promise.all([0, 1].map((shard) => a.host.start({ shard, epoch: 2, owner: "a" })));
  await waitFor(async () => !(await exists(names.shardConsumer(0, 1))) && !(await exists(names.shardConsumer(1, 1))), { message: "shards 0 and 1: their older left-overs swept" });
  // later starts sweep from the same listing: shard 2's older one goes, its newer one (a newer owner's) stays
  await a.host.start({ shard: 2, epoch: 2, owner: "a" });
  await a.host.start({ shard: 3, epoch: 2, owner: "a" });
  await waitFor(async () => !(await exists(names.shardConsumer(2, 1))) && !(await exists(names.shardConsumer(3, 1))), { message: "shards 2 and 3: their older left-overs swept" });
  expect(await exists(names.shardConsumer(2, 9))).toBe(true);
  // shard 2 back under a newer epoch than the newer owner's: its left-over goes too, still without listing again
  await a.host.stop(2, "move");
  await a.host.start({ shard: 2, epoch: 10, owner: "a" });
  await waitFor(async () => !(await exists(names.shardConsumer(2, 9))), { message: "shard 2's left-over of epoch 9 swept under epoch 10" });
  await nc.flush();
  expect(listings).toBe(1);

  listed.unsubscribe();
  await a.host.stopAll();
  a.close();
}, 60_000);
