// A shard working through a backlog must keep the node's event loop turning: lease renewals,
// heartbeats and commits are timers, and a consume loop that only resumes through microtasks would
// starve them until the whole fetched buffer is applied (seconds), so a busy, healthy node lost its
// leases. Found by the process-level integration tests (test/integration/runtime).
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { timerGaps } from "../../harness/timer-gaps.ts";
import { busyApply as busy } from "../busy-behavior.ts";
import { natsForFile, testNode } from "../fixture.ts";

const nats = natsForFile();

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
});
