// Passivation against a real nats-server: a resident entity keeps no copy of its snapshot in memory, so a
// passivated one comes back from its bucket — with exactly the state it had, its inputs after that
// applied once, and its wake-up kept.
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const SHARDS = 4;

const nats = natsForFile();
const conn = () => nats.conn();

it("passivated entities come back from their snapshots exactly, and keep their wake-ups", async () => {
  const rt = await testNode(await conn(), { prefix: "pv", shards: SHARDS, runner: { commitIntervalMs: 50, idlePassivateMs: 300, wakeIntervalMs: 50 } });
  for (let s = 0; s < SHARDS; s++) await rt.host.start({ shard: s, epoch: 1, owner: "n1" });
  const client = new RuntimeClient(await conn(), { prefix: "pv", shards: SHARDS });
  const ids = Array.from({ length: 30 }, (_, i) => `p${i}`);
  const resident = async () => (await rt.metrics.residentEntities.get()).values[0]?.value ?? 0;
  const applied = async () => (await rt.metrics.itemsApplied.get()).values.reduce((n, v) => n + v.value, 0);
  const send = (from: number, n: number) => Promise.all(ids.flatMap((id) => Array.from({ length: n }, (_, i) => client.send("counter", id, "add", { v: from + i }))));

  await send(0, 20);
  await waitFor(async () => (await applied()) === ids.length * 20, { message: "first inputs applied" });
  // p0 asks to be woken in 1.5 s, after it has been passivated
  await client.command("counter", "p0", "wake", { at: Date.now() + 1500 });
  await waitFor(async () => (await resident()) === 0, { timeoutMs: 10_000, message: "every entity passivated once committed and idle" });

  await send(20, 10);
  const state = (id: string) => counterState(client, id);
  await waitFor(async () => (await applied()) === ids.length * 30 + 1, { message: "later inputs applied" });
  for (const id of ids) expect(await state(id), id).toMatchObject({ n: 30, sum: (30 * 29) / 2 });
  await waitFor(async () => (await state("p0")).ticks === 1, { timeoutMs: 10_000, message: "p0 woken although it was passivated" });

  // passivated again, then a new owner: the committed state is the same
  await rt.host.commitAll();
  await waitFor(async () => (await resident()) === 0, { timeoutMs: 10_000, message: "passivated again" });
  await rt.host.stopAll();
  rt.close();
  const next = await testNode(await conn(), { prefix: "pv", shards: SHARDS });
  for (let s = 0; s < SHARDS; s++) await next.host.start({ shard: s, epoch: 2, owner: "n2" });
  for (const id of ids) expect(await state(id), id).toMatchObject({ n: 30, sum: (30 * 29) / 2 });
  expect((await state("p0")).ticks).toBe(1);
  await next.host.stopAll();
  next.close();
  await client.close();
}, 60_000);
