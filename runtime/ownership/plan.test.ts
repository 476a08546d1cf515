import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planAssignment, type PlanInput, type PlanNode } from "./plan.ts";

const nodeIds = ["a", "b", "c", "d", "e", "f"];
const deadIds = ["x", "y"];

const arbInput = fc
  .record({
    shards: fc.integer({ min: 0, max: 160 }),
    nodes: fc.uniqueArray(
      fc.record({ id: fc.constantFrom(...nodeIds), draining: fc.boolean(), leaving: fc.boolean() }),
      { selector: (n) => n.id, maxLength: nodeIds.length },
    ),
    maxMoves: fc.integer({ min: 1, max: 12 }),
    seed: fc.array(fc.constantFrom<string | null>(null, ...nodeIds, ...deadIds), { minLength: 160, maxLength: 160 }),
  })
  .map(({ shards, nodes, maxMoves, seed }) => {
    const current = new Map<number, string | null>();
    for (let s = 0; s < shards; s++) current.set(s, seed[s]!);
    return { shards, nodes: nodes.map((n) => ({ ...n, leaving: n.leaving && n.draining })), maxMoves, current };
  });

const eligibleOf = (nodes: readonly PlanNode[]) => nodes.filter((n) => !n.draining && !n.leaving);

function counts(assignments: ReadonlyMap<number, string | null>, nodes: readonly PlanNode[]): Map<string, number> {
  const c = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  for (const node of assignments.values()) if (node !== null && c.has(node)) c.set(node, c.get(node)! + 1);
  return c;
}

function spread(assignments: ReadonlyMap<number, string | null>, nodes: readonly PlanNode[]): number {
  const c = [...counts(assignments, eligibleOf(nodes)).values()];
  return c.length === 0 ? 0 : Math.max(...c) - Math.min(...c);
}

/** Runs rounds, each applying the previous round's assignment, until a round plans nothing. */
function converge(input: PlanInput, maxRounds: number) {
  let current: ReadonlyMap<number, string | null> = input.current;
  for (let round = 1; round <= maxRounds + 1; round++) {
    const plan = planAssignment({ ...input, current });
    if (plan.moves.length === 0) return { rounds: round - 1, assignments: plan.assignments };
    current = plan.assignments;
  }
  return { rounds: Infinity, assignments: current };
}

