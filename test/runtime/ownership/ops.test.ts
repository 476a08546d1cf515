// The ops API end to end over NATS: OpsClient → coordinator → assignments → leases → hosts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decode, encode } from "../../../runtime/codec.ts";
import { RuntimeErrors, isRuntimeError, type RuntimeErrorName } from "../../../runtime/errors.ts";
import { OpsClient } from "../../../runtime/ownership/mod.ts";
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

async function expectCode(p: Promise<unknown>, which: RuntimeErrorName): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isRuntimeError(err) ? err.code : err).toBe(RuntimeErrors[which].code);
}

describe("ops API", () => {
  it("cluster view, move (pinned), validation errors, drain, and failover of the answering coordinator", async () => {
    // automatic rounds only on membership changes and while moves are in flight, not on a timer
    await using fx = new OwnershipFixture(ns.url, 12, { ...FAST, rebalanceIntervalMs: 60_000, maxMoves: 2 });
    await Promise.all(["a", "b", "c"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b", "c"]), { message: "settled on a, b, c" });
    const ops = new OpsClient(await fx.connect(), fx.names, { timeoutMs: 5000 });

    // `owned` comes from heartbeats, so it may trail the leases by one heartbeat
    const view = await waitFor(async () => {
      const v = await ops.cluster();
      return v.nodes.every((n) => n.owned.length === 4) ? v : undefined;
    }, { message: "heartbeats report 4 shards each" });
    expect(view.nodes.map((n) => [n.nodeId, n.live, n.draining, n.owned.length])).toEqual([
      ["a", true, false, 4],
      ["b", true, false, 4],
      ["c", true, false, 4],
    ]);
    expect(view.shards).toHaveLength(12);
    expect(view.coordinator?.nodeId).toBe(view.nodeId);
    for (const s of view.shards) {
      expect(s.owner).toBe(s.assigned);
      expect(s.epoch).toBeGreaterThan(0);
      expect(s.leaseExpiresAt).toBeGreaterThan(view.at);
    }

    // move one of a's shards to b: b runs it, it stays pinned there while the rest rebalances around it
    const shard = view.shards.find((s) => s.owner === "a")!.shard;
    const epoch = view.shards[shard]!.epoch;
    await expect(ops.move(shard, "b")).resolves.toEqual({ shard, from: "a", to: "b", moved: true });
    await waitFor(() => fx.get("b").host.running.has(shard) && fx.settled(["a", "b", "c"]), { message: "shard moved and cluster settled" });
    expect(fx.get("b").host.running.get(shard)!.epoch).toBeGreaterThan(epoch);
    expect((await ops.cluster()).shards[shard]).toMatchObject({ assigned: "b", owner: "b", pinned: true });
    await expect(ops.move(shard, "b")).resolves.toMatchObject({ moved: false });

    await expectCode(ops.move(12, "b"), "OPS_SHARD_RANGE");
    await expectCode(ops.move(-1, "b"), "OPS_SHARD_RANGE");
    await expectCode(ops.move(0, "ghost"), "OPS_NODE_UNKNOWN");
    await expectCode(ops.drain("ghost"), "OPS_NODE_UNKNOWN");
    const raw = await fx.connect();
    const bad = decode<{ ok: boolean; error: { code: string; details: unknown } }>(
      (await raw.request(fx.names.ops("move"), encode({ shard: "1", node: "b" }))).data,
    );
    expect(bad).toMatchObject({ ok: false, error: { code: RuntimeErrors.OPS_INVALID_REQUEST.code, details: { field: "shard" } } });

    // drain c: all its shards leave, bounded per round, and it takes no new ones
    await expect(ops.drain("c")).resolves.toEqual({ nodeId: "c", shards: 4 });
    await waitFor(() => fx.get("c").host.running.size === 0 && fx.settled(["a", "b"]), { message: "c drained" });
    expect(fx.counts()).toEqual({ a: 6, b: 6, c: 0 });
    const drained = await waitFor(async () => (await ops.cluster()).nodes.find((n) => n.nodeId === "c" && n.owned.length === 0), {
      message: "c reports no shards",
    });
    expect(drained).toMatchObject({ live: true, draining: true, drainRequested: true, leaving: false });
    await expectCode(ops.move(0, "c"), "OPS_NODE_DRAINING");
    expect((await ops.rebalance({ dryRun: true })).moves).toEqual([]);
    expect(fx.registry.violations).toEqual([]);

    // the coordinator goes away: the client keeps asking until the next one answers
    const first = fx.coordinator()!.id;
    await fx.closeNode(first);
    const next = await ops.cluster();
    expect(next.nodeId).not.toBe(first);
    expect(next.coordinator?.nodeId).toBe(next.nodeId);
  });

  it("rebalance: a dry run plans without writing; pins hold unless unpinned", async () => {
    await using fx = new OwnershipFixture(ns.url, 4, { ...FAST, rebalanceIntervalMs: 60_000 });
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { message: "settled on a, b" });
    const ops = new OpsClient(await fx.connect(), fx.names);
    // pin every shard on b
    for (let s = 0; s < 4; s++) await ops.move(s, "b");
    await waitFor(() => fx.get("b").host.running.size === 4, { message: "b runs all four" });

    expect((await ops.rebalance({ dryRun: true })).moves).toEqual([]);
    const dry = await ops.rebalance({ dryRun: true, unpin: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.moves).toEqual([
      { shard: 0, from: "b", to: "a", reason: "rebalance" },
      { shard: 1, from: "b", to: "a", reason: "rebalance" },
    ]);
    // nothing was written
    const after = await ops.cluster();
    expect(after.shards.map((s) => [s.assigned, s.pinned])).toEqual(Array.from({ length: 4 }, () => ["b", true]));
    expect(fx.get("b").host.running.size).toBe(4);

    const real = await ops.rebalance({ unpin: true });
    expect(real.moves).toEqual(dry.moves);
    await waitFor(() => fx.settled(["a", "b"]), { message: "rebalanced" });
    expect([...fx.get("a").host.running.keys()].sort()).toEqual([0, 1]);
    const final = await ops.cluster();
    expect(final.shards.map((s) => s.pinned)).toEqual([false, false, true, true]);
    expect(fx.registry.violations).toEqual([]);
  });
});
