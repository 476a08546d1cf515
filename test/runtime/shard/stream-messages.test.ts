// Messages holding items of several shards (a client that knows the stream count batches per stream,
// `<prefix>.in.g<k>`), against a real nats-server: two nodes share the shards of two streams; each node's
// reader hands every shard it runs its own items and nothing else, once, with their place in the message
// (output ids as a per-shard message would give them); a shard moving reads on from its checkpoint; and a
// client told the wrong stream count gets its items of the other stream's shards dead-lettered, not lost
// without a trace.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { decode } from "../../../runtime/codec.ts";
import type { DeadLetter } from "../../../runtime/dead-letter.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const nats = natsForFile();
const conn = () => nats.conn();
const PREFIX = "smsg";
const SHARDS = 4;
const STREAMS = 2;
const names = namesOf(PREFIX);

it("several shards' items in one message: each node's shards get theirs once, through a move; a client with the wrong stream count is dead-lettered", async () => {
  const a = await testNode(await conn(), { prefix: PREFIX, shards: SHARDS, streams: STREAMS, runner: { commitIntervalMs: 50 } });
  const b = await testNode(await conn(), { prefix: PREFIX, shards: SHARDS, streams: STREAMS, runner: { commitIntervalMs: 50 } });
  // a runs shards 0 and 2 (one of each stream), b runs 1 and 3
  for (const s of [0, 2]) await a.host.start({ shard: s, epoch: 1, owner: "a" });
  for (const s of [1, 3]) await b.host.start({ shard: s, epoch: 1, owner: "b" });
  const client = new RuntimeClient(await conn(), { prefix: PREFIX, shards: SHARDS, streams: STREAMS });
  const ids = Array.from({ length: 24 }, (_, i) => `m${i}`);
  const send = (from: number, to: number) => Promise.all(ids.flatMap((id) => Array.from({ length: to - from }, (_, i) => client.send("counter", id, "add", { v: from + i }))));
  await send(0, 10);

  const jsm = await jetstreamManager(await conn());
  // the readings of many shards went into few messages, on the streams' group subjects
  let stored = 0;
  for (let k = 0; k < STREAMS; k++) {
    const info = await jsm.streams.info(names.inputStream(k), { subjects_filter: ">" });
    expect(Object.keys(info.state.subjects ?? {}), `stream ${k}`).toEqual([names.inputGroup(k)]);
    stored += info.state.messages;
  }
  expect(stored).toBeLessThan(ids.length * 10);
  for (const id of ids) await waitFor(async () => (await counterState(client, id)).n === 10, { message: `${id} applied` });

  // shard 2 moves from a to b mid-stream: b's reader of stream 1 goes back to its checkpoint for it
  await a.host.stop(2, "move");
  await b.host.start({ shard: 2, epoch: 2, owner: "b" });
  await send(10, 20);
  for (const id of ids) await waitFor(async () => (await counterState(client, id)).n === 20, { message: `${id} applied after the move` });
  for (const id of ids) expect(await counterState(client, id), id).toMatchObject({ n: 20, sum: (20 * 19) / 2 });
  // each n = 10 and 20 emits an output whose id names the twin and its count: one each, none twice
  const out = await jetstream(await conn()).consumers.get(`${PREFIX.toUpperCase()}_OUT`);
  const outputs: string[] = [];
  for await (const m of await out.fetch({ max_messages: 1000, expires: 2000 })) {
    outputs.push(m.headers?.get("Nats-Msg-Id") ?? "");
    if (m.info.pending === 0) break;
  }
  expect(outputs.sort()).toEqual(ids.flatMap((id) => [`${id}:10`, `${id}:20`]).sort());

  // a client that takes the cluster for one stream sends every item to stream 0's group subject: those of
  // stream 1's shards are dead letters, stream 0's are applied
  const wrong = new RuntimeClient(await conn(), { prefix: PREFIX, shards: SHARDS, streams: 1 });
  await Promise.all(ids.map((id) => wrong.send("counter", id, "add", { v: 100 })));
  const ofStream0 = ids.filter((id) => [0, 1].includes(client.shardOf(id)));
  const ofStream1 = ids.filter((id) => !ofStream0.includes(id));
  for (const id of ofStream0) await waitFor(async () => (await counterState(client, id)).n === 21, { message: `${id} applied from the wrong client` });
  const dlq = await jetstream(await conn()).consumers.get(names.deadLetterStream);
  const letters: DeadLetter[] = [];
  await waitFor(async () => {
    for await (const m of await dlq.fetch({ max_messages: 100, expires: 1000 })) letters.push(decode<DeadLetter>(m.data));
    return letters.length >= ofStream1.length;
  }, { message: "the misrouted items dead-lettered" });
  expect(letters.map((l) => l.entity?.id).sort()).toEqual([...ofStream1].sort());
  expect(letters.every((l) => l.reason === "refused" && l.error.includes("not held by input stream"))).toBe(true);
  for (const id of ofStream1) expect((await counterState(client, id)).n, id).toBe(20);

  await a.host.stopAll();
  await b.host.stopAll();
  a.close();
  b.close();
  await client.close();
  await wrong.close();
}, 60_000);
