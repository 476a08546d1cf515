// A point-in-time picture of the cluster from one node's mirror: nodes, and per shard who is assigned,
// who holds the lease, with which epoch. What `ownership.view()` and the ops `cluster` request return.
import type { ClusterState } from "./cluster-state.ts";
import type { Membership, NodeInfo } from "./membership.ts";

/** One shard in a {@link ClusterView}. */
export interface ShardView {
  readonly shard: number;
  /** Node the coordinator assigned it to, or null. */
  readonly assigned: string | null;
  /** Placed by an operator; rebalancing leaves it alone. */
  readonly pinned: boolean;
  /** Node holding an unexpired lease, or null. */
  readonly owner: string | null;
  /** Epoch of the lease record (also after it was released or expired); 0 before the first owner. */
  readonly epoch: number;
  /** When the current lease runs out unless renewed (ms), or null when nobody holds it. */
  readonly leaseExpiresAt: number | null;
  /** Messages not yet consumed: freshly read for the answering node's shards, else from the owner's last heartbeat. */
  readonly lag?: number;
}

/** The cluster as one node sees it. */
export interface ClusterView {
  /** Wall clock (ms) of the picture. */
  readonly at: number;
  /** The node that answered. */
  readonly nodeId: string;
  readonly coordinator: { readonly nodeId: string; readonly epoch: number; readonly expiresAt: number } | null;
  readonly nodes: readonly NodeInfo[];
  readonly shards: readonly ShardView[];
}

/** Builds a {@link ClusterView} of `shards` shards from a mirror. */
export function buildClusterView(
  state: ClusterState,
  membership: Membership,
  nodeId: string,
  shards: number,
  now: number,
  lag?: ReadonlyMap<number, number>,
): ClusterView {
  const c = state.coordinator?.value;
  const list: ShardView[] = [];
  for (let s = 0; s < shards; s++) {
    const a = state.assignments.get(s)?.value;
    const l = state.leases.get(s)?.value;
    const held = l !== undefined && l.owner !== null && l.expiresAt > now;
    const view: ShardView = {
      shard: s,
      assigned: a?.node ?? null,
      pinned: a?.pinned === true,
      owner: held ? l.owner : null,
      epoch: l?.epoch ?? 0,
      leaseExpiresAt: held ? l.expiresAt : null,
      ...lagOf(s, held ? l.owner : null),
    };
    list.push(view);
  }
  /** A fresh local reading, else what the shard's owner reported in its last heartbeat. */
  function lagOf(s: number, owner: string | null): { lag?: number } {
    if (lag?.has(s)) return { lag: lag.get(s)! };
    const reported = owner === null ? undefined : state.nodes.get(owner)?.value.lag?.[s];
    return reported === undefined ? {} : { lag: reported };
  }
  return {
    at: now,
    nodeId,
    coordinator: c !== undefined && c.expiresAt > now ? { nodeId: c.nodeId, epoch: c.epoch, expiresAt: c.expiresAt } : null,
    nodes: membership.nodes(now),
    shards: list,
  };
}
