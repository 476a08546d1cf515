// Coordinator: one node, elected through the `coordinator` key (CAS), plans rounds and writes
// `assign.<shard>`. Any node may take the key once it is absent or expired; the holder renews it every
// heartbeat, and losing a CAS means someone else coordinates now. Assignments are advice: safety comes
// from leases, so a stale coordinator can at worst cause an extra move, never two owners.
import type { KV } from "@nats-io/kv";
import { RuntimeError } from "../errors.ts";
import type { ClusterState, Versioned } from "./cluster-state.ts";
import { isCasConflict } from "../jetstream-errors.ts";
import { casUpdate } from "./lease.ts";
import type { Membership } from "./membership.ts";
import type { LogFn } from "../log.ts";
import { planAssignment, type Move, type PlanNode } from "./plan.ts";
import {
  COORDINATOR_KEY,
  assignKey,
  drainKey,
  encodeRecord,
  nodeKey,
  type AssignReason,
  type AssignRecord,
  type CoordinatorRecord,
  type DrainRecord,
} from "./records.ts";

/** One planning round. */
export interface RoundResult {
  /** Moves planned (and, unless `dryRun`, written). */
  readonly moves: readonly Move[];
  /** Shards assigned to a live node that does not hold their lease yet, at planning time. */
  readonly inFlight: number;
  readonly dryRun: boolean;
  /** Wall clock (ms). */
  readonly at: number;
}

/** Result of an operator's move. */
export interface MoveResult {
  readonly shard: number;
  readonly from: string | null;
  readonly to: string;
  /** False when the shard was already assigned there. */
  readonly moved: boolean;
}

/** Result of an operator's drain. */
export interface DrainResult {
  readonly nodeId: string;
  /** Shards assigned to it when the drain was recorded (they move off over the next rounds). */
  readonly shards: number;
}

/** Dependencies and timings of {@link Coordinator}. */
export interface CoordinatorOptions {
  readonly kv: KV;
  readonly state: ClusterState;
  readonly membership: Membership;
  readonly nodeId: string;
  readonly shards: number;
  /** Coordinator term from each renewal (ms). */
  readonly ttlMs: number;
  /** Stop acting as coordinator this long before the term runs out unrenewed (ms). */
  readonly safetyMs: number;
  readonly rebalanceIntervalMs: number;
  readonly maxMoves: number;
  readonly weighted: boolean;
  /**
   * Wait this long after being elected before the first automatic round (ms), so nodes starting together
   * have all heartbeated and the shards are spread once instead of all landing on the first node.
   */
  readonly firstRoundDelayMs: number;
  /** Heartbeat records expired this long are deleted (ms). */
  readonly forgetDeadNodeMs: number;
  /**
   * A live node that has not taken the lease of a shard assigned to it this long after the assignment
   * (ms) is passed over: the shard goes to another node (reason `stalled`) and the node gets nothing new
   * for as long again. Whatever keeps a node from starting a shard, the shard is served elsewhere.
   */
  readonly stallMs: number;
  readonly now: () => number;
  readonly log: LogFn;
  /** While true (a frozen node in tests), neither campaigns nor plans. */
  readonly paused: () => boolean;
}

/** Coordinator candidacy and, while elected, the planning loop. */
export class Coordinator {
  #term: Versioned<CoordinatorRecord> | undefined;
  #roundTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** The last round left moves in flight: plan again as soon as leases change, not only on the interval. */
  #pending = false;
  /** No automatic round before this time (ms). */
  #quietUntil = 0;
  #quietTimer: NodeJS.Timeout | undefined;
  /** Nodes passed over for not taking a shard in time, until when (ms). */
  readonly #stalledUntil = new Map<string, number>();
  /**
   * Since when (ms, our clock) each shard has been seen on its way to its node. Counted from what this
   * coordinator saw, not from the assignment's age: a shard assigned long ago whose lease just lapsed (a
   * NATS server lost) is given the full time to be taken again.
   */
  readonly #inFlightSince = new Map<number, { node: string; since: number }>();
  readonly #leadershipListeners = new Set<(leader: boolean, epoch: number) => void>();
  readonly #roundListeners = new Set<(round: RoundResult) => void>();
  readonly #unsubscribe: Array<() => void>;

  constructor(private readonly o: CoordinatorOptions) {
    this.#unsubscribe = [
      o.membership.onChange(() => this.trigger()),
      o.state.onChange((c) => {
        if (this.#pending && (c.kind === "lease" || c.kind === "assign")) this.trigger();
      }),
    ];
  }

  /** True while this node holds an unexpired coordinator term (by its own clock, minus the safety margin). */
  isLeader(now = this.o.now()): boolean {
    return this.#term !== undefined && now < this.#term.value.expiresAt - this.o.safetyMs;
  }

