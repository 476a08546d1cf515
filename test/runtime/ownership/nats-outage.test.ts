// Ownership when NATS itself goes away: owners must give their shards up before the leases could be
// taken (their own clock says so), and everything must come back once NATS does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("ownership across a NATS outage", () => {
  it("aborts every shard before its lease runs out, and re-leases all of them after NATS returns", async () => {
    await using fx = new OwnershipFixture(ns.url, 8);
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { message: "settled on a, b" });
    const before = new Map([...fx.nodes.values()].flatMap((n) => n.ownership.held().map((l) => [l.shard, l.epoch] as const)));
    const mark = fx.registry.log.length;

    const t0 = Date.now();
    await ns.kill();
    await waitFor(() => fx.counts().a === 0 && fx.counts().b === 0, {
      timeoutMs: FAST.leaseTtlMs! + 1000,
      message: "every shard aborted while NATS is down",
    });
    const abortMs = Date.now() - t0;
    const aborts = fx.registry.log.filter((e) => e.seq > mark && e.kind === "abort");
    expect(aborts).toHaveLength(8);
    for (const a of aborts) expect(a.reason).toMatch(/not renewed in time/);
    // leases are renewed every 200 ms and given up 200 ms before they run out
    expect(abortMs).toBeLessThan(FAST.leaseTtlMs!);

    await ns.restart();
    const t1 = Date.now();
    await waitFor(() => fx.settled(["a", "b"]), { timeoutMs: 15_000, message: "all shards re-leased after the restart" });
    const recoverMs = Date.now() - t1;
    for (const n of fx.nodes.values()) {
      for (const l of n.ownership.held()) expect(l.epoch).toBeGreaterThan(before.get(l.shard)!);
    }
    expect(fx.registry.violations).toEqual([]);
    // bounded by a lost request's timeout (1000 ms here) plus a lease TTL, not by the 5 s client default
    expect(recoverMs).toBeLessThan(4000);
    // the views recover too: both nodes live, one coordinator
    await waitFor(() => fx.get("a").ownership.view().nodes.filter((n) => n.live).length === 2, { message: "a sees both nodes" });
    await waitFor(() => [...fx.nodes.values()].filter((n) => n.ownership.isCoordinator()).length === 1, { message: "one coordinator" });
  });
});
