// Pure shard-assignment planner: given the live nodes and who is assigned what, decide the next round of
// moves. No I/O, no clock: the coordinator calls it every round and writes only the moves it returns.

/** A live node as the planner sees it. */
export interface PlanNode {
  readonly id: string;
  /** Draining: keeps serving what it has, gets nothing new, and its shards move off (bounded per round). */
  readonly draining: boolean;
  /** Leaving (shutting down): its shards are being released now, so they are reassigned at once like a dead node's. */
  readonly leaving?: boolean;
  /** Messages per second per shard this node consumes (only read when planning `weighted`). */
  readonly rates?: Readonly<Record<number, number>>;
}

/** Input of {@link planAssignment}. */
export interface PlanInput {
  /** Number of shards, `0 … shards-1`. */
  readonly shards: number;
  /** Live nodes (a node missing here is dead: its shards are orphaned). */
  readonly nodes: readonly PlanNode[];
  /** Current assignment; a missing or null entry is an unassigned shard. */
  readonly current: ReadonlyMap<number, string | null>;
  /** Moves per round for draining and rebalancing (orphans are not counted). Default 8. */
  readonly maxMoves?: number;
  /** Balance by message rate (`1 + msgs/s` per shard) instead of by shard count. Default false. */
  readonly weighted?: boolean;
  /** Shards an operator placed explicitly: rebalancing leaves them alone (drain and death still move them). */
  readonly pinned?: ReadonlySet<number>;
  /**
   * When each shard was last assigned (ms). Among equally good rebalancing moves the shard assigned
   * longest ago goes first, so one shard does not bounce back and forth. Default: ties by shard number.
   */
  readonly assignedAt?: ReadonlyMap<number, number>;
  /**
   * Weighted only: a rebalancing move must narrow the gap between two nodes by at least this fraction of
   * the mean per-node message rate, so noisy rates do not make shards flap. Default 0.05.
   */
  readonly rateTolerance?: number;
  /**
   * Nodes that keep what they serve but get no shard this round (the coordinator's list of nodes that did
   * not take a shard assigned to them in time). Ignored when every eligible node is in it.
   */
  readonly avoid?: ReadonlySet<string>;
}

/** Why a shard moves. */
export type MoveReason = "orphan" | "drain" | "rebalance" | "stalled";

/** One planned move. `from` is null for a shard nobody was assigned. */
export interface Move {
  readonly shard: number;
  readonly from: string | null;
  readonly to: string;
  readonly reason: MoveReason;
}

/** Result of {@link planAssignment}. */
export interface Plan {
  /**
   * Assignment after this round's moves, for every shard. A shard stays on its (possibly dead) node, or
   * null, only when no live node can take it.
   */
  readonly assignments: Map<number, string | null>;
  readonly moves: Move[];
}

/** Default of {@link PlanInput.maxMoves}. */
export const DEFAULT_MAX_MOVES = 8;
/** Default of {@link PlanInput.rateTolerance}. */
export const DEFAULT_RATE_TOLERANCE = 0.05;

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Plans one round. Orphaned shards (unassigned, or on a node that is gone or leaving) go at once to the
 * least-loaded live non-draining nodes; then shards of draining nodes move off; then shards move from the
 * most- to the least-loaded node until counts differ by at most one (or rates are even within tolerance).
 * Drain and rebalance moves together are at most `maxMoves`. Deterministic: ties break by node id, then
 * by the shard assigned longest ago, then by lowest shard. A balanced cluster plans no moves.
 */
