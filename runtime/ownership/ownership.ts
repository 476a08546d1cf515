// Ownership of one node: membership, coordinator candidacy, and the per-shard loop that turns
// assignments into leases and host calls. For each shard assigned here: wait until its lease is free,
// take it (epoch + 1), host.start(lease). For each shard held here that is assigned elsewhere (or on
// close): host.stop(shard, reason), then release the lease so the next owner need not wait for expiry.
// Leases are renewed every heartbeat; a renewal that is refused, or that cannot be done before the lease
// runs out, aborts the shard on the host at once.
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { RuntimeError } from "../errors.ts";
import type { ShardHost, ShardLease, StopReason } from "../shard-host.ts";
import type { Names } from "../subjects.ts";
import { ClusterState, ClusterWatch, type StateChange } from "./cluster-state.ts";
import { Coordinator, type RoundResult } from "./coordinator.ts";
import { LeaseStore, type HeldLease } from "./lease.ts";
import { Membership } from "./membership.ts";
import { ensureClusterMeta, openClusterBucket } from "./meta.ts";
import { OpsServer } from "./ops.ts";
import { resolveOwnershipConfig, type OwnershipConfig, type OwnershipOptions } from "./options.ts";
import { NODE_ID, type AssignReason } from "./records.ts";
import { buildClusterView, type ClusterView } from "./view.ts";

/** Arguments of {@link startOwnership}. */
export interface StartOwnershipArgs {
  readonly nc: NatsConnection;
  /** KV manager to use. Default: one on `nc` with `requestTimeoutMs`. */
  readonly kvm?: Kvm;
  readonly names: Names;
  /** 1–64 chars of `[A-Za-z0-9_-]`, unique among live nodes. */
  readonly nodeId: string;
  /** Shard count; must match the cluster's `meta` (fixed at creation). */
  readonly shards: number;
  /** Stream count; must match the cluster's `meta`. */
  readonly streams: number;
  /** Replicas of the cluster bucket when this node creates it. Default 1. */
  readonly replicas?: number;
  readonly host: ShardHost;
  readonly options?: OwnershipOptions;
  /** Per-shard consumer lag for the ops cluster view (added by the node). */
  readonly lagProvider?: () => Promise<Map<number, number>>;
}

/** Events for metrics and logs. Durations in ms. */
export interface OwnershipEvents {
  /** A lease was taken and the host serves the shard. `waitMs`: from seeing the assignment to holding the lease. */
  acquired: { shard: number; epoch: number; waitMs: number; startMs: number };
  /** A shard was stopped and its lease released. */
  released: { shard: number; epoch: number; reason: StopReason; stopMs: number; heldMs: number };
  /** A lease was lost (taken, refused, or run out unrenewed) and the host told to abort. */
  aborted: { shard: number; epoch: number; reason: string; heldMs: number };
  /** This node became or stopped being the coordinator. */
  coordinator: { leader: boolean; epoch: number };
  /** A coordinator round ran on this node. */
  round: RoundResult;
}

/** A node's running ownership. */
export interface Ownership extends AsyncDisposable {
  readonly nodeId: string;
  /** The node's coordinator role (ops in-process: move, drain, round). */
  readonly coordinator: Coordinator;
  /** The cluster as this node sees it now. */
  view(): ClusterView;
  /** Leases this node holds (any phase: starting, running, stopping). */
  held(): ShardLease[];
  isCoordinator(): boolean;
  on<K extends keyof OwnershipEvents>(event: K, fn: (e: OwnershipEvents[K]) => void): () => void;
  /**
   * Graceful: marks the node leaving, stops and releases every held shard (`closeConcurrency` at a time),
   * resigns as coordinator and deletes the heartbeat, all within `closeTimeoutMs` (what has not stopped by
   * then is aborted).
   */
  close(): Promise<void>;
  /** Test hook: behave like a paused process (no heartbeats, renewals, campaigns or host calls). */
  freeze(): void;
  /** Test hook: resume after {@link freeze}; stale leases are detected and aborted first. */
  unfreeze(): void;
}

