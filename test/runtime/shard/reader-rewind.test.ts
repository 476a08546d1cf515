// Exactly-once when a node's reader reads part of its stream again: a shard arriving behind the reader
// (its checkpoint below what the reader has handed out) makes it go back to that checkpoint, and every
// shard already attached is handed nothing twice — nor is a message delivered again by the server (its
// ack wait ran out). A runner that was handed a message twice used to apply an entity's last one again
// (the chaos run's device with two readings counted twice; apply.test.ts keeps that case).
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { CATCH_UP_AFTER } from "../../../runtime/stream-reader.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const nats = natsForFile();
const conn = () => nats.conn();
const SHARDS = 2;

it("a reader going back for a shard that arrives behind it hands the others nothing twice", async () => {
  const prefix = "redeliver";
  // ack wait 400 ms: what the reader has not acknowledged is sent again as well
  const runtime = await testNode(await conn(), { prefix, shards: SHARDS, runner: { commitIntervalMs: 100, ackWaitMs: 400 } });
  const client = new RuntimeClient(await conn(), { prefix, shards: SHARDS });
  const ids = Array.from({ length: 16 }, (_, i) => `e${i}`);
  const of = (s: number) => ids.filter((id) => client.shardOf(id) === s);
  expect(of(0).length * of(1).length).toBeGreaterThan(0);
  await runtime.host.start({ shard: 0, epoch: 1, owner: "n1" });
  for (let v = 1; v <= 3; v++) await Promise.all(ids.map((id) => client.send("counter", id, "add", { v })));
  for (const id of of(0)) await waitFor(async () => (await counterState(client, id)).n === 3, { message: `${id} applied` });
  await runtime.host.commitAll();

  // shard 1 arrives with nothing applied: the reader goes back to the stream's start for it
  await runtime.host.start({ shard: 1, epoch: 1, owner: "n1" });
  for (const id of of(1)) await waitFor(async () => (await counterState(client, id)).n === 3, { message: `${id} applied` });
  for (let v = 4; v <= 5; v++) await Promise.all(ids.map((id) => client.send("counter", id, "add", { v })));
  for (const id of ids) await waitFor(async () => (await counterState(client, id)).n === 5, { message: `${id} applied` });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ n: 5, sum: 15 });
  // no runner was handed a message twice: nothing had to be skipped as applied already
  expect((await runtime.metrics.redeliveriesSkipped.get()).values[0]?.value ?? 0).toBe(0);

  // and what is committed says the same to the next owner
  await runtime.host.stopAll();
  runtime.close();
  const next = await testNode(await conn(), { prefix, shards: SHARDS });
  for (let s = 0; s < SHARDS; s++) await next.host.start({ shard: s, epoch: 2, owner: "n2" });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ n: 5, sum: 15 });
  await next.host.stopAll();
  next.close();
  await client.close();
}, 60_000);

it("a shard arriving far behind a live reader catches up with a reader of its own and is handed over: nothing lost, nothing twice", async () => {
  const prefix = "catchup";
  const logged: string[] = [];
  const runtime = await testNode(await conn(), { prefix, shards: SHARDS, runner: { commitIntervalMs: 100 }, log: (_level, msg) => void logged.push(msg) });
  // one message a send: the gap is thousands of messages
  const client = new RuntimeClient(await conn(), { prefix, shards: SHARDS, maxBatchItems: 1 });
  const ids = Array.from({ length: 16 }, (_, i) => `c${i}`);
  const of = (s: number) => ids.filter((id) => client.shardOf(id) === s);
  await runtime.host.start({ shard: 0, epoch: 1, owner: "n1" });
  const ROUNDS = Math.ceil((CATCH_UP_AFTER * 1.5) / ids.length);
  for (let v = 1; v <= ROUNDS; v++) await Promise.all(ids.map((id) => client.send("counter", id, "add", { v })));
  for (const id of of(0)) await waitFor(async () => (await counterState(client, id)).n === ROUNDS, { message: `${id} applied` });

  // shard 1 arrives with nothing applied, the reader live and far past it
  await runtime.host.start({ shard: 1, epoch: 1, owner: "n1" });
  expect(logged).toContain("shard catching up with its own reader");
  // the others go on meanwhile
  await Promise.all(of(0).map((id) => client.send("counter", id, "add", { v: 0 })));
  for (const id of of(0)) await waitFor(async () => (await counterState(client, id)).n === ROUNDS + 1, { message: `${id} applied while shard 1 catches up` });
  await waitFor(() => logged.includes("shard caught up, read with the others"), { timeoutMs: 20_000, message: "handed over" });
  await Promise.all(ids.map((id) => client.send("counter", id, "add", { v: 0 })));
  const sum = (ROUNDS * (ROUNDS + 1)) / 2;
  for (const id of of(0)) await waitFor(async () => (await counterState(client, id)).n === ROUNDS + 2, { message: `${id} applied` });
  for (const id of of(1)) await waitFor(async () => (await counterState(client, id)).n === ROUNDS + 1, { message: `${id} applied` });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ sum });
  expect((await runtime.metrics.redeliveriesSkipped.get()).values[0]?.value ?? 0).toBe(0);
  await runtime.host.stopAll();
  runtime.close();
  await client.close();
}, 60_000);
