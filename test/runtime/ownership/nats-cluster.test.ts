// Ownership on a 3-server JetStream cluster with an R3 cluster bucket: losing one NATS server must not
// leave shards without an owner for long, and never with two.
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsCluster, type TestNatsCluster } from "../../harness/nats-cluster.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { FAST, OwnershipFixture } from "./fixture.ts";

let cluster: TestNatsCluster;

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("ownership on a 3-server NATS cluster", () => {
  it("keeps every shard owned once when a NATS server dies", async () => {
    await using fx = new OwnershipFixture(cluster.urls.join(","), 8, { ...FAST }, 1, 3);
    await Promise.all(["a", "b"].map((id) => fx.start(id)));
    await waitFor(() => fx.settled(["a", "b"]), { timeoutMs: 20_000, message: "settled on a, b" });
    // kill the server leading the cluster bucket's stream: the worst one to lose
    const jsm = await jetstreamManager(await fx.connect());
    const leader = (await jsm.streams.info(`KV_${fx.names.clusterBucket}`)).cluster?.leader;
    const victim = cluster.servers.find((m) => m.name === leader)!;
    expect(victim).toBeDefined();
    const mark = fx.registry.log.length;
    const t0 = Date.now();
    await victim.kill();
    // shards may be aborted while the bucket elects a new leader; all must come back, and both nodes
    // must have heartbeated well after the loss (so leases had to be renewed through the new leader)
    const beatenAfter = (id: string) => (fx.get("a").ownership.view().nodes.find((n) => n.nodeId === id)?.heartbeatAt ?? 0) > t0 + 2 * FAST.leaseTtlMs!;
    await waitFor(() => beatenAfter("a") && beatenAfter("b") && fx.settled(["a", "b"]), { timeoutMs: 30_000, message: "settled after losing the bucket leader" });
    const aborts = fx.registry.log.filter((e) => e.seq > mark && e.kind === "abort");
    fx.logFor("test")("info", "bucket leader lost", { leader, recoveredMs: Date.now() - t0, aborts: aborts.length });
    expect(fx.registry.violations).toEqual([]);
    // every shard that was aborted came back under a newer epoch
    for (const a of aborts) {
      const owner = ["a", "b"].find((id) => fx.get(id).host.running.has(a.shard))!;
      expect(fx.get(owner).host.running.get(a.shard)!.epoch).toBeGreaterThan(a.epoch!);
    }
  });
});
