// @vitest-environment node
// Issue 3 proof, scenario 3: a zombie owner. A node is frozen with SIGSTOP in the middle of a stream
// until its leases expire and its shards move (epochs increase, owners change); more readings arrive;
// then it is woken with SIGCONT. It must write nothing (fencing), say so in its log, step down, and the
// final state of every twin must be exact.
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startNatsServer, type TestNatsServer } from "../../harness/nats-server.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { TestCluster, type Lease } from "./cluster.ts";
import { CONVERGE_MS } from "./node-process.ts";
import { FleetReference, allMessages, expectMatchesReference, generateFleet, sendMessages, waitApplied } from "./fleet.ts";

const NODES = ["z1", "z2", "z3"];
// 400 devices, 5 messages of 20 readings each: 2 before the freeze, 1 during it, 2 while it sleeps
const fleet = generateFleet({ devices: 400, readingsPerDevice: 100, batchSize: 20, seed: 33 });

let server: TestNatsServer;
let cluster: TestCluster | undefined;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await cluster?.close();
  await server?.stop();
});

describe.sequential("zombie owner (SIGSTOP / SIGCONT)", () => {
  it("is fenced: writes nothing after its shards moved, steps down, and every twin ends exact", { timeout: 300_000 }, async () => {
    const c = (cluster = await TestCluster.start(server.url, { prefix: "it-zombie", nodes: NODES }));
    onTestFailed(() => console.error(`node logs:\n${c.dumpLogs(40)}`));
    await c.waitBalanced(NODES);
    const ref = new FleetReference();
    await sendMessages(c.client, allMessages(fleet, 0, 2), ref);
    await waitApplied(c.client, fleet.ids, ref);

    // the victim: a node that is not the coordinator (so the rest of the cluster reacts at lease speed)
    const coordinator = await c.coordinatorId();
    const victimId = NODES.find((n) => n !== coordinator)!;
    const victim = c.node(victimId);
    const others = NODES.filter((n) => n !== victimId);

    // freeze it while it is taking in the third message of every device; what it holds at that moment
    // (read right after the SIGSTOP) is what it must give up
    let pausedAt = 0;
    let held: Promise<Lease[]> | undefined;
    await sendMessages(c.client, allMessages(fleet, 2, 3), ref, {
      onAccepted: (n) => {
        if (n !== Math.floor(fleet.ids.length / 2)) return;
        victim.pause();
        pausedAt = performance.now();
        held = c.leases();
      },
    });
    expect(victim.paused).toBe(true);
    const before = new Map<number, Lease>();
    for (const l of await held!) if (l.owner === victimId) before.set(l.shard, l);
    expect(before.size).toBeGreaterThan(0);

    // its leases run out and the others take its shards: owner changes, epoch increases
    const takeover = await waitFor(
      async () => {
        const now = Date.now();
        const leases = await c.leases();
        const moved = [...before.keys()].map((s) => leases[s]!);
        return moved.every((l) => l.owner !== null && others.includes(l.owner) && l.expiresAt > now && l.epoch > before.get(l.shard)!.epoch) ? moved : undefined;
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 50, message: `shards of the frozen ${victimId} taken over` },
    );
    const takeoverMs = performance.now() - pausedAt;

    // more readings while the zombie sleeps; the new owners apply everything (nothing lost)
    await sendMessages(c.client, allMessages(fleet, 3), ref);
    await waitApplied(c.client, fleet.ids, ref);

    // wake it: it finds its leases gone and aborts those shards without writing
    const resumedAt = Date.now();
    victim.resume();
    const aborted = await waitFor(
      () => {
        const lines = victim.logEntries().filter((e) => e.msg === "shard aborted");
        const missing = [...before.values()].filter((l) => !lines.some((e) => e.shard === l.shard && e.epoch === l.epoch));
        if (missing.length === 0) return lines;
        // what the zombie did with those shards instead, for the failure's message
        const said = victim.logEntries().filter((e) => missing.some((l) => e.shard === l.shard) && Date.parse(String(e.time)) >= resumedAt);
        throw new Error(`no "shard aborted" yet for ${missing.map((l) => `${l.shard}@${l.epoch}`).join(" ")}; since SIGCONT it logged: ${JSON.stringify(said)}`);
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 50, message: `${victimId} logs "shard aborted" for each shard it lost` },
    );
    const released = victim.logEntries().filter((e) => e.msg === "shard released");
    for (const l of before.values()) {
      const reasons = aborted.filter((e) => e.shard === l.shard && e.epoch === l.epoch).map((e) => String(e.reason));
      expect(reasons.some((r) => /lease|fenced/.test(r)), `shard ${l.shard} abort reason: ${reasons.join("; ")}`).toBe(true);
      // a lost lease is never stopped as planned (a last commit) nor "released" (it was not ours to give)
      const planned = released.filter((e) => e.shard === l.shard && e.epoch === l.epoch);
      expect(planned, `shard ${l.shard} epoch ${l.epoch} released after it was lost`).toEqual([]);
    }

    // fencing, checked in storage: after each shard's latest fence only that fence's epoch has written
    for (const s of before.keys()) {
      const writes = await c.snapshotWrites(s);
      const fence = writes.find((w) => w.key === "_fence")!;
      expect(fence.epoch).toBeGreaterThanOrEqual(takeover.find((l) => l.shard === s)!.epoch);
      const stale = writes.filter((w) => w.seq > fence.seq && w.epoch !== fence.epoch);
      expect(stale, `shard ${s}: writes after the fence of epoch ${fence.epoch}`).toEqual([]);
    }

    // it stepped down: whatever it runs again it acquired anew, under an epoch above the takeover
    const takeoverEpoch = new Map(takeover.map((l) => [l.shard, l.epoch]));
    const laterStarts = victim.logEntries().filter((e) => e.msg === "shard started" && Date.parse(String(e.time)) >= resumedAt);
    for (const e of laterStarts) {
      const s = Number(e.shard);
      if (takeoverEpoch.has(s)) expect(Number(e.epoch), `shard ${s} restarted on ${victimId}`).toBeGreaterThan(takeoverEpoch.get(s)!);
    }

    // and every twin is exact: nothing the zombie did after the freeze counts twice or goes missing
    const views = await waitApplied(c.client, fleet.ids, ref);
    for (const id of fleet.ids) expectMatchesReference(id, views.get(id)!, ref.get(id));
    const metrics = await victim.metrics();
    const rejections = /^airtwin_fencing_rejections_total (\d+)/m.exec(metrics)?.[1] ?? "0";
    console.log(
      `[scenario 3] froze ${victimId} holding ${before.size} shards; taken over after ${Math.round(takeoverMs)} ms ` +
        `(epochs ${[...before.values()].map((l) => `${l.shard}:${l.epoch}→${takeoverEpoch.get(l.shard)}`).join(" ")}); ` +
        `on SIGCONT it aborted them (${[...new Set(aborted.map((e) => String(e.reason).replace(/\(.*\)/, "").trim()))].join("; ")}), ` +
        `fencing rejections on the zombie: ${rejections}`,
    );
  });
});
