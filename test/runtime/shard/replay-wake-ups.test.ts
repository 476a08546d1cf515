// A replay does not fire a wake-up ahead of input stored before it. A twin's offline deadline is a
// wake-up; after a crash or a move the next owner replays minutes of the log, and a deadline that the
// wall clock has passed may be one the device's own readings, waiting in that backlog, moved on. Fired
// by the wall clock, every such twin raised `offline` and then `online` with its next replayed reading
// (docs/BENCHMARKS.md, "A node killed in service"). Here: counter "moved" asks for a wake-up at T; with no
// node running, the log gets slow inputs and then "moved"'s wake-up moved an hour on — all stored before T;
// the next owner starts after T. "moved" must never tick; "kept", whose wake-up nothing moved, ticks once
// the replay has reached T.
import { jetstreamManager } from "@nats-io/jetstream";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { busyApply } from "../busy-behavior.ts";
import { counterBehavior } from "../counter-behavior.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "rwake";
const nats = natsForFile();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("fires no wake-up ahead of the replayed input stored before it, and the others once the replay reaches them", { timeout: 60_000 }, async () => {
  const nc = await nats.conn();
  const runner = { commitIntervalMs: 50, wakeIntervalMs: 20 };
  const behaviors = [counterBehavior, busyApply];
  const a = await testNode(nc, { prefix: PREFIX, shards: 1, runner, behaviors });
  await a.host.start({ shard: 0, epoch: 1, owner: "a" });
  const client = new RuntimeClient(await nats.conn(), { prefix: PREFIX, shards: 1 });
  const due = Date.now() + 4000;
  await client.command("counter", "moved", "wake", { at: due });
  await client.command("counter", "kept", "wake", { at: due });
  await a.close(); // both twins written with their wake-ups; nobody reads the log now

  // the backlog: 80 messages of 25 ms of applying each (the timers get their turns between them), then
  // "moved"'s wake-up an hour on — every message stored before `due`
  for (let i = 0; i < 80; i++) await client.send("busy", `b${i % 10}`, "work", { ms: 25 });
  await client.send("counter", "moved", "wake", { at: due + 3_600_000 });
  expect(Date.now(), "the backlog was stored before the wake-ups' time").toBeLessThan(due);
  await sleep(due - Date.now() + 500);

  const b = await testNode(nc, { prefix: PREFIX, shards: 1, runner, behaviors });
  await b.host.start({ shard: 0, epoch: 2, owner: "b" });
  await waitFor(async () => (await counterState(client, "kept")).ticks === 1, { timeoutMs: 20_000, message: "kept's wake-up fired after the replay" });
  const moved = await counterState(client, "moved");
  expect(moved.wakeAt, "moved on by the replayed input").toBe(due + 3_600_000);
  expect(moved.ticks, "moved never woke").toBe(0);
  // and no tick of it was published
  const jsm = await jetstreamManager(nc);
  const names = namesOf(PREFIX);
  const ticked = await jsm.streams.getMessage(names.outputStream, { last_by_subj: `${PREFIX}.out.tick.moved` }).catch(() => null);
  expect(ticked).toBeNull();
  await b.close();
});
