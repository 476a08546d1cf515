// Commit cadence: a shard working off a backlog (after a restart, a takeover, or more input than it
// keeps up with) spaces its commits up to commitMaxIntervalMs — every snapshot written mid-backlog is
// overwritten a moment later, and writing them slowed catching up ~1.4× in `npm run bench -- runtime`
// (fleet shape) — while a caught-up shard commits every commitIntervalMs. State stays exact either way.
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import { commitDeferred } from "../../../runtime/shard/mod.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { busyApply } from "../busy-behavior.ts";
import { natsForFile, testNode } from "../fixture.ts";

/** Applying one input takes APPLY_MS of CPU, so a few hundred make a backlog. */
const APPLY_MS = 4;

const nats = natsForFile();

async function count(rt: NodeRuntime, metric: "commitSeconds" | "messagesApplied"): Promise<number> {
  const values = (await rt.metrics[metric].get()).values as Array<{ metricName?: string; value: number }>;
  return (metric === "commitSeconds" ? values.find((v) => v.metricName?.endsWith("_count")) : values[0])?.value ?? 0;
}

/** Count and sum (s) of the input-age histogram (stored → applied). */
async function inputAge(rt: NodeRuntime): Promise<{ count: number; sum: number }> {
  const values = (await rt.metrics.inputAgeSeconds.get()).values as Array<{ metricName?: string; value: number }>;
  const of = (suffix: string) => values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0;
  return { count: of("_count"), sum: of("_sum") };
}

describe("commit cadence", () => {
  it("defers commits only while input is waiting, up to the longest interval", () => {
    const options = { commitMaxIntervalMs: 5000 };
    expect(commitDeferred(0, 10, options)).toBe(false);
    expect(commitDeferred(0, 60_000, options)).toBe(false);
    expect(commitDeferred(1, 10, options)).toBe(true);
    expect(commitDeferred(1000, 4999, options)).toBe(true);
    expect(commitDeferred(1000, 5000, options)).toBe(false);
  });

  it("spaces commits while a shard works off a backlog, commits at the base interval once caught up, and loses nothing", async () => {
    const nc = await nats.conn();
    const MESSAGES = 300; // ~1.2 s of applying
    const client = new RuntimeClient(nc, { prefix: "cad", shards: 1 });
    const rt = await testNode(nc, { prefix: "cad", shards: 1, behaviors: [busyApply], runner: { commitIntervalMs: 50, commitMaxIntervalMs: 10_000, fetchBatch: 4 } });
    // the backlog: one message per send (each send waits for its PubAck before the next is batched)
    for (let i = 0; i < MESSAGES; i++) await client.send("busy", `e${i % 7}`, "work", { ms: APPLY_MS });
    await rt.host.start({ shard: 0, epoch: 1, owner: "t" });
    let applied = 0;
    await waitFor(async () => (applied = await count(rt, "messagesApplied")) === MESSAGES, { timeoutMs: 20_000, message: "backlog applied" });
    // the backlog waited in the stream (the last of it for the whole ~1.2 s of applying): input age says so
    const backlogAge = await inputAge(rt);
    expect(backlogAge.count).toBe(MESSAGES);
    expect(backlogAge.sum / backlogAge.count).toBeGreaterThan(0.2);
    expect(backlogAge.sum / backlogAge.count).toBeLessThan(30);
    // every 50 ms tick came while input was waiting: none committed (the old cadence: ~24 commits)
    expect(await count(rt, "commitSeconds")).toBeLessThanOrEqual(1);
    // caught up: the next tick commits, far sooner than the 10 s longest interval
    const caughtUp = performance.now();
    await waitFor(async () => (await count(rt, "commitSeconds")) >= 1 && rt.host.owned().length === 1, { timeoutMs: 2000, message: "committed once caught up" });
    expect(performance.now() - caughtUp).toBeLessThan(2000);
    // live input now commits at the base cadence
    const before = await count(rt, "commitSeconds");
    for (let i = 0; i < 5; i++) {
      await client.send("busy", "live", "work", {});
      await new Promise((r) => setTimeout(r, 120));
    }
    expect((await count(rt, "commitSeconds")) - before).toBeGreaterThanOrEqual(4);
    // live input is applied as it arrives
    const liveAge = await inputAge(rt);
    expect(liveAge.count - backlogAge.count).toBe(5);
    expect((liveAge.sum - backlogAge.sum) / 5).toBeLessThan(0.1);
    await rt.host.stopAll();
    rt.close();
    // the committed state is exact: a new owner reads every entity back
    const again = await testNode(nc, { prefix: "cad", shards: 1, behaviors: [busyApply] });
    await again.host.start({ shard: 0, epoch: 2, owner: "t2" });
    for (let k = 0; k < 7; k++) {
      const r = await client.get("busy", `e${k}`, null);
      expect(r.ok && (r.value as { n: number }).n).toBe(Math.ceil((MESSAGES - k) / 7));
    }
    expect(applied).toBe(MESSAGES);
    await again.host.stopAll();
    again.close();
    await client.close();
  });
});
