// The shard runner against a real nats-server: exact state after apply/commit, replay after a crash
// without double-applying, fencing of a zombie owner, wake-ups across restarts, command replies.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { outputStreamConfig } from "../../../runtime/cluster-setup.ts";
import type { LogFn } from "../../../runtime/log.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { busyApply } from "../busy-behavior.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const SHARDS = 4;

const nats = natsForFile();
const conn = () => nats.conn();

async function node(prefix: string, runner = {}, log?: LogFn): Promise<NodeRuntime> {
  return testNode(await conn(), { prefix, shards: SHARDS, runner: { commitIntervalMs: 100, wakeIntervalMs: 50, ...runner }, ...(log === undefined ? {} : { log }) });
}

async function startAll(n: NodeRuntime, epoch: number): Promise<void> {
  for (let s = 0; s < SHARDS; s++) await n.host.start({ shard: s, epoch, owner: `node-e${epoch}` });
}

/** Sends `perEntity` adds of value i to each entity; returns the expected sums. */
async function sendAdds(client: RuntimeClient, ids: string[], perEntity: number, base = 0): Promise<void> {
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < perEntity; i++) for (const id of ids) sends.push(client.send("counter", id, "add", { v: base + i }));
  await Promise.all(sends);
}

const sum = (from: number, n: number) => (n * (2 * from + n - 1)) / 2;

