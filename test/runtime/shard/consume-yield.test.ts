// A shard working through a backlog must keep the node's event loop turning: lease renewals,
// heartbeats and commits are timers, and a consume loop that only resumes through microtasks would
// starve them until the whole fetched buffer is applied (seconds), so a busy, healthy node lost its
// leases. Found by the process-level integration tests (test/integration/runtime).
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { timerGaps } from "../../harness/timer-gaps.ts";
import type { EntityBehavior } from "../../../runtime/entity.ts";
import { busyApply as busy, busyEncode, spin } from "../busy-behavior.ts";
import { natsForFile, testNode } from "../fixture.ts";

const nats = natsForFile();
const SHARDS = 8;

/** Starts every shard at once, as a node taking its shards does: their timers are set up together. */
async function startAll(runtime: Awaited<ReturnType<typeof testNode>>): Promise<void> {
  await Promise.all(Array.from({ length: SHARDS }, (_, shard) => runtime.host.start({ shard, epoch: 1, owner: "t" })));
}

/** Type "sleepy": input `{ at }` asks for a wake-up then; each wake-up takes 2 ms of CPU (an offline alert to publish). */
const sleepy: EntityBehavior<{ at?: number; woken: number }> = {
  type: "sleepy",
  create: () => ({ woken: 0 }),
  apply: (state, _kind, payload) => ({ state: { ...state, at: (payload as { at: number }).at }, outputs: [] }),
  query: (state) => ({ ...state }),
  nextWakeAt: (state) => state.at,
  tick(state) {
    spin(2);
    return { state: { woken: state.woken + 1 }, outputs: [] };
  },
  encode: (state) => new TextEncoder().encode(JSON.stringify(state)),
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as { at?: number; woken: number },
};

describe("shard runner under a backlog", () => {
  it("lets timers run between messages while it applies a fetched backlog", async () => {
    const nc = await nats.conn();
    const MESSAGES = 80;
    const WORK_MS = 25; // 2 s of apply work in all, all of it fetched in one pull
    const client = new RuntimeClient(nc, { prefix: "yield", shards: 1, maxBatchItems: 1 });
    const runtime = await testNode(nc, { prefix: "yield", shards: 1, behaviors: [busy], runner: { fetchBatch: 256 } });
    // a backlog: every input is logged before the shard starts
    await Promise.all(Array.from({ length: MESSAGES }, () => client.send("busy", "b1", "work", { ms: WORK_MS })));

    const gaps = timerGaps();
    try {
      await runtime.host.start({ shard: 0, epoch: 1, owner: "t" });
      await waitFor(async () => {
        const r = await client.get("busy", "b1", null);
        return r.ok && (r.value as { n: number }).n === MESSAGES;
      }, { timeoutMs: 20_000, message: "backlog applied" });
    } finally {
      gaps.stop();
    }
    // Without a macrotask turn between messages the gap is the whole backlog (~2000 ms); with one it is
    // about one message (25 ms) plus whatever the machine's load adds.
    expect(gaps.worstMs).toBeLessThan(700);
    await runtime.host.stopAll();
    runtime.close();
    await client.close();
  });

  it("lets timers run between wake-ups while 8 shards fire rounds of 50 due at once", async () => {
    const nc = await nats.conn();
    // 0.8 s of wake-up work in all; the shards' rounds fall due in the same timers phase (they started together)
    const TWINS = 400;
    const client = new RuntimeClient(nc, { prefix: "yieldwake", shards: SHARDS });
    const runtime = await testNode(nc, { prefix: "yieldwake", shards: SHARDS, behaviors: [sleepy], runner: { wakeIntervalMs: 50 } });
    await startAll(runtime);
    const at = Date.now() + 1500;
    await Promise.all(Array.from({ length: TWINS }, (_, i) => client.send("sleepy", `s${i}`, "sleep", { at })));
    await waitFor(async () => (await runtime.metrics.itemsApplied.get()).values.reduce((n, v) => n + v.value, 0) === TWINS, { message: "wake-ups asked for" });
    const gaps = timerGaps();
    try {
      await waitFor(async () => (await runtime.metrics.timersFired.get()).values.reduce((n, v) => n + v.value, 0) === TWINS, { timeoutMs: 20_000, message: "every wake-up fired" });
    } finally {
      gaps.stop();
    }
    // a round in one go: the gap is ~800 ms; a slice of each shard's round run in its timer callback: ~8 × 64
    // × 2 ms capped by the 50 a shard has, ~800 ms again; a step at a time within the shared turns: one step
    // (16 × 2 ms) plus the machine's load
    expect(gaps.worstMs).toBeLessThan(400);
    const r = await client.get("sleepy", "s7", null);
    expect(r.ok && r.value).toEqual({ woken: 1 });
    await runtime.host.stopAll();
    runtime.close();
    await client.close();
  });

  it("lets timers run while 8 shards compact 400 twins gone idle together", async () => {
    const nc = await nats.conn();
    const TWINS = 400;
    const slow = busyEncode(2); // 0.8 s of encoding to compact them all
    const client = new RuntimeClient(nc, { prefix: "yieldcompact", shards: SHARDS });
    const runtime = await testNode(nc, { prefix: "yieldcompact", shards: SHARDS, behaviors: [slow], runner: { compactAfterMs: 1000, commitIntervalMs: 60_000, snapshotIntervalMs: 600_000 } });
    await startAll(runtime);
    await Promise.all(Array.from({ length: TWINS }, (_, i) => client.send("slow", `w${i}`, "one", null)));
    await waitFor(async () => (await runtime.metrics.residentEntities.get()).values[0]?.value === TWINS, { message: "all decoded" });
    const gaps = timerGaps();
    try {
      await waitFor(async () => (await runtime.metrics.compactEntities.get()).values[0]?.value === TWINS, { timeoutMs: 20_000, message: "all compacted" });
    } finally {
      gaps.stop();
    }
    // the shards' sweeps fall due together: ~800 ms when each runs its first slice in its timer callback
    expect(gaps.worstMs).toBeLessThan(400);
    await runtime.host.stopAll();
    runtime.close();
    await client.close();
  });
});
