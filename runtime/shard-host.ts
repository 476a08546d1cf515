// The contract between ownership (membership, coordinator, leases) and the code that runs shards on a node.
// Ownership decides WHEN a node runs a shard; the host decides HOW (consume, apply, commit).

/** A held shard lease. `epoch` increases on every change of owner and fences every state write. */
export interface ShardLease {
  readonly shard: number;
  readonly epoch: number;
  readonly owner: string;
}

/** Why a shard stops on this node. */
export type StopReason = "move" | "drain" | "rebalance" | "shutdown";

/** Implemented by the node's shard runner; called by ownership. */
export interface ShardHost {
  /** Start serving a shard whose lease this node now holds. Resolves once the shard serves (loaded). */
  start(lease: ShardLease): Promise<void>;
  /** Planned stop: stop consuming, apply what was fetched, commit; resolves when nothing is left to write. The lease is released after. */
  stop(shard: number, reason: StopReason): Promise<void>;
  /** The lease was lost (expired or taken): stop at once, write nothing more. */
  abort(shard: number, reason: string): void;
  /** Messages per second consumed per shard since the last call (for rate-weighted balancing). */
  rates?(): ReadonlyMap<number, number>;
  /** What the node's heartbeat reports for operators (dashboard, `ops cluster`); read often, must be cheap. */
  load?(): HostLoad;
}

/** A node's load as its heartbeat reports it. */
export interface HostLoad {
  /** Entities with decoded state in memory, over all owned shards. */
  readonly resident: number;
  /** Entities of owned shards, resident or passivated. */
  readonly entities: number;
  /** Domain units applied per second (readings, for the device twin), as last measured. */
  readonly unitsPerSec: number;
  /** Input messages not yet consumed per owned shard, as last measured. */
  readonly lag: ReadonlyMap<number, number>;
}