type Phase = "idle" | "starting" | "running" | "stopping";

interface Slot {
  readonly shard: number;
  held: HeldLease | undefined;
  phase: Phase;
  /** Lifecycle steps of this shard, one at a time. */
  chain: Promise<void>;
  queued: boolean;
  /** Lease writes of this shard (renew, release), one at a time. */
  leaseOp: Promise<unknown>;
  renewing: boolean;
  retry: NodeJS.Timeout | undefined;
  watchdog: NodeJS.Timeout | undefined;
  /** When we first saw it assigned to us (ms), for `waitMs`. */
  wantedSince: number | undefined;
  heldSince: number;
}

/**
 * Starts ownership for one node: opens (or creates) the cluster bucket and its meta, waits until the node
 * id is free, starts the watch, heartbeats, candidacy and the shard loop; resolves once the node's view
 * is in sync with the bucket.
 * @throws RuntimeError AIRTWIN_ERR_SHARDS_MISMATCH, AIRTWIN_ERR_CLUSTER_NODE_ID_IN_USE, AIRTWIN_ERR_CONFIG_INVALID
 */
export async function startOwnership(args: StartOwnershipArgs): Promise<Ownership> {
  const config = resolveOwnershipConfig(args.options);
  if (!NODE_ID.test(args.nodeId)) {
    throw new RuntimeError("CONFIG_INVALID", `node id "${args.nodeId}" must be 1-64 chars of [A-Za-z0-9_-]`, { details: { field: "nodeId" } });
  }
  if (!Number.isInteger(args.shards) || args.shards < 1) {
    throw new RuntimeError("CONFIG_INVALID", `shards must be a positive integer, got ${args.shards}`, { details: { field: "shards" } });
  }
  const kvmFor = (timeout: number): Kvm => args.kvm ?? new Kvm(jetstream(args.nc, { timeout }));
  const created = await openClusterBucket(kvmFor, args.names, args.replicas ?? 1);
  // creating the bucket may take seconds, but every later request should fail fast
  const kv = args.kvm !== undefined ? created : await kvmFor(config.requestTimeoutMs).open(args.names.clusterBucket);
  await ensureClusterMeta(kv, { shards: args.shards, streams: args.streams }, config.now());
  const impl = new OwnershipImpl(args, config, kv);
  await impl.start();
  return impl;
}

class OwnershipImpl implements Ownership {
  readonly nodeId: string;
  readonly coordinator: Coordinator;
  readonly #state = new ClusterState();
  readonly #watch: ClusterWatch;
  readonly #membership: Membership;
  readonly #leases: LeaseStore;
  readonly #ops: OpsServer;
  readonly #slots = new Map<number, Slot>();
  readonly #listeners = new Map<keyof OwnershipEvents, Set<(e: never) => void>>();
  #tick: NodeJS.Timeout | undefined;
  #heartbeating: Promise<number> | undefined;
  #watchRestartedAt = 0;
  #campaigning = false;
  #frozen = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #lag: Map<number, number> | undefined;
  #unsubscribe: Array<() => void> = [];

