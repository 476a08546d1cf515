// The summary of `airtwin ops cluster`: shards per node as ranges, the lag summed per owner, node
// states, and the shards nobody owns (what the JSON buries in one entry per shard).
import { describe, expect, it } from "vitest";
import { formatClusterSummary, shardRanges } from "../../cli/ops-format.ts";
import type { ClusterView } from "../../runtime/mod.ts";

const node = (nodeId: string, over: Partial<ClusterView["nodes"][number]> = {}): ClusterView["nodes"][number] => ({
  nodeId,
  live: true,
  draining: false,
  leaving: false,
  drainRequested: false,
  owned: [],
  rates: undefined,
  startedAt: 0,
  heartbeatAt: 0,
  expiresAt: 1,
  ...over,
});

describe("ops cluster summary", () => {
  it("writes shard lists as ranges", () => {
    expect(shardRanges([7, 0, 1, 2, 5, 8])).toBe("0-2,5,7-8");
    expect(shardRanges([3])).toBe("3");
    expect(shardRanges([])).toBe("");
  });

  it("sums lag per owner, names node states and lists unowned shards", () => {
    const owners = ["a", "a", "b", null, "a", null];
    const view: ClusterView = {
      at: 0,
      nodeId: "a",
      coordinator: { nodeId: "b", epoch: 3, expiresAt: 1 },
      nodes: [node("a"), node("b", { draining: true }), node("c", { live: false })],
      shards: owners.map((owner, shard) => ({ shard, assigned: owner, pinned: false, owner, epoch: 1, leaseExpiresAt: owner === null ? null : 1, lag: shard * 10 })),
    };
    const text = formatClusterSummary(view);
    expect(text).toMatch(/^coordinator\s+b \(epoch 3\)$/m);
    expect(text).toMatch(/^shards\s+6, answered by a$/m);
    expect(text).toMatch(/^a\s+live\s+3\s+50\s+0-1,4$/m);
    expect(text).toMatch(/^b\s+draining\s+1\s+20\s+2$/m);
    expect(text).toMatch(/^c\s+down\s+0\s+0\s+-$/m);
    expect(text).toMatch(/^unowned\s+2: 3,5$/m);
  });

  it("says when no coordinator is elected and no node is there", () => {
    const text = formatClusterSummary({ at: 0, nodeId: "x", coordinator: null, nodes: [], shards: [] });
    expect(text).toContain("none (no coordinator elected)");
    expect(text).toContain("(no nodes)");
  });
});