export function planAssignment(input: PlanInput): Plan {
  const { shards } = input;
  const maxMoves = input.maxMoves ?? DEFAULT_MAX_MOVES;
  if (!Number.isInteger(shards) || shards < 0) throw new RangeError(`shards must be a non-negative integer, got ${shards}`);
  if (!Number.isInteger(maxMoves) || maxMoves < 0) throw new RangeError(`maxMoves must be a non-negative integer, got ${maxMoves}`);
  const weighted = input.weighted ?? false;
  const pinned = input.pinned ?? new Set<number>();

  const seen = new Set<string>();
  const nodes = [...input.nodes].sort(byId).filter((n) => (seen.has(n.id) ? false : (seen.add(n.id), true)));
  const staying = nodes.filter((n) => !n.leaving);
  const stayingIds = new Set(staying.map((n) => n.id));
  const eligible = staying.filter((n) => !n.draining);
  const avoided = eligible.filter((n) => !(input.avoid?.has(n.id) ?? false));
  // nodes that take new work: not draining, not avoided — else an avoided node, else a draining one
  const targets = avoided.length > 0 ? avoided : eligible;
  const orphanTargets = targets.length > 0 ? targets : staying;

  const rateOf = shardRates(nodes, input.current);
  const weight = (s: number): number => (weighted ? 1 + (rateOf.get(s) ?? 0) : 1);

  const load = new Map<string, number>(staying.map((n) => [n.id, 0]));
  const owned = new Map<string, Set<number>>(staying.map((n) => [n.id, new Set<number>()]));
  const assignments = new Map<number, string | null>();
  const moves: Move[] = [];
  const orphans: number[] = [];
  const place = (s: number, node: string): void => {
    assignments.set(s, node);
    load.set(node, (load.get(node) ?? 0) + weight(s));
    owned.get(node)?.add(s);
  };
  const unplace = (s: number, node: string): void => {
    load.set(node, (load.get(node) ?? 0) - weight(s));
    owned.get(node)?.delete(s);
  };
  const leastLoaded = (among: readonly PlanNode[]): PlanNode | undefined => {
    let best: PlanNode | undefined;
    for (const n of among) if (best === undefined || (load.get(n.id) ?? 0) < (load.get(best.id) ?? 0)) best = n;
    return best;
  };

  for (let s = 0; s < shards; s++) {
    const cur = input.current.get(s) ?? null;
    if (cur !== null && stayingIds.has(cur)) place(s, cur);
    else orphans.push(s);
  }

  // heaviest first spreads rates better; with counts all weights are 1 and this is shard order
  orphans.sort((a, b) => weight(b) - weight(a) || a - b);
  for (const s of orphans) {
    const cur = input.current.get(s) ?? null;
    const to = leastLoaded(orphanTargets);
    if (to === undefined) {
      assignments.set(s, cur);
      continue;
    }
    place(s, to.id);
    moves.push({ shard: s, from: cur, to: to.id, reason: "orphan" });
  }

  let budget = maxMoves;
  const movedNow = new Set<number>(orphans);
  if (eligible.length > 0) {
    for (const d of staying.filter((n) => n.draining)) {
      for (const s of [...(owned.get(d.id) ?? [])].sort((a, b) => a - b)) {
        if (budget <= 0) break;
        const to = leastLoaded(targets)!;
        unplace(s, d.id);
        place(s, to.id);
        movedNow.add(s);
        moves.push({ shard: s, from: d.id, to: to.id, reason: "drain" });
        budget--;
      }
    }
  }

  const tolerance = weighted ? rateGapTolerance(eligible, load, owned, input.rateTolerance) : 1;
  while (budget > 0 && eligible.length > 1) {
    const move = bestRebalanceMove(eligible, targets, load, owned, weight, pinned, movedNow, tolerance, input.assignedAt);
    if (move === undefined) break;
    unplace(move.shard, move.from);
    place(move.shard, move.to);
    movedNow.add(move.shard);
    moves.push({ shard: move.shard, from: move.from, to: move.to, reason: "rebalance" });
    budget--;
  }

  return { assignments, moves };
}

/** Rate of each shard: what its assigned node reports, else what any node reports. */
function shardRates(nodes: readonly PlanNode[], current: ReadonlyMap<number, string | null>): Map<number, number> {
  const rates = new Map<number, number>();
  for (const n of nodes) {
    if (n.rates === undefined) continue;
    for (const [k, v] of Object.entries(n.rates)) {
      const s = Number(k);
      if (!Number.isInteger(s) || typeof v !== "number" || !Number.isFinite(v) || v < 0) continue;
      if (current.get(s) === n.id || !rates.has(s)) rates.set(s, v);
    }
  }
  return rates;
}

function rateGapTolerance(
  eligible: readonly PlanNode[],
  load: ReadonlyMap<string, number>,
  owned: ReadonlyMap<string, ReadonlySet<number>>,
  fraction = DEFAULT_RATE_TOLERANCE,
): number {
  if (eligible.length === 0) return 1;
  let rate = 0;
  for (const n of eligible) rate += (load.get(n.id) ?? 0) - (owned.get(n.id)?.size ?? 0);
  return Math.max(1, (fraction * rate) / eligible.length);
}

/**
 * The single move that narrows the load gap the most: from the most-loaded node that has a movable shard
 * to the least-loaded node. A move counts only if it narrows the gap by at least `tolerance` (so shard
 * counts end within one of each other, and rates within tolerance).
 */
function bestRebalanceMove(
  eligible: readonly PlanNode[],
  targets: readonly PlanNode[],
  load: ReadonlyMap<string, number>,
  owned: ReadonlyMap<string, ReadonlySet<number>>,
  weight: (s: number) => number,
  pinned: ReadonlySet<number>,
  movedNow: ReadonlySet<number>,
  tolerance: number,
  assignedAt: ReadonlyMap<number, number> | undefined,
): { shard: number; from: string; to: string } | undefined {
  const age = (s: number): number => assignedAt?.get(s) ?? -Infinity;
  const byLoad = (a: PlanNode, b: PlanNode) => (load.get(b.id) ?? 0) - (load.get(a.id) ?? 0) || byId(a, b);
  const order = [...eligible].sort(byLoad);
  const low = [...targets].sort(byLoad).at(-1);
  if (low === undefined) return undefined;
  const lowLoad = load.get(low.id) ?? 0;
  for (const high of order) {
    if (high.id === low.id || (load.get(high.id) ?? 0) <= lowLoad) break;
    const gap = (load.get(high.id) ?? 0) - lowLoad;
    let best: { shard: number; gain: number } | undefined;
    for (const s of owned.get(high.id) ?? []) {
      if (pinned.has(s) || movedNow.has(s)) continue;
      const w = weight(s);
      const gain = gap - Math.abs(gap - 2 * w);
      if (gain < tolerance || w >= gap) continue;
      const better =
        best === undefined ||
        gain > best.gain ||
        (gain === best.gain && (age(s) < age(best.shard) || (age(s) === age(best.shard) && s < best.shard)));
      if (better) best = { shard: s, gain };
    }
    if (best !== undefined) return { shard: best.shard, from: high.id, to: low.id };
  }
  return undefined;
}