  constructor(
    private readonly args: StartOwnershipArgs,
    private readonly config: OwnershipConfig,
    private readonly kv: KV,
  ) {
    this.nodeId = args.nodeId;
    const { now, log } = config;
    this.#watch = new ClusterWatch(kv, this.#state, { log });
    this.#membership = new Membership({
      kv,
      state: this.#state,
      nodeId: this.nodeId,
      nodeTtlMs: config.nodeTtlMs,
      now,
      log,
      report: () => this.#report(),
    });
    this.#leases = new LeaseStore(kv, this.#state, { nodeId: this.nodeId, ttlMs: config.leaseTtlMs, now });
    this.coordinator = new Coordinator({
      kv,
      state: this.#state,
      membership: this.#membership,
      nodeId: this.nodeId,
      shards: args.shards,
      ttlMs: config.nodeTtlMs,
      safetyMs: config.leaseSafetyMs,
      rebalanceIntervalMs: config.rebalanceIntervalMs,
      maxMoves: config.maxMoves,
      weighted: config.weighted,
      forgetDeadNodeMs: config.forgetDeadNodeMs,
      firstRoundDelayMs: config.heartbeatMs,
      now,
      log,
      paused: () => this.#frozen,
    });
    this.#ops = new OpsServer({ nc: args.nc, names: args.names, coordinator: this.coordinator, view: () => this.#opsView(), log });
    for (let s = 0; s < args.shards; s++) {
      this.#slots.set(s, {
        shard: s,
        held: undefined,
        phase: "idle",
        chain: Promise.resolve(),
        queued: false,
        leaseOp: Promise.resolve(),
        renewing: false,
        retry: undefined,
        watchdog: undefined,
        wantedSince: undefined,
        heldSince: 0,
      });
    }
  }

  async start(): Promise<void> {
    await this.#watch.start();
    try {
      await this.#membership.claim();
      const revision = await this.#membership.heartbeat();
      // our own heartbeat seen through the watch: everything written before it is in the mirror
      if (!(await this.#state.waitForWatch(revision, Math.max(10_000, this.config.watchStaleMs)))) {
        throw new RuntimeError("NATS_UNAVAILABLE", "the cluster watch did not catch up with this node's first heartbeat");
      }
    } catch (err) {
      await this.#watch.close();
      this.#membership.close();
      this.#ops.close();
      this.coordinator.close();
      throw err;
    }
    this.#unsubscribe.push(
      this.#state.onChange((c) => this.#onChange(c)),
      this.coordinator.onLeadership((leader, epoch) => this.#emit("coordinator", { leader, epoch })),
      this.coordinator.onRound((r) => this.#emit("round", r)),
    );
    this.#membership.evaluate();
    this.#tick = setInterval(() => this.#onTick(), this.config.heartbeatMs);
    if (this.config.coordinator) void this.#campaign();
    for (const s of this.#slots.keys()) this.#reconcile(s);
  }

  view(): ClusterView {
    return buildClusterView(this.#state, this.#membership, this.nodeId, this.args.shards, this.config.now(), this.#lag);
  }

  held(): ShardLease[] {
    const out: ShardLease[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.held !== undefined) out.push({ shard: slot.shard, epoch: slot.held.epoch, owner: slot.held.owner });
    }
    return out;
  }

  isCoordinator(): boolean {
    return this.coordinator.isLeader();
  }

  on<K extends keyof OwnershipEvents>(event: K, fn: (e: OwnershipEvents[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(fn as (e: never) => void);
    return () => set.delete(fn as (e: never) => void);
  }

  freeze(): void {
    this.#frozen = true;
  }

  unfreeze(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    // like a process waking from a pause: the renewals that were due run first, and find what was lost
    this.#renewAll();
    this.#onTick();
    this.#membership.evaluate();
    for (const s of this.#slots.keys()) this.#reconcile(s);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- events from the mirror and timers

  #onChange(c: StateChange): void {
    if (this.#frozen) return;
    if (c.kind === "assign") this.#reconcile(c.shard);
    else if (c.kind === "lease") {
      const slot = this.#slots.get(c.shard);
      if (slot === undefined) return;
      const held = slot.held;
      const cur = this.#state.leases.get(c.shard);
      if (held !== undefined && cur !== undefined && cur.revision > held.revision && (cur.value.owner !== held.owner || cur.value.epoch !== held.epoch)) {
        const by = cur.value.owner === null ? `released at epoch ${cur.value.epoch}` : `taken by ${cur.value.owner} at epoch ${cur.value.epoch}`;
        this.#abort(slot, `lease ${by}`, false);
      } else if (held === undefined && this.#wants(c.shard)) this.#reconcile(c.shard);
    }
  }

  #onTick(): void {
    if (this.#frozen) return;
    this.#renewAll();
    void this.#heartbeat();
    // while closing, a coordinator keeps its term (it reassigns our shards) but nobody new campaigns
    if (this.config.coordinator && (!this.#closing || this.coordinator.isLeader())) void this.#campaign();
  }

  /** Writes a heartbeat (`force`: even if one is in flight, e.g. to announce leaving at once). */
  async #heartbeat(force = false): Promise<void> {
    if (this.#heartbeating !== undefined && !force) return;
    const write = this.#membership.heartbeat();
    this.#heartbeating = write;
    let revision: number;
    try {
      revision = await write;
    } catch (err) {
      this.config.log("warn", "heartbeat not written", { nodeId: this.nodeId, error: (err as Error).message });
      return;
    } finally {
      if (this.#heartbeating === write) this.#heartbeating = undefined;
    }
    // the watch must show our own write soon; if not, it is stuck (e.g. its consumer was lost with a server)
    const seen = await this.#state.waitForWatch(revision, this.config.watchStaleMs);
    const t = this.config.now();
    if (!seen && this.#closed === undefined && t - this.#watchRestartedAt >= this.config.watchStaleMs) {
      this.#watchRestartedAt = t;
      this.#watch.restart(`own heartbeat ${revision} not seen within ${this.config.watchStaleMs} ms`);
    }
  }

  async #campaign(): Promise<void> {
    if (this.#campaigning) return;
    this.#campaigning = true;
    try {
      await this.coordinator.campaign();
    } finally {
      this.#campaigning = false;
    }
  }

  #report() {
    const owned: number[] = [];
    for (const slot of this.#slots.values()) if (slot.held !== undefined) owned.push(slot.shard);
    let rates: Record<number, number> | undefined;
    const measured = this.args.host.rates?.();
    if (measured !== undefined) {
      rates = {};
      for (const s of owned) rates[s] = Math.round((measured.get(s) ?? 0) * 100) / 100;
    }
    return {
      owned,
      ...(rates ? { rates } : {}),
      draining: this.#closing || this.#state.drains.has(this.nodeId),
      leaving: this.#closing,
    };
  }

  async #opsView(): Promise<ClusterView> {
    if (this.args.lagProvider !== undefined) {
      try {
        this.#lag = await this.args.lagProvider();
      } catch (err) {
        this.config.log("warn", "lag provider failed", { error: (err as Error).message });
      }
    }
    return this.view();
  }

  // ---- per-shard lifecycle

  #wants(shard: number): boolean {
    return !this.#closing && this.#state.assignments.get(shard)?.value.node === this.nodeId;
  }

  /** Queues one lifecycle step for `shard` (coalesced while one is already queued). */
  #reconcile(shard: number): Promise<void> {
    const slot = this.#slots.get(shard)!;
    if (slot.queued) return slot.chain;
    slot.queued = true;
    slot.chain = slot.chain
      .then(() => {
        slot.queued = false;
        return this.#step(slot);
      })
      .catch((err: unknown) => this.config.log("error", "shard ownership step failed", { shard, error: (err as Error).message }));
    return slot.chain;
  }

  async #step(slot: Slot): Promise<void> {
    if (this.#frozen) return;
    const wants = this.#wants(slot.shard);
    if (wants) slot.wantedSince ??= this.config.now();
    else slot.wantedSince = undefined;
    if (wants && slot.held === undefined) await this.#acquire(slot);
    else if (!wants && slot.held !== undefined && slot.phase === "running") await this.#stop(slot);
  }

  async #acquire(slot: Slot): Promise<void> {
    clearTimeout(slot.retry);
    const { shard } = slot;
    const r = await this.#leases.acquire(shard);
    if (!r.ok) {
      const delay = r.reason === "held" ? Math.max(1, r.expiresAt - this.config.now() + 1) : r.reason === "conflict" ? 10 : this.config.heartbeatMs;
      slot.retry = setTimeout(() => void this.#reconcile(shard), delay);
      return;
    }
    const lease = r.lease;
    if (this.#frozen || !this.#wants(shard)) {
      // the world moved on while we were acquiring: hand it straight back
      await this.#leases.release(lease);
      return this.#reconcileLater(slot);
    }
    slot.held = lease;
    slot.phase = "starting";
    slot.heldSince = performance.now();
    this.#arm(slot);
    const t0 = performance.now();
    try {
      await this.args.host.start({ shard, epoch: lease.epoch, owner: lease.owner });
    } catch (err) {
      this.config.log("error", "shard failed to start; lease released", { shard, epoch: lease.epoch, error: (err as Error).message });
      if (slot.held?.epoch === lease.epoch) this.#abort(slot, `start failed: ${(err as Error).message}`, true);
      slot.retry = setTimeout(() => void this.#reconcile(shard), this.config.heartbeatMs);
      return;
    }
    if (slot.held?.epoch !== lease.epoch) return;
    slot.phase = "running";
    const waitMs = slot.wantedSince === undefined ? 0 : Math.max(0, this.config.now() - slot.wantedSince);
    slot.wantedSince = undefined;
    this.config.log("info", "shard acquired", { shard, epoch: lease.epoch, waitMs, startMs: Math.round(performance.now() - t0) });
    this.#emit("acquired", { shard, epoch: lease.epoch, waitMs, startMs: performance.now() - t0 });
    // the assignment may have changed while the host was starting
    this.#reconcileLater(slot);
  }

  async #stop(slot: Slot): Promise<void> {
    const lease = slot.held!;
    const reason = this.#closing ? "shutdown" : stopReason(this.#state.assignments.get(slot.shard)?.value.reason);
    slot.phase = "stopping";
    const t0 = performance.now();
    try {
      await this.args.host.stop(slot.shard, reason);
    } catch (err) {
      this.config.log("error", "shard failed to stop cleanly; aborting it", { shard: slot.shard, error: (err as Error).message });
      if (slot.held?.epoch === lease.epoch) this.#abort(slot, `stop failed: ${(err as Error).message}`, true);
      return;
    }
    // lost meanwhile: abort already told the host, and there is nothing of ours to release
    if (slot.held?.epoch !== lease.epoch) return;
    const stopMs = performance.now() - t0;
    const heldMs = performance.now() - slot.heldSince;
    await this.#release(slot);
    this.config.log("info", "shard released", { shard: slot.shard, epoch: lease.epoch, reason, stopMs: Math.round(stopMs) });
    this.#emit("released", { shard: slot.shard, epoch: lease.epoch, reason, stopMs, heldMs });
    this.#reconcileLater(slot);
  }

  #reconcileLater(slot: Slot): void {
    // not awaited: we run inside the slot's chain, and the next step queues behind us
    void this.#reconcile(slot.shard);
  }

  /** Forgets the lease locally, then releases it (after any renewal in flight). */
  async #release(slot: Slot): Promise<void> {
    const lease = slot.held;
    if (lease === undefined) return;
    slot.held = undefined;
    slot.phase = "idle";
    clearTimeout(slot.watchdog);
    const op = slot.leaseOp.then(() => this.#leases.release(lease)).catch(() => false);
    slot.leaseOp = op;
    await op;
  }

  /** The lease is gone (or must be given up): tell the host at once. `release`: we may still hold it, give it back. */
  #abort(slot: Slot, reason: string, release: boolean): void {
    const lease = slot.held;
    if (lease === undefined) return;
    slot.held = undefined;
    slot.phase = "idle";
    clearTimeout(slot.watchdog);
    try {
      this.args.host.abort(slot.shard, reason);
    } catch (err) {
      this.config.log("error", "host.abort threw", { shard: slot.shard, error: (err as Error).message });
    }
    const heldMs = performance.now() - slot.heldSince;
    this.config.log("warn", "shard aborted", { shard: slot.shard, epoch: lease.epoch, reason });
    this.#emit("aborted", { shard: slot.shard, epoch: lease.epoch, reason, heldMs });
    if (release) slot.leaseOp = slot.leaseOp.then(() => this.#leases.release(lease)).catch(() => false);
    if (!this.#closing) this.#reconcileLater(slot);
  }

  /** Arms the watchdog: abort if the lease is not renewed by `expiresAt - leaseSafetyMs`. */
  #arm(slot: Slot): void {
    clearTimeout(slot.watchdog);
    const held = slot.held;
    if (held === undefined) return;
    const due = held.expiresAt - this.config.leaseSafetyMs - this.config.now();
    slot.watchdog = setTimeout(() => this.#checkExpiry(slot), Math.max(0, due));
  }

  #checkExpiry(slot: Slot): void {
    const held = slot.held;
    if (this.#frozen || held === undefined) return;
    if (this.config.now() >= held.expiresAt - this.config.leaseSafetyMs) {
      this.#abort(slot, `lease not renewed in time (expires at ${held.expiresAt})`, true);
    } else this.#arm(slot);
  }

  #renewAll(): void {
    for (const slot of this.#slots.values()) {
      if (slot.held === undefined || slot.renewing) continue;
      slot.renewing = true;
      const op = slot.leaseOp.then(async () => {
        const held = slot.held;
        if (held === undefined) return;
        const r = await this.#leases.renew(held);
        if (slot.held?.epoch !== held.epoch) return; // released or aborted meanwhile
        if (r.ok) {
          slot.held = r.lease;
          this.#arm(slot);
        } else if (r.reason === "lost") {
          this.#abort(slot, `lease renewal refused: ${r.detail}`, false);
        } else {
          this.config.log("warn", "lease not renewed", { shard: slot.shard, epoch: held.epoch, error: r.error.message });
          this.#checkExpiry(slot);
        }
      });
      slot.leaseOp = op
        .catch((err: unknown) => this.config.log("error", "lease renewal failed", { shard: slot.shard, error: (err as Error).message }))
        .finally(() => (slot.renewing = false));
    }
  }

  // ---- shutdown

  async #close(): Promise<void> {
    const { now, log, closeTimeoutMs, closeConcurrency } = this.config;
    const deadline = now() + closeTimeoutMs;
    const left = () => Math.max(0, deadline - now());
    this.#closing = true;
    this.#frozen = false;
    for (const slot of this.#slots.values()) clearTimeout(slot.retry);
    // tell the coordinator first: a leaving node's shards are reassigned at once, so the next owners
    // are already waiting when each lease is released
    await within(this.#heartbeat(true), Math.min(left(), this.config.heartbeatMs));
    const busy = [...this.#slots.values()].filter((s) => s.held !== undefined || s.queued);
    const stopAll = bounded(busy, closeConcurrency, (slot) => this.#reconcile(slot.shard));
    // keep a little of the budget for resigning and deleting the heartbeat
    const stopped = await within(stopAll, left() - Math.min(2000, closeTimeoutMs / 4));
    if (!stopped) {
      for (const slot of this.#slots.values()) {
        if (slot.held !== undefined) this.#abort(slot, "shutdown deadline passed before the shard stopped", true);
      }
    }
    await within(Promise.all([...this.#slots.values()].map((s) => s.leaseOp)), left());
    clearInterval(this.#tick);
    // a heartbeat still in flight must not land after the delete and resurrect us
    await within(this.#heartbeating ?? Promise.resolve(), left());
    for (const u of this.#unsubscribe) u();
    this.#ops.close();
    await within(this.coordinator.settled(), left());
    await within(this.coordinator.resign(), left());
    this.coordinator.close();
    await within(this.#membership.leave().catch((err: unknown) => log("warn", "heartbeat not deleted", { error: (err as Error).message })), left());
    this.#membership.close();
    await within(this.#watch.close(), left());
    for (const slot of this.#slots.values()) clearTimeout(slot.watchdog);
    log("info", "ownership closed", { nodeId: this.nodeId, clean: stopped });
  }

  #emit<K extends keyof OwnershipEvents>(event: K, e: OwnershipEvents[K]): void {
    for (const fn of this.#listeners.get(event) ?? []) {
      try {
        (fn as (e: OwnershipEvents[K]) => void)(e);
      } catch (err) {
        this.config.log("error", "ownership event listener threw", { event, error: (err as Error).message });
      }
    }
  }
}

function stopReason(reason: AssignReason | undefined): StopReason {
  switch (reason) {
    case "move":
      return "move";
    case "drain":
      return "drain";
    default:
      return "rebalance";
  }
}

/** Resolves true when `p` settles within `ms`, false otherwise (p keeps running). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function bounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
