// Cluster ownership against a real nats-server: several nodes in one process, a fake host per node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { isRuntimeError } from "../../../runtime/errors.ts";
import type { RoundResult } from "../../../runtime/ownership/mod.ts";
import { decodeLease, encodeRecord, leaseKey } from "../../../runtime/ownership/records.ts";
import { startNatsServer, type TestNatsServer } from "../../harness/nats-server.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { FAST, OwnershipFixture } from "./fixture.ts";

let ns: TestNatsServer;

beforeAll(async () => {
  ns = await startNatsServer();
});

afterAll(async () => {
  await ns?.stop();
});

describe("ownership", () => {
  it("spreads all shards evenly over three nodes, one lease and one holder each", async () => {
    await using fx = new OwnershipFixture(ns.url, 12);
    await Promise.all(["a", "b", "c"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b", "c"]), { message: "12 shards settled on a, b, c" });
    expect(fx.counts()).toEqual({ a: 4, b: 4, c: 4 });
    expect(fx.registry.violations).toEqual([]);
    const view = fx.get("a").ownership.view();
    expect(view.nodes.map((n) => [n.nodeId, n.live, n.draining])).toEqual([
      ["a", true, false],
      ["b", true, false],
      ["c", true, false],
    ]);
    expect(view.coordinator).not.toBeNull();
    // each held lease is the one the host runs
    for (const id of ["a", "b", "c"]) {
      const { ownership, host } = fx.get(id);
      const held = ownership.held().sort((x, y) => x.shard - y.shard);
      expect(held.map((l) => [l.shard, l.epoch])).toEqual([...host.running.values()].sort((x, y) => x.shard - y.shard).map((l) => [l.shard, l.epoch]));
      for (const l of held) expect(view.shards[l.shard]).toMatchObject({ owner: id, assigned: id, epoch: l.epoch });
    }
    // exactly one coordinator
    expect([...fx.nodes.values()].filter((n) => n.ownership.isCoordinator())).toHaveLength(1);
  });

  it("close() hands every shard over: stop before the next start, epochs increase, nothing overlaps", async () => {
    await using fx = new OwnershipFixture(ns.url, 12);
    await Promise.all(["a", "b", "c"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b", "c"]), { message: "settled on a, b, c" });
    const leaving = fx.get("b");
    const before = new Map(leaving.ownership.held().map((l) => [l.shard, l.epoch]));
    const mark = fx.registry.log.length;
    const t0 = Date.now();
    await fx.closeNode("b");
    const closeMs = Date.now() - t0;
    await waitFor(() => fx.settled(["a", "c"]), { message: "b's shards on a and c" });
    expect(fx.counts()).toEqual({ a: 6, c: 6 });
    expect(fx.registry.violations).toEqual([]);
    for (const [shard, epoch] of before) {
      const events = fx.registry.eventsOf(shard).filter((e) => e.seq > mark);
      const stop = events.find((e) => e.node === "b" && e.kind === "stop");
      const start = events.find((e) => e.node !== "b" && e.kind === "start");
      expect(stop?.reason).toBe("shutdown");
      expect(start, `shard ${shard} restarted`).toBeDefined();
      expect(stop!.seq).toBeLessThan(start!.seq);
      expect(start!.epoch).toBeGreaterThan(epoch);
    }
    // b deleted its heartbeat: the others do not even list it
    await waitFor(() => fx.get("a").ownership.view().nodes.map((n) => n.nodeId).join() === "a,c", { message: "b gone from a's view" });
    expect(closeMs).toBeLessThan(FAST.closeTimeoutMs!);
  });

  it("a frozen node's leases expire and move within nodeTtl + leaseTtl; unfrozen, it aborts and does not restart them", async () => {
    await using fx = new OwnershipFixture(ns.url, 12);
    await Promise.all(["a", "b", "c"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b", "c"]), { message: "settled on a, b, c" });
    // freeze the coordinator: the hardest case (election and reassignment both wait for it to expire)
    const frozen = fx.coordinator()!;
    const others = ["a", "b", "c"].filter((id) => id !== frozen.id);
    const lost = new Map(frozen.ownership.held().map((l) => [l.shard, l.epoch]));
    expect(lost.size).toBe(4);
    const t0 = Date.now();
    frozen.ownership.freeze();
    fx.registry.paused.add(frozen.id);
    await waitFor(
      () => [...lost.keys()].every((s) => others.some((id) => fx.get(id).host.running.has(s))),
      { timeoutMs: FAST.nodeTtlMs! + FAST.leaseTtlMs! + 1500, message: "frozen node's shards running elsewhere" },
    );
    const takeoverMs = Date.now() - t0;
    for (const [shard, epoch] of lost) {
      const owner = others.find((id) => fx.get(id).host.running.has(shard))!;
      expect(fx.get(owner).host.running.get(shard)!.epoch).toBeGreaterThan(epoch);
    }
    expect(others.some((id) => fx.get(id).ownership.isCoordinator())).toBe(true);
    // the frozen host was never told anything while paused
    const mark = fx.registry.log.length;
    expect(frozen.host.running.size).toBe(4);

    frozen.ownership.unfreeze();
    fx.registry.paused.delete(frozen.id);
    await waitFor(() => frozen.host.running.size === 0 || [...lost.keys()].every((s) => !frozen.host.running.has(s) || frozen.host.running.get(s)!.epoch > lost.get(s)!), {
      message: "frozen node gave its stale shards up",
    });
    const after = fx.registry.log.filter((e) => e.seq > mark && e.node === frozen.id);
    for (const [shard, epoch] of lost) {
      const abort = after.find((e) => e.shard === shard && e.kind === "abort");
      expect(abort, `abort of shard ${shard}`).toMatchObject({ epoch });
      // a lost lease is never stopped (that would commit); whatever it runs later is a new epoch
      expect(after.some((e) => e.shard === shard && e.kind === "stop" && e.epoch === epoch)).toBe(false);
      for (const e of after.filter((x) => x.shard === shard && x.kind === "start")) {
        expect(e.seq).toBeGreaterThan(abort!.seq);
        expect(e.epoch!).toBeGreaterThan(epoch);
      }
    }
    // it rejoins as an ordinary node and the cluster rebalances onto it, never with two holders
    await waitFor(() => fx.settled(["a", "b", "c"]), { message: "rebalanced after the node came back" });
    expect(fx.registry.violations).toEqual([]);
    expect(takeoverMs).toBeLessThan(FAST.nodeTtlMs! + FAST.leaseTtlMs! + 1500);
  });

  it("a live node that does not take its shards has them served elsewhere after stallMs, and gets nothing new for as long", async () => {
    await using fx = new OwnershipFixture(ns.url, 6, { ...FAST, stallMs: 2000 });
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { message: "6 shards settled on a and b" });
    // c heartbeats like any node, but every start fails (as a node wedged on its NATS connection would)
    const c = await fx.start("c");
    c.host.failStarts = "cannot start shards";
    const rounds: RoundResult[] = [];
    for (const n of fx.nodes.values()) n.ownership.on("round", (r) => rounds.push(r));
    await waitFor(() => rounds.some((r) => r.moves.some((m) => m.to === "c")), { message: "the coordinator gives c shards to balance" });
    await waitFor(() => rounds.some((r) => r.moves.some((m) => m.reason === "stalled" && m.from === "c")), { timeoutMs: 15_000, message: "c's shards reassigned as stalled" });
    await waitFor(() => fx.settledOn(["a", "b"]), { timeoutMs: 15_000, message: "every shard served by a or b" });
    expect(fx.logs.some((l) => l.msg === "shards not taken by their assigned node in time; assigned elsewhere")).toBe(true);
    expect(fx.logs.some((l) => l.node === "c" && l.msg === "shard failed to start; lease released, trying again")).toBe(true);
    // passed over for stallMs: no new assignment to c right after
    const stalledAt = rounds.findIndex((r) => r.moves.some((m) => m.reason === "stalled"));
    const soon = rounds.slice(stalledAt + 1).filter((r) => r.at - rounds[stalledAt]!.at < 1500);
    expect(soon.flatMap((r) => r.moves).filter((m) => m.to === "c")).toEqual([]);
    // healthy again, c is given its share once the time is up
    c.host.failStarts = undefined;
    await waitFor(() => fx.settled(["a", "b", "c"]), { timeoutMs: 20_000, message: "balanced over a, b and c again" });
    expect(fx.registry.violations).toEqual([]);
  });

  it("takes and starts at most maxConcurrentStarts shards at once; the rest wait their turn without a lease", async () => {
    await using fx = new OwnershipFixture(ns.url, 12, { ...FAST, maxConcurrentStarts: 3 });
    const a = await fx.start("a");
    a.host.delayMs = 150; // a start that reads a big bucket
    // leases held by shards whose start has not begun (the host lists a shard as running as its start begins)
    const leasesNotStarted: number[] = [];
    const sample = setInterval(() => leasesNotStarted.push(a.ownership.held().length - a.host.running.size), 20);
    try {
      await waitFor(() => a.host.running.size === 12, { timeoutMs: 10_000, message: "a runs all 12 shards" });
    } finally {
      clearInterval(sample);
    }
    expect(a.host.mostStartingAtOnce).toBe(3);
    // a lease is taken with the turn: never one held while waiting for it
    expect(Math.max(...leasesNotStarted)).toBeLessThanOrEqual(3);
    expect(fx.registry.violations).toEqual([]);
  });

  it("a shard whose starts keep failing is taken up again after pauses that double, not every heartbeat", async () => {
    await using fx = new OwnershipFixture(ns.url, 1);
    const a = await fx.start("a");
    a.host.failStarts = "bucket unreadable";
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 5000));
    const attempts = a.host.attempts.map((x) => x.at - t0);
    // heartbeat 200 ms: pauses of 100–200, 200–400, 400–800, 800–1600, 1600–3200 ms (each half to all of its step)
    expect(attempts.length).toBeGreaterThanOrEqual(4);
    expect(attempts.length).toBeLessThanOrEqual(7);
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]! * 2);
    // healthy again: it runs once the pause is over, and a later abort is taken up quickly again
    a.host.failStarts = undefined;
    await waitFor(() => a.host.running.size === 1, { timeoutMs: 8000, message: "a runs the shard" });
    expect(fx.logs.filter((l) => l.msg === "shard failed to start; lease released, trying again").length).toBe(a.host.attempts.length - 1);
    expect(fx.registry.violations).toEqual([]);
  });

  it("a joining node gets shards at most maxMoves per round until balanced", async () => {
    const maxMoves = 2;
    await using fx = new OwnershipFixture(ns.url, 16, { ...FAST, maxMoves });
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { message: "settled on a, b" });
    const rounds: RoundResult[] = [];
    for (const n of fx.nodes.values()) n.ownership.on("round", (r) => rounds.push(r));
    let maxInFlight = 0;
    const sampler = setInterval(() => {
      const view = fx.get("a").ownership.view();
      maxInFlight = Math.max(maxInFlight, view.shards.filter((s) => s.owner !== s.assigned).length);
    }, 5);
    try {
      const c = await fx.start("c");
      c.ownership.on("round", (r) => rounds.push(r));
      await waitFor(() => fx.settled(["a", "b", "c"]), { message: "rebalanced onto c" });
    } finally {
      clearInterval(sampler);
    }
    expect(Object.values(fx.counts()).sort()).toEqual([5, 5, 6]);
    const moving = rounds.filter((r) => r.moves.length > 0);
    expect(moving.length).toBeGreaterThanOrEqual(3);
    for (const r of moving) expect(r.moves.filter((m) => m.reason !== "orphan").length).toBeLessThanOrEqual(maxMoves);
    expect(moving.flatMap((r) => r.moves).every((m) => m.to === "c")).toBe(true);
    expect(maxInFlight).toBeLessThanOrEqual(maxMoves);
    expect(fx.registry.violations).toEqual([]);
  });

  it("weighted: spreads hot shards by the message rates the hosts report", async () => {
    await using fx = new OwnershipFixture(ns.url, 4, { ...FAST, weighted: true });
    const rates = new Map([[0, 1000], [1, 900]]);
    const a = await fx.start("a");
    a.host.shardRates = rates;
    await waitFor(() => a.host.running.size === 4, { message: "a runs all four" });
    const b = await fx.start("b");
    b.host.shardRates = rates;
    const hotApart = () => {
      const owner0 = a.host.running.has(0) ? "a" : b.host.running.has(0) ? "b" : undefined;
      const owner1 = a.host.running.has(1) ? "a" : b.host.running.has(1) ? "b" : undefined;
      return owner0 !== undefined && owner1 !== undefined && owner0 !== owner1 && a.host.running.size + b.host.running.size === 4;
    };
    await waitFor(hotApart, { message: "the two hot shards on different nodes" });
    // the coordinator now sees balanced rates: a dry run plans nothing more
    await waitFor(() => fx.get("a").ownership.view().nodes.every((n) => n.rates !== undefined && Object.keys(n.rates).length === n.owned.length), {
      message: "heartbeats carry the rates",
    });
    const c = fx.coordinator()!;
    expect((await c.ownership.coordinator.round({ dryRun: true })).moves).toEqual([]);
    // and by count it is 1 + 3, which an unweighted planner would have evened out
    expect(Object.values(fx.counts()).sort()).toEqual([1, 3]);
    expect(fx.registry.violations).toEqual([]);
  });

  it("the coordinator forgets long-dead nodes; a node that comes back is listed again", async () => {
    await using fx = new OwnershipFixture(ns.url, 4, { ...FAST, forgetDeadNodeMs: 300 });
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { message: "settled on a, b" });
    const survivor = fx.coordinator()!;
    const ghost = fx.get(survivor.id === "a" ? "b" : "a");
    ghost.ownership.freeze();
    fx.registry.paused.add(ghost.id);
    const listed = () => survivor.ownership.view().nodes.map((n) => n.nodeId);
    await waitFor(() => listed().join() === survivor.id, { message: "dead node's record deleted" });
    ghost.ownership.unfreeze();
    fx.registry.paused.delete(ghost.id);
    await waitFor(() => listed().length === 2 && fx.settled(["a", "b"]), { message: "node back and balanced" });
    expect(fx.registry.violations).toEqual([]);
  });

  it("refuses to start with a shard or stream count other than the cluster's", async () => {
    await using fx = new OwnershipFixture(ns.url, 8);
    await fx.start("a");
    const err = await fx.start("b", {}, 16).catch((e: unknown) => e);
    expect(isRuntimeError(err, "SHARDS_MISMATCH")).toBe(true);
    expect((err as { details: unknown }).details).toMatchObject({ shards: 16, clusterShards: 8, streams: 1, clusterStreams: 1 });
    const err2 = await fx.start("b", {}, 8, 2).catch((e: unknown) => e);
    expect(isRuntimeError(err2, "SHARDS_MISMATCH")).toBe(true);
    // the refused node left no trace: a is alone
    expect(fx.get("a").ownership.view().nodes.map((n) => n.nodeId)).toEqual(["a"]);
  });

  it("refuses a node id that another live process keeps using", async () => {
    await using fx = new OwnershipFixture(ns.url, 4);
    await fx.start("a");
    const t0 = Date.now();
    const err = await fx.start("a").catch((e: unknown) => e);
    expect(isRuntimeError(err, "CLUSTER_NODE_ID_IN_USE")).toBe(true);
    expect(Date.now() - t0).toBeLessThan(FAST.nodeTtlMs! * 2 + 500);
  });

  it("aborts at once when its lease is taken over behind its back, and never reuses an epoch", async () => {
    await using fx = new OwnershipFixture(ns.url, 2);
    const a = await fx.start("a");
    await waitFor(() => a.host.running.size === 2, { message: "a runs both shards" });
    const kv = await new Kvm(await fx.connect()).open(fx.names.clusterBucket);
    const e = await kv.get(leaseKey(0));
    const lease = decodeLease(e!.value)!;
    // an intruder writes a newer epoch with CAS, as a new owner would
    await kv.update(leaseKey(0), encodeRecord({ ...lease, owner: "intruder", epoch: lease.epoch + 1, expiresAt: Date.now() + 600 }), e!.revision);
    await waitFor(() => fx.registry.log.some((x) => x.node === "a" && x.kind === "abort" && x.shard === 0), { message: "abort of shard 0" });
    const abort = fx.registry.log.find((x) => x.node === "a" && x.kind === "abort")!;
    expect(abort.reason).toMatch(/intruder/);
    // once the intruder's lease runs out, a (still assigned) takes it back with a higher epoch
    await waitFor(() => (a.host.running.get(0)?.epoch ?? 0) > lease.epoch + 1, { message: "a re-acquired shard 0" });
    // deleting the lease key must not restart epochs from 1
    const held = a.host.running.get(0)!.epoch;
    await fx.closeNode("a");
    await kv.delete(leaseKey(0));
    const b = await fx.start("b");
    await waitFor(() => b.host.running.has(0), { message: "b runs shard 0" });
    expect(b.host.running.get(0)!.epoch).toBeGreaterThan(held);
    expect(fx.registry.violations).toEqual([]);
  });
});