  /** Epoch of our term, or undefined. */
  get epoch(): number | undefined {
    return this.#term?.value.epoch;
  }

  onLeadership(fn: (leader: boolean, epoch: number) => void): () => void {
    this.#leadershipListeners.add(fn);
    return () => this.#leadershipListeners.delete(fn);
  }

  onRound(fn: (round: RoundResult) => void): () => void {
    this.#roundListeners.add(fn);
    return () => this.#roundListeners.delete(fn);
  }

  /** Called every heartbeat: renews our term, or takes the key when it is absent or expired. */
  async campaign(): Promise<void> {
    if (this.#closed || this.o.paused()) return;
    const { kv, state, nodeId, ttlMs, now } = this.o;
    const t = now();
    if (this.#term !== undefined) {
      if (t >= this.#term.value.expiresAt - this.o.safetyMs) {
        this.#depose("term ran out before it could be renewed");
        return;
      }
      const rec: CoordinatorRecord = { nodeId, epoch: this.#term.value.epoch, expiresAt: t + ttlMs };
      const term = this.#term;
      try {
        const revision = await casUpdate(kv, COORDINATOR_KEY, encodeRecord(rec), term.revision);
        // resigned or deposed while the renewal was in flight: leave it to expire or be taken
        if (this.#term !== term) return;
        this.#term = { value: rec, revision };
        this.#remember(rec, revision);
      } catch (err) {
        if (isCasConflict(err)) this.#depose("another node took the coordinator key");
        else this.o.log("warn", "coordinator term not renewed", { error: (err as Error).message });
      }
      return;
    }
    const cur = state.coordinator;
    if (cur !== undefined && cur.value.expiresAt >= t) return;
    const rec: CoordinatorRecord = { nodeId, epoch: (cur?.value.epoch ?? 0) + 1, expiresAt: t + ttlMs };
    try {
      const deleted = state.deleted.get(COORDINATOR_KEY);
      const revision =
        cur !== undefined
          ? await casUpdate(kv, COORDINATOR_KEY, encodeRecord(rec), cur.revision)
          : deleted !== undefined
            ? await casUpdate(kv, COORDINATOR_KEY, encodeRecord(rec), deleted)
            : await kv.create(COORDINATOR_KEY, encodeRecord(rec));
      this.#term = { value: rec, revision };
      this.#remember(rec, revision);
      this.o.log("info", "elected coordinator", { nodeId, epoch: rec.epoch });
      for (const fn of this.#leadershipListeners) fn(true, rec.epoch);
      this.#roundTimer = setInterval(() => this.trigger(), this.o.rebalanceIntervalMs);
      this.#quietUntil = t + this.o.firstRoundDelayMs;
      this.trigger();
    } catch (err) {
      if (!isCasConflict(err)) this.o.log("warn", "coordinator election attempt failed", { error: (err as Error).message });
      else await this.#refresh();
    }
  }

  /** Gives the term up (clean shutdown), so another node takes over at once instead of after the TTL. */
  async resign(): Promise<void> {
    const term = this.#term;
    if (term === undefined) return;
    this.#depose("resigned");
    const rec: CoordinatorRecord = { nodeId: this.o.nodeId, epoch: term.value.epoch, expiresAt: 0 };
    try {
      await this.o.kv.update(COORDINATOR_KEY, encodeRecord(rec), term.revision);
    } catch {
      // someone took it already, or NATS is down and it expires on its own
    }
  }

  /** Plans a round soon (coalesced: at most one runs at a time, and one more after it if asked meanwhile). */
  trigger(): void {
    if (this.#closed || !this.isLeader() || this.o.paused()) return;
    const wait = this.#quietUntil - this.o.now();
    if (wait > 0) {
      this.#quietTimer ??= setTimeout(() => {
        this.#quietTimer = undefined;
        this.trigger();
      }, wait);
      return;
    }
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.round();
        } catch (err) {
          this.o.log("warn", "rebalance round failed", { error: (err as Error).message });
        }
      } while (this.#again && !this.#closed && this.isLeader() && !this.o.paused());
    })().finally(() => (this.#running = undefined));
  }

  /**
   * Plans one round from the local view and, unless `dryRun`, writes the moves. `unpin` lets rebalancing
   * move shards an operator placed.
   * @throws RuntimeError AIRTWIN_ERR_OPS_NOT_COORDINATOR when this node is not the coordinator.
   */
  async round(opts: { dryRun?: boolean; unpin?: boolean } = {}): Promise<RoundResult> {
    this.#requireLeader();
    const { state, membership, shards, now } = this.o;
    const t = now();
    const live = membership.liveNodes(t);
    const servingOf = new Map(live.map((n) => [n.nodeId, n.serving === undefined ? undefined : new Set(n.serving)]));
    const liveIds = new Set(live.filter((n) => !n.leaving).map((n) => n.nodeId));
    const nodes: PlanNode[] = live.map((n) => ({ id: n.nodeId, draining: n.draining, leaving: n.leaving, ...(n.rates ? { rates: n.rates } : {}) }));
    const current = new Map<number, string | null>();
    const pinned = new Set<number>();
    const assignedAt = new Map<number, number>();
    const stalled = new Map<number, string>();
    let inFlight = 0;
    for (let s = 0; s < shards; s++) {
      const a = state.assignments.get(s)?.value;
      const node = a?.node ?? null;
      current.set(s, node);
      if (a !== undefined) assignedAt.set(s, a.at);
      if (a?.pinned === true && opts.unpin !== true) pinned.add(s);
      if (node === null || !liveIds.has(node)) {
        this.#inFlightSince.delete(s);
        continue;
      }
      const lease = state.leases.get(s)?.value;
      const leased = lease !== undefined && lease.owner === node && lease.expiresAt > t;
      // served once the node holds the lease and says its host serves the shard: a node that takes the
      // lease and fails to start, again and again, or whose start hangs, is not serving it
      const serving = servingOf.get(node);
      if (leased && (serving === undefined || serving.has(s))) this.#inFlightSince.delete(s);
      else {
        const seen = this.#inFlightSince.get(s);
        if (seen === undefined || seen.node !== node) this.#inFlightSince.set(s, { node, since: t });
        else if (t - seen.since >= this.o.stallMs && liveIds.size > 1) {
          // on its way too long: planned again below, elsewhere
          stalled.set(s, node);
          current.set(s, null);
          continue;
        }
      }
      if (!leased) {
        inFlight++;
        // a shard still on its way is not moved again by rebalancing (drain and death still move it)
        pinned.add(s);
      }
    }
    for (const [node, until] of this.#stalledUntil) if (until <= t) this.#stalledUntil.delete(node);
    if (opts.dryRun !== true) {
      for (const [s, node] of stalled) {
        this.#stalledUntil.set(node, t + this.o.stallMs);
        this.#inFlightSince.delete(s);
      }
    }
    const plan = planAssignment({
      shards,
      nodes,
      current,
      maxMoves: Math.max(0, this.o.maxMoves - inFlight),
      weighted: this.o.weighted,
      pinned,
      assignedAt,
      avoid: new Set([...this.#stalledUntil.keys(), ...stalled.values()]),
    });
    // a stalled shard planned as an orphan is a move of its own kind, from the node that did not take it
    const moves = plan.moves.map((m) => {
      const from = stalled.get(m.shard);
      return from === undefined ? m : { ...m, from, reason: "stalled" as const };
    });
    const dryRun = opts.dryRun === true;
    if (!dryRun) {
      await Promise.all(moves.map((m) => this.#assign(m.shard, { node: m.to, at: t, by: this.o.nodeId, reason: m.reason })));
      await this.#forgetDeadNodes(t);
      this.#pending = inFlight > 0 || moves.length > 0;
    }
    const result: RoundResult = { moves, inFlight, dryRun, at: t };
    if (stalled.size > 0 && !dryRun) {
      this.o.log("warn", "shards not taken by their assigned node in time; assigned elsewhere", {
        shards: [...stalled].map(([s, node]) => `${s}:${node}`).join(" "),
        passedOverMs: this.o.stallMs,
      });
    }
    if (moves.length > 0 && !dryRun) {
      this.o.log("info", "shards reassigned", { moves: moves.map((m) => `${m.shard}:${m.from ?? "-"}>${m.to}(${m.reason})`).join(" "), inFlight });
    }
    for (const fn of this.#roundListeners) fn(result);
    return result;
  }

  /**
   * Operator move: assigns `shard` to `to` and pins it there (rebalancing leaves it; drain and death still move it).
   * @throws RuntimeError AIRTWIN_ERR_OPS_SHARD_RANGE, AIRTWIN_ERR_OPS_NODE_UNKNOWN, AIRTWIN_ERR_OPS_NODE_DRAINING,
   *   AIRTWIN_ERR_OPS_NOT_COORDINATOR
   */
  async move(shard: number, to: string): Promise<MoveResult> {
    this.#requireLeader();
    this.#requireShard(shard);
    const node = this.#requireLiveNode(to);
    if (node.draining) {
      throw new RuntimeError("OPS_NODE_DRAINING", `node "${to}" is ${node.leaving ? "leaving" : "draining"} and takes no shards`, {
        details: { node: to },
      });
    }
    // a conflict means our view was behind; #assign refreshed it, so one more try normally succeeds
    for (let attempt = 1; ; attempt++) {
      const from = this.o.state.assignments.get(shard)?.value.node ?? null;
      if (await this.#assign(shard, { node: to, at: this.o.now(), by: this.o.nodeId, reason: "move", pinned: true })) {
        this.trigger();
        return { shard, from, to, moved: from !== to };
      }
      if (attempt >= 3) {
        throw new RuntimeError("OPS_NOT_COORDINATOR", `assignment of shard ${shard} keeps changing under this coordinator; retry`, {
          details: { shard },
        });
      }
    }
  }

  /**
   * Operator drain: records `drain.<node>`; its shards move off over the next rounds (maxMoves per round).
   * The request lasts until the node restarts.
   * @throws RuntimeError AIRTWIN_ERR_OPS_NODE_UNKNOWN, AIRTWIN_ERR_OPS_NOT_COORDINATOR
   */
  async drain(nodeId: string): Promise<DrainResult> {
    this.#requireLeader();
    this.#requireLiveNode(nodeId);
    const rec: DrainRecord = { nodeId, at: this.o.now(), by: this.o.nodeId };
    const value = encodeRecord(rec);
    const revision = await this.o.kv.put(drainKey(nodeId), value);
    this.o.state.apply({ key: drainKey(nodeId), operation: "PUT", revision, value });
    let shards = 0;
    for (const { value: a } of this.o.state.assignments.values()) if (a.node === nodeId) shards++;
    this.trigger();
    return { nodeId, shards };
  }

  close(): void {
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    clearInterval(this.#roundTimer);
    clearTimeout(this.#quietTimer);
  }

  /** Waits for a round in progress (used on close). */
  async settled(): Promise<void> {
    await this.#running;
  }

  /** CAS-writes an assignment against the revision in our view; false when it changed meanwhile. */
  async #assign(shard: number, rec: AssignRecord & { reason: AssignReason }): Promise<boolean> {
    const { kv, state } = this.o;
    const key = assignKey(shard);
    const cur = state.assignments.get(shard);
    const previous = cur?.revision ?? state.deleted.get(key) ?? 0;
    const value = encodeRecord(rec);
    try {
      const revision = previous === 0 ? await kv.create(key, value) : await casUpdate(kv, key, value, previous);
      state.apply({ key, operation: "PUT", revision, value });
      return true;
    } catch (err) {
      if (!isCasConflict(err)) throw err;
      state.applyGet(key, await kv.get(key));
      return false;
    }
  }

  /** Deletes heartbeats (and drain requests) of nodes dead for a long time, so crashed ids do not pile up. */
  async #forgetDeadNodes(now: number): Promise<void> {
    const { kv, state } = this.o;
    for (const [nodeId, { value, revision }] of state.nodes) {
      if (value.expiresAt >= now - this.o.forgetDeadNodeMs) continue;
      try {
        // CAS: a node that came back in the meantime keeps its record
        await kv.delete(nodeKey(nodeId), { previousSeq: revision });
        if (state.drains.has(nodeId)) await kv.delete(drainKey(nodeId));
        this.o.log("info", "forgot dead node", { nodeId, expiredAt: value.expiresAt });
      } catch {
        // changed meanwhile, or NATS is down: next round
      }
    }
  }

  #remember(rec: CoordinatorRecord, revision: number): void {
    this.o.state.apply({ key: COORDINATOR_KEY, operation: "PUT", revision, value: encodeRecord(rec) });
  }

  async #refresh(): Promise<void> {
    try {
      this.o.state.applyGet(COORDINATOR_KEY, await this.o.kv.get(COORDINATOR_KEY));
    } catch {
      // the watch will tell
    }
  }

  #depose(reason: string): void {
    const term = this.#term;
    if (term === undefined) return;
    this.#term = undefined;
    clearInterval(this.#roundTimer);
    this.o.log("info", "no longer coordinator", { nodeId: this.o.nodeId, epoch: term.value.epoch, reason });
    for (const fn of this.#leadershipListeners) fn(false, term.value.epoch);
  }

  #requireLeader(): void {
    if (!this.isLeader()) throw new RuntimeError("OPS_NOT_COORDINATOR", `node "${this.o.nodeId}" is not the coordinator`);
  }

  #requireShard(shard: number): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.o.shards) {
      throw new RuntimeError("OPS_SHARD_RANGE", `shard ${String(shard)} is out of range 0..${this.o.shards - 1}`, {
        details: { shard, shards: this.o.shards },
      });
    }
  }

  #requireLiveNode(nodeId: string) {
    const node = this.o.membership.liveNodes().find((n) => n.nodeId === nodeId);
    if (node === undefined) throw new RuntimeError("OPS_NODE_UNKNOWN", `no live node "${nodeId}"`, { details: { node: nodeId } });
    return node;
  }
}