describe("planAssignment", () => {
  it("assigns a fresh cluster evenly in one round, in shard order, ties to the lowest node id", () => {
    const plan = planAssignment({
      shards: 7,
      nodes: [{ id: "b", draining: false }, { id: "a", draining: false }, { id: "c", draining: false }],
      current: new Map(),
    });
    expect([...plan.assignments.entries()]).toEqual([
      [0, "a"], [1, "b"], [2, "c"], [3, "a"], [4, "b"], [5, "c"], [6, "a"],
    ]);
    expect(plan.moves.every((m) => m.reason === "orphan" && m.from === null)).toBe(true);
  });

  it("moves a dead node's shards at once, unbounded, and nothing else", () => {
    const current = new Map<number, string | null>();
    for (let s = 0; s < 30; s++) current.set(s, ["a", "b", "dead"][s % 3]!);
    const plan = planAssignment({
      shards: 30,
      nodes: [{ id: "a", draining: false }, { id: "b", draining: false }],
      current,
      maxMoves: 2,
    });
    expect(plan.moves).toHaveLength(10);
    expect(plan.moves.every((m) => m.from === "dead" && m.reason === "orphan")).toBe(true);
    expect([...counts(plan.assignments, [{ id: "a", draining: false }, { id: "b", draining: false }]).values()]).toEqual([15, 15]);
  });

  it("drains at most maxMoves per round", () => {
    const current = new Map<number, string | null>();
    for (let s = 0; s < 20; s++) current.set(s, s < 10 ? "a" : "b");
    const nodes = [{ id: "a", draining: true }, { id: "b", draining: false }, { id: "c", draining: false }];
    const plan = planAssignment({ shards: 20, nodes, current, maxMoves: 3 });
    expect(plan.moves.map((m) => [m.shard, m.from, m.to, m.reason])).toEqual([
      [0, "a", "c", "drain"], [1, "a", "c", "drain"], [2, "a", "c", "drain"],
    ]);
  });

  it("keeps a draining node's shards when no other node is alive", () => {
    const current = new Map<number, string | null>([[0, "a"], [1, null]]);
    const plan = planAssignment({ shards: 2, nodes: [{ id: "a", draining: true }], current });
    expect(plan.assignments.get(0)).toBe("a");
    expect(plan.moves).toEqual([{ shard: 1, from: null, to: "a", reason: "orphan" }]);
  });

  it("leaves a leaving node's shards unassigned only when nobody else is there", () => {
    const current = new Map<number, string | null>([[0, "a"]]);
    const alone = planAssignment({ shards: 1, nodes: [{ id: "a", draining: true, leaving: true }], current });
    expect(alone.moves).toEqual([]);
    const withPeer = planAssignment({
      shards: 1,
      nodes: [{ id: "a", draining: true, leaving: true }, { id: "b", draining: false }],
      current,
      maxMoves: 0,
    });
    expect(withPeer.moves).toEqual([{ shard: 0, from: "a", to: "b", reason: "orphan" }]);
  });

  it("rebalancing leaves pinned shards where an operator put them", () => {
    const current = new Map<number, string | null>([[0, "a"], [1, "a"], [2, "a"], [3, "b"]]);
    const nodes = [{ id: "a", draining: false }, { id: "b", draining: false }];
    const plan = planAssignment({ shards: 4, nodes, current, pinned: new Set([0]) });
    expect(plan.moves).toEqual([{ shard: 1, from: "a", to: "b", reason: "rebalance" }]);
  });

  it("rebalancing moves the shard assigned longest ago first, so one shard does not bounce", () => {
    const current = new Map<number, string | null>([[0, "a"], [1, "a"], [2, "a"], [3, "b"]]);
    const nodes = [{ id: "a", draining: false }, { id: "b", draining: false }];
    const assignedAt = new Map([[0, 300], [1, 100], [2, 200], [3, 50]]);
    expect(planAssignment({ shards: 4, nodes, current, assignedAt }).moves).toEqual([{ shard: 1, from: "a", to: "b", reason: "rebalance" }]);
  });

  it("weighted: spreads hot shards, not shard counts", () => {
    // a has the two hot shards, b four idle ones: moving one hot shard evens the rates
    const current = new Map<number, string | null>([[0, "a"], [1, "a"], [2, "b"], [3, "b"], [4, "b"], [5, "b"]]);
    const nodes: PlanNode[] = [
      { id: "a", draining: false, rates: { 0: 1000, 1: 1000 } },
      { id: "b", draining: false, rates: { 2: 0, 3: 0, 4: 0, 5: 0 } },
    ];
    const plan = planAssignment({ shards: 6, nodes, current, weighted: true });
    expect(plan.moves).toEqual([{ shard: 0, from: "a", to: "b", reason: "rebalance" }]);
    expect(planAssignment({ shards: 6, nodes, current: plan.assignments, weighted: true }).moves).toEqual([]);
    // unweighted, the same cluster is balanced by count only
    expect(planAssignment({ shards: 6, nodes, current, weighted: false }).moves).toHaveLength(1);
  });

  it("property: never assigns to a dead, leaving or draining node when an eligible one exists", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const plan = planAssignment(input);
        const eligible = new Set(eligibleOf(input.nodes).map((n) => n.id));
        if (eligible.size === 0) return;
        for (const m of plan.moves) expect(eligible.has(m.to)).toBe(true);
        const live = new Set(input.nodes.filter((n) => !n.leaving).map((n) => n.id));
        for (const [, node] of plan.assignments) expect(node !== null && live.has(node)).toBe(true);
      }),
    );
  });

  it("an avoided node keeps its shards and gets none: orphans and rebalancing go to the others", () => {
    const nodes = [{ id: "a", draining: false }, { id: "b", draining: false }, { id: "c", draining: false }];
    const current = new Map<number, string | null>();
    for (let s = 0; s < 9; s++) current.set(s, s < 6 ? "a" : s < 8 ? "b" : null);
    const plan = planAssignment({ shards: 9, nodes, current, avoid: new Set(["c"]) });
    expect(plan.moves.map((m) => m.to)).not.toContain("c");
    expect([...counts(plan.assignments, nodes).entries()]).toEqual([["a", 5], ["b", 4], ["c", 0]]);
    // its own shards stay, and may move off to balance the others
    const withC = new Map(current);
    withC.set(8, "c");
    const kept = planAssignment({ shards: 9, nodes, current: withC, avoid: new Set(["c"]) });
    expect(kept.assignments.get(8)).toBe("c");
    // every eligible node avoided: the avoid list is ignored rather than leave shards unassigned
    const all = planAssignment({ shards: 3, nodes, current: new Map(), avoid: new Set(["a", "b", "c"]) });
    expect([...all.assignments.values()]).toEqual(["a", "b", "c"]);
  });

  it("property: an avoided node is never a target while another eligible node is not avoided", () => {
    fc.assert(
      fc.property(arbInput, fc.subarray(nodeIds), (input, avoided) => {
        const avoid = new Set(avoided);
        const plan = planAssignment({ ...input, avoid });
        const open = eligibleOf(input.nodes).filter((n) => !avoid.has(n.id));
        if (open.length === 0) return;
        for (const m of plan.moves) expect(avoid.has(m.to), JSON.stringify(m)).toBe(false);
      }),
    );
  });

  it("property: each round moves at most maxMoves shards, not counting orphans", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const plan = planAssignment(input);
        expect(plan.moves.filter((m) => m.reason !== "orphan").length).toBeLessThanOrEqual(input.maxMoves);
        expect(new Set(plan.moves.map((m) => m.shard)).size).toBe(plan.moves.length);
        for (const m of plan.moves) {
          expect(m.from).not.toBe(m.to);
          expect(plan.assignments.get(m.shard)).toBe(m.to);
        }
      }),
    );
  });

  it("property: converges to balanced within ceil(shards/maxMoves)+1 rounds, draining nodes emptied", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const bound = Math.ceil(input.shards / input.maxMoves) + 1;
        const { rounds, assignments } = converge(input, bound);
        expect(rounds).toBeLessThanOrEqual(bound);
        if (eligibleOf(input.nodes).length === 0) return;
        expect(spread(assignments, input.nodes)).toBeLessThanOrEqual(1);
        const eligible = new Set(eligibleOf(input.nodes).map((n) => n.id));
        for (const node of assignments.values()) expect(eligible.has(node!)).toBe(true);
      }),
    );
  });

  it("property: a balanced cluster plans no moves", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 5 }),
        (shards, n, rotate) => {
          const nodes = nodeIds.slice(0, n).map((id) => ({ id, draining: false }));
          const current = new Map<number, string | null>();
          for (let s = 0; s < shards; s++) current.set(s, nodes[(s + rotate) % n]!.id);
          expect(planAssignment({ shards, nodes, current }).moves).toEqual([]);
        },
      ),
    );
  });

  it("property: deterministic regardless of node order", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const a = planAssignment(input);
        const b = planAssignment({ ...input, nodes: [...input.nodes].reverse() });
        expect(b.moves).toEqual(a.moves);
        expect([...b.assignments]).toEqual([...a.assignments]);
      }),
    );
  });

  it("property: weighted planning terminates, stays bounded and never targets a draining node", () => {
    const arbWeighted = arbInput.chain((input) =>
      fc
        .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })), { minLength: input.shards, maxLength: input.shards })
        .map((rates) => {
          const nodes = input.nodes.map((n) => {
            const r: Record<number, number> = {};
            for (const [s, owner] of input.current) if (owner === n.id) r[s] = rates[s]!;
            return { ...n, rates: r };
          });
          return { ...input, nodes, weighted: true };
        }),
    );
    fc.assert(
      fc.property(arbWeighted, (input) => {
        let current: ReadonlyMap<number, string | null> = input.current;
        const eligible = new Set(eligibleOf(input.nodes).map((n) => n.id));
        let rounds = 0;
        for (; rounds <= input.shards + 2; rounds++) {
          const plan = planAssignment({ ...input, current });
          expect(plan.moves.filter((m) => m.reason !== "orphan").length).toBeLessThanOrEqual(input.maxMoves);
          if (eligible.size > 0) for (const m of plan.moves) expect(eligible.has(m.to)).toBe(true);
          if (plan.moves.length === 0) break;
          current = plan.assignments;
        }
        expect(rounds).toBeLessThanOrEqual(input.shards + 2);
      }),
    );
  });
});
