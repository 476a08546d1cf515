// Ownership of one node, wired together: the bucket mirror (one watch), membership heartbeats, coordinator
// candidacy and the ops API, and the per-shard lifecycle (shard-lifecycle.ts) that turns assignments into
// leases and host calls. One timer drives heartbeat, lease renewals and candidacy; close() hands every
// shard over gracefully within a deadline.
import { jetstream } from "@nats-io/jetstream";
import { Bucket, Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { RuntimeError } from "../errors.ts";
import type { ShardHost, ShardLease } from "../shard-host.ts";
import type { Names } from "../subjects.ts";
import { ClusterState, ClusterWatch, type StateChange } from "./cluster-state.ts";
import { Coordinator, type RoundResult } from "./coordinator.ts";
import { LeaseStore } from "./lease.ts";
import { Membership } from "./membership.ts";
import { ensureClusterMeta, openClusterBucket } from "./meta.ts";
import { OpsServer } from "./ops.ts";
import { resolveOwnershipConfig, type OwnershipConfig, type OwnershipOptions } from "./options.ts";
import { NODE_ID } from "./records.ts";
import { PENDING_STEP_REPORT_MS, ShardLifecycle, type ShardEvents, type ShardSlotState } from "./shard-lifecycle.ts";
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

/** Events for metrics and logs (shard events: see {@link ShardEvents}). Durations in ms. */
export interface OwnershipEvents extends ShardEvents {
  /** This node became or stopped being the coordinator. */
  coordinator: { leader: boolean; epoch: number };
  /** A coordinator round ran on this node. */
  round: RoundResult;
}

/** See {@link Ownership.diagnose}. */
export interface OwnershipDiagnosis {
  readonly nodeId: string;
  readonly watchRevision: number;
  readonly coordinator: boolean;
  readonly campaignPendingMs?: number;
  readonly heartbeatInFlight: boolean;
  readonly frozen: boolean;
  readonly closing: boolean;
  readonly shards: ShardSlotState[];
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
  /**
   * What this node's ownership is doing, for an operator or a test harness asking why a shard is not
   * served: the mirror's revision, coordinator role, timers in flight and every shard held or wanted.
   */
  diagnose(): OwnershipDiagnosis;
  /** Test hook: behave like a paused process (no heartbeats, renewals, campaigns or host calls). */
  freeze(): void;
  /** Test hook: resume after {@link freeze}; stale leases are detected and aborted first. */
  unfreeze(): void;
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
  // Reads (the refresh after a lost CAS, the claim of a node id) go to the stream's leader: a direct get
  // may be answered by a replica that lags behind, and a refresh from one tells the node nothing new
  // while every write it bases on it conflicts.
  if (kv instanceof Bucket) kv.direct = false;
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
  readonly #shards: ShardLifecycle;
  readonly #ops: OpsServer;
  readonly #listeners = new Map<keyof OwnershipEvents, Set<(e: never) => void>>();
  #tick: NodeJS.Timeout | undefined;
  #heartbeating: Promise<number> | undefined;
  #watchRestartedAt = 0;
  #campaigning = false;
  /** When the campaign in flight began (performance.now()) and when that was last logged as pending. */
  #campaignSince = 0;
  #campaignReportedAt = 0;
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
    this.#shards = new ShardLifecycle({
      nodeId: this.nodeId,
      shards: args.shards,
      host: args.host,
      state: this.#state,
      leases: new LeaseStore(kv, this.#state, { nodeId: this.nodeId, ttlMs: config.leaseTtlMs, now }),
      config,
      frozen: () => this.#frozen,
      closing: () => this.#closing,
      emit: (event, e) => this.#emit(event, e as OwnershipEvents[typeof event]),
    });
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
      stallMs: config.stallMs,
      firstRoundDelayMs: config.heartbeatMs,
      now,
      log,
      paused: () => this.#frozen,
    });
    this.#ops = new OpsServer({ nc: args.nc, names: args.names, coordinator: this.coordinator, view: () => this.#opsView(), log });
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
      this.#state.onDivergence((key, known, read) => this.#watch.rebuild(`${key}: revision ${read} read from the leader, ${known} known here`)),
      this.coordinator.onLeadership((leader, epoch) => this.#emit("coordinator", { leader, epoch })),
      this.coordinator.onRound((r) => this.#emit("round", r)),
    );
    this.#membership.evaluate();
    this.#tick = setInterval(() => this.#onTick(), this.config.heartbeatMs);
    if (this.config.coordinator) void this.#campaign();
    this.#shards.reconcileAll();
  }

  view(): ClusterView {
    return buildClusterView(this.#state, this.#membership, this.nodeId, this.args.shards, this.config.now(), this.#lag);
  }

  held(): ShardLease[] {
    return this.#shards.held();
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

  diagnose(): OwnershipDiagnosis {
    return {
      nodeId: this.nodeId,
      watchRevision: this.#state.watchRevision,
      coordinator: this.coordinator.isLeader(),
      ...(this.#campaigning ? { campaignPendingMs: Math.round(performance.now() - this.#campaignSince) } : {}),
      heartbeatInFlight: this.#heartbeating !== undefined,
      frozen: this.#frozen,
      closing: this.#closing,
      shards: this.#shards.describe(),
    };
  }

  freeze(): void {
    this.#frozen = true;
  }

  unfreeze(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    // like a process waking from a pause: the renewals that were due run first, and find what was lost
    this.#shards.renewAll();
    this.#onTick();
    this.#membership.evaluate();
    this.#shards.reconcileAll();
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
    if (c.kind === "assign") void this.#shards.reconcile(c.shard);
    else if (c.kind === "lease") this.#shards.leaseChanged(c.shard);
  }

  #onTick(): void {
    if (this.#frozen) return;
    this.#shards.renewAll();
    this.#shards.reportPending();
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
    if (this.#campaigning) {
      // a KV request has a deadline, so a campaign never should hang: if one does, say so
      const now = performance.now();
      if (now - this.#campaignReportedAt >= PENDING_STEP_REPORT_MS) {
        this.#campaignReportedAt = now;
        this.config.log("warn", "coordinator campaign still pending", { nodeId: this.nodeId, pendingMs: Math.round(now - this.#campaignSince) });
      }
      return;
    }
    this.#campaigning = true;
    this.#campaignSince = this.#campaignReportedAt = performance.now();
    try {
      await this.coordinator.campaign();
    } finally {
      this.#campaigning = false;
    }
  }

  #report() {
    const owned = this.#shards.held().map((l) => l.shard);
    let rates: Record<number, number> | undefined;
    const measured = this.args.host.rates?.();
    if (measured !== undefined) {
      rates = {};
      for (const s of owned) rates[s] = Math.round((measured.get(s) ?? 0) * 100) / 100;
    }
    const load = this.args.host.load?.();
    let lag: Record<number, number> | undefined;
    if (load !== undefined) {
      lag = {};
      for (const s of owned) lag[s] = load.lag.get(s) ?? 0;
    }
    return {
      owned,
      serving: this.#shards.serving(),
      ...(rates ? { rates } : {}),
      ...(load === undefined ? {} : { resident: load.resident, entities: load.entities, unitsPerSec: load.unitsPerSec, lag }),
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

  // ---- shutdown

  async #close(): Promise<void> {
    const { now, log, closeTimeoutMs, closeConcurrency } = this.config;
    const deadline = now() + closeTimeoutMs;
    const left = () => Math.max(0, deadline - now());
    this.#closing = true;
    this.#frozen = false;
    // tell the coordinator first: a leaving node's shards are reassigned at once, so the next owners
    // are already waiting when each lease is released
    await within(this.#heartbeat(true), Math.min(left(), this.config.heartbeatMs));
    // keep a little of the budget for resigning and deleting the heartbeat
    const stopped = await within(this.#shards.stopAll(closeConcurrency), left() - Math.min(2000, closeTimeoutMs / 4));
    if (!stopped) this.#shards.abortAll("shutdown deadline passed before the shard stopped");
    await within(this.#shards.leaseWritesSettled(), left());
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
    this.#shards.dispose();
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