describe("shard runner", () => {
  it("applies every input once and answers live queries", async () => {
    const a = await node("t1");
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t1", shards: SHARDS });
    const ids = Array.from({ length: 40 }, (_, i) => `dev-${i}`);
    await sendAdds(client, ids, 50);
    for (const id of ids) {
      await waitFor(async () => (await counterState(client, id)).n === 50, { message: `${id} applied` });
      expect((await counterState(client, id)).sum).toBe(sum(0, 50));
    }
    await a.host.stopAll();
    a.close();
    await client.close();
  });

  it("a new owner resumes from the committed state and skips what a crashed owner already wrote", async () => {
    const a = await node("t2");
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t2", shards: SHARDS });
    const ids = Array.from({ length: 20 }, (_, i) => `d${i}`);
    await sendAdds(client, ids, 30);
    await waitFor(async () => (await counterState(client, "d19")).n === 30);
    await a.host.commitAll();
    await sendAdds(client, ids, 30, 30); // applied in memory, maybe committed, not all
    await waitFor(async () => (await counterState(client, "d19")).n === 60);
    // crash: no planned stop, no final commit
    for (let s = 0; s < SHARDS; s++) a.host.abort(s, "simulated crash");
    a.close();
    const b = await node("t2");
    await startAll(b, 2);
    await sendAdds(client, ids, 10, 60);
    for (const id of ids) {
      await waitFor(async () => (await counterState(client, id)).n === 70, { message: `${id} at 70` });
      expect((await counterState(client, id)).sum).toBe(sum(0, 70));
    }
    await b.host.stopAll();
    b.close();
    await client.close();
  });

  it("fences a zombie: the old owner's next write is refused and it stops; state stays exact", async () => {
    // the old owner has applied inputs it has not committed yet when it is "paused" and loses its leases
    const a = await node("t3", { commitIntervalMs: 60_000 });
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t3", shards: SHARDS });
    const ids = Array.from({ length: 16 }, (_, i) => `z${i}`);
    const failed: number[] = [];
    a.host.onShardFailed = (shard) => failed.push(shard);
    await sendAdds(client, ids, 5);
    await waitFor(async () => (await counterState(client, "z15")).n === 5);
    // a new owner takes every shard while the old one still runs
    const b = await node("t3");
    await startAll(b, 2);
    // the zombie wakes up and tries to commit: every write is refused, every shard stops
    await a.host.commitAll().catch(() => undefined);
    // it stops every shard: by a refused write, or on seeing its consumer deleted (then its restart's claim is refused)
    await waitFor(() => new Set(failed).size === SHARDS, { message: "every zombie shard stopped" });
    await waitFor(async () => ((await a.metrics.fencingRejections.get()).values[0]?.value ?? 0) >= SHARDS, { message: "refusals counted" });
    await waitFor(() => a.host.owned().length === 0, { message: "zombie serves nothing" });
    await sendAdds(client, ids, 5, 5);
    for (const id of ids) {
      await waitFor(async () => (await counterState(client, id)).n === 10, { message: `${id} at 10` });
      expect((await counterState(client, id)).sum).toBe(sum(0, 10));
    }
    await b.host.stopAll();
    a.close();
    b.close();
    await client.close();
  });

  it("replies to commands after applying them, and fires wake-ups once, also after a restart", async () => {
    const a = await node("t4");
    await startAll(a, 1);
    const nc = await conn();
    const client = new RuntimeClient(nc, { prefix: "t4", shards: SHARDS });
    const reply = await client.command("counter", "w1", "add", { v: 7 });
    expect(reply).toMatchObject({ ok: true, value: { n: 1 } });
    const soon = Date.now() + 300;
    await client.command("counter", "w1", "wake", { at: soon });
    await client.command("counter", "w2", "wake", { at: Date.now() + 60_000 });
    await waitFor(async () => (await counterState(client, "w1")).ticks === 1, { message: "w1 woke" });
    // w2's timer is in its snapshot: it survives a planned restart
    await client.command("counter", "w2", "wake", { at: Date.now() + 1500 });
    await a.host.stopAll();
    a.close();
    const b = await node("t4");
    await startAll(b, 2);
    await waitFor(async () => (await counterState(client, "w2")).ticks === 1, { timeoutMs: 5000, message: "w2 woke after restart" });
    expect((await counterState(client, "w1")).ticks).toBe(1);
    // the tick outputs were published once each
    const js = jetstream(nc);
    const c = await js.consumers.get("T4_OUT", { filter_subjects: "t4.out.tick.>" });
    const info = await c.info();
    expect(info.num_pending).toBe(2);
    await b.host.stopAll();
    b.close();
    await client.close();
  });

  it("erases an entity in log order: state and wake-up gone, later input starts fresh, also after a restart", async () => {
    const a = await node("t5");
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t5", shards: SHARDS });
    await sendAdds(client, ["gone", "kept"], 5);
    await client.command("counter", "gone", "wake", { at: Date.now() + 400 });
    // erased after the adds and the wake request, before the adds that follow (one log, one order)
    await client.erase("counter", "gone");
    await sendAdds(client, ["gone"], 2, 100);
    await waitFor(async () => (await counterState(client, "gone")).n === 2, { message: "fresh state took the later adds" });
    expect(await counterState(client, "gone")).toEqual({ id: "gone", n: 2, sum: 201, ticks: 0 });
    expect((await counterState(client, "kept")).n).toBe(5);
    // the erased wake-up never fires
    await new Promise((r) => setTimeout(r, 700));
    expect((await counterState(client, "gone")).ticks).toBe(0);
    // the erasure is committed: a new owner reads the fresh state back, not the old one
    await a.host.stopAll();
    a.close();
    const b = await node("t5");
    await startAll(b, 2);
    expect(await counterState(client, "gone")).toEqual({ id: "gone", n: 2, sum: 201, ticks: 0 });
    expect((await client.getSnapshot("counter", "gone"))?.appliedSeq).toBeGreaterThan(0);
    await b.host.stopAll();
    b.close();
    await client.close();
  });

  it("keeps one queued wake-up per entity however often it moves later, and fires once, at the latest time", async () => {
    const a = await node("t6");
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t6", shards: SHARDS });
    const base = Date.now();
    // 50 moves later (like a twin's offline timer with every reading), then one move earlier
    for (let i = 0; i < 50; i++) void client.send("counter", "mv", "wake", { at: base + 1000 + i * 10 });
    await client.command("counter", "mv", "wake", { at: base + 1500 });
    await client.command("counter", "early", "wake", { at: base + 5000 });
    await client.command("counter", "early", "wake", { at: base + 600 });
    const queued = (await a.metrics.timersQueued.get()).values[0]?.value ?? 0;
    expect(queued).toBeGreaterThanOrEqual(3); // mv's first entry, early's two entries (the later one superseded)
    expect(queued).toBeLessThanOrEqual(4); // one entry per move would be 53
    await waitFor(async () => (await counterState(client, "early")).ticks === 1, { message: "early woke" });
    await new Promise((r) => setTimeout(r, Math.max(0, base + 1300 - Date.now())));
    expect((await counterState(client, "mv")).ticks).toBe(0); // not at its first time (base + 1000)
    await waitFor(async () => (await counterState(client, "mv")).ticks === 1, { message: "mv woke at its latest time" });
    expect(Date.now()).toBeGreaterThanOrEqual(base + 1500);
    await new Promise((r) => setTimeout(r, 300));
    expect((await counterState(client, "mv")).ticks).toBe(1);
    expect((await counterState(client, "early")).ticks).toBe(1);
    // what is left: early's superseded entry (base + 5000), skipped when it comes due
    expect((await a.metrics.timersQueued.get()).values[0]?.value).toBe(1);
    await a.host.stopAll();
    a.close();
    await client.close();
  });

  it("keeps its shards while the output stream cannot store: a commit publishes the refused outputs again", async () => {
    // what a shard sees while the output stream elects a leader after a NATS server loss: every publish
    // refused at once ("no stream answered"); here the stream is gone for a while, then back
    const warnings: string[] = [];
    // every snapshot at every commit: "committed" shows as the twin's snapshot
    const a = await node("t7", { snapshotIntervalMs: 0 }, (level, msg) => void (level !== "info" && warnings.push(msg)));
    await startAll(a, 1);
    const client = new RuntimeClient(await conn(), { prefix: "t7", shards: SHARDS });
    const jsm = await jetstreamManager(await conn());
    const out = outputStreamConfig(a.names, { shards: SHARDS, streams: 1, replicas: 1 });
    await jsm.streams.delete(out.name);
    for (let i = 0; i < 10; i++) await client.send("counter", "o", "add", { v: i }); // the 10th emits an output
    await waitFor(async () => (await counterState(client, "o")).n === 10, { message: "applied" });
    await new Promise((r) => setTimeout(r, 800)); // several commits refused meanwhile
    await jsm.streams.add(out);
    await waitFor(async () => (await jsm.streams.info(out.name)).state.messages === 1, { message: "the output stored once the stream is back" });
    await waitFor(async () => (await client.getSnapshot("counter", "o"))?.appliedSeq !== undefined, { message: "committed" });
    // no restart from the checkpoint: the shards stayed with their first runner throughout
    expect(warnings).toEqual([]);
    expect(a.host.owned().sort()).toEqual([0, 1, 2, 3]);
    await a.host.stopAll();
    a.close();
    await client.close();
  });
  it("knows each shard's lag — input not yet applied — from what its reader saw, as the server counts it, without asking (housekeeping)", async () => {
    const a = await testNode(await conn(), { prefix: "t9", shards: SHARDS, behaviors: [busyApply], runner: { commitIntervalMs: 60_000, fetchBatch: 4 } });
    const client = new RuntimeClient(await conn(), { prefix: "t9", shards: SHARDS });
    // a backlog before the shards start: 80 messages of 15 ms of applying each, 1.2 s in all
    for (let i = 0; i < 80; i++) await client.send("busy", `b${i % 8}`, "work", { ms: 15 });
    await startAll(a, 1);
    const fresh = await a.host.lag();
    expect([...fresh.values()].reduce((x, y) => x + y, 0), "the backlog counted while it is applied").toBeGreaterThan(0);
    // applied (not yet committed: nothing of it is lag any more); a housekeeping round (every second) agrees with the server
    await waitFor(async () => [...(await a.host.lag()).values()].every((n) => n === 0), { timeoutMs: 10_000, message: "backlog applied" });
    await new Promise((r) => setTimeout(r, 1500));
    expect([...a.host.load().lag.values()]).toEqual(Array(SHARDS).fill(0));
    expect([...(await a.host.lag()).values()]).toEqual(Array(SHARDS).fill(0));
    await a.host.stopAll();
    a.close();
    await client.close();
  });
});
