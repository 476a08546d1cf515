// The per-shard state machine of one node: for each shard, turn "assigned here" into lease + host.start,
// and "assigned elsewhere" (or closing) into host.stop + release; renew held leases, and abort a shard on
// the host the moment its lease is lost or can no longer be renewed in time. Steps of one shard run one at
// a time; lease writes of one shard (renew, release) too.
import pLimit, { type LimitFunction } from "p-limit";
import { backoffMs } from "../backoff.ts";
import type { ShardHost, ShardLease, StopReason } from "../shard-host.ts";
import type { ClusterState } from "./cluster-state.ts";
import type { HeldLease, LeaseStore } from "./lease.ts";
import type { OwnershipConfig } from "./options.ts";
import type { AssignReason } from "./records.ts";
import { newSlot, slotState, trackStep, type ShardSlotState, type Slot } from "./shard-slot.ts";

export type { ShardSlotState } from "./shard-slot.ts";

/** Lifecycle events, for metrics and logs. Durations in ms. */
export interface ShardEvents {
  /** A lease was taken and the host serves the shard. `waitMs`: from seeing the assignment to serving. */
  acquired: { shard: number; epoch: number; waitMs: number; startMs: number };
  /** A shard was stopped and its lease released. */
  released: { shard: number; epoch: number; reason: StopReason; stopMs: number; heldMs: number };
  /** A lease was lost (taken, refused, or run out unrenewed) and the host told to abort. */
  aborted: { shard: number; epoch: number; reason: string; heldMs: number };
}

/** Dependencies of {@link ShardLifecycle}. */
export interface ShardLifecycleOptions {
  readonly nodeId: string;
  readonly shards: number;
  readonly host: ShardHost;
  readonly state: ClusterState;
  readonly leases: LeaseStore;
  readonly config: OwnershipConfig;
  /** A paused node (test hook): no steps, no watchdog aborts. */
  readonly frozen: () => boolean;
  /** Closing: stop everything, take nothing new. */
  readonly closing: () => boolean;
  readonly emit: <K extends keyof ShardEvents>(event: K, e: ShardEvents[K]) => void;
}

/** A step pending this long is logged (and again each time as long again passes). */
export const PENDING_STEP_REPORT_MS = 30_000;

/** A shard running this long (a renewal then) counts as steady again: its next abort is taken up quickly. */
export const STEADY_RUN_MS = 30_000;
/** The longest pause before taking a shard up again after aborts or failed starts in a row. */
export const RESTART_BACKOFF_MAX_MS = 30_000;

/** Every shard of one node, from "assigned" to "served" and back. */
export class ShardLifecycle {
  readonly #slots = new Map<number, Slot>();
  /** Turns to take and start a shard (maxConcurrentStarts at once): a start reads the shard's whole bucket. */
  readonly #startTurns: LimitFunction;

  constructor(private readonly o: ShardLifecycleOptions) {
    for (let s = 0; s < o.shards; s++) {
      this.#slots.set(s, newSlot(s));
    }
    this.#startTurns = pLimit(o.config.maxConcurrentStarts);
  }

  /** Leases held now (any phase: starting, running, stopping). */
  held(): ShardLease[] {
    const out: ShardLease[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.held !== undefined) out.push({ shard: slot.shard, epoch: slot.held.epoch, owner: slot.held.owner });
    }
    return out;
  }

  /** Shards whose host has started them (phase running). */
  serving(): number[] {
    const out: number[] = [];
    for (const slot of this.#slots.values()) if (slot.phase === "running") out.push(slot.shard);
    return out;
  }

  /** Steps every shard. */
  reconcileAll(): void {
    for (const s of this.#slots.keys()) void this.reconcile(s);
  }

  /** The mirror shows a new value of `lease.<shard>`: abort if it is no longer ours, else maybe take it. */
  leaseChanged(shard: number): void {
    const slot = this.#slots.get(shard);
    if (slot === undefined) return;
    const held = slot.held;
    const cur = this.o.state.leases.get(shard);
    if (held !== undefined && cur !== undefined && cur.revision > held.revision && (cur.value.owner !== held.owner || cur.value.epoch !== held.epoch)) {
      const by = cur.value.owner === null ? `released at epoch ${cur.value.epoch}` : `taken by ${cur.value.owner} at epoch ${cur.value.epoch}`;
      this.#abort(slot, `lease ${by}`, false);
    } else if (held === undefined && this.#wants(shard)) void this.reconcile(shard);
  }

  /** Closing: stops and releases every held shard, `concurrency` at a time; resolves when all are done. */
  async stopAll(concurrency: number): Promise<void> {
    for (const slot of this.#slots.values()) {
      clearTimeout(slot.retry);
      slot.retry = undefined;
    }
    const busy = [...this.#slots.values()].filter((s) => s.held !== undefined || s.queued);
    await bounded(busy, concurrency, (slot) => this.reconcile(slot.shard));
  }

  /** Aborts (and releases, best effort) whatever is still held, e.g. when a close deadline passed. */
  abortAll(reason: string): void {
    for (const slot of this.#slots.values()) this.#abort(slot, reason, true);
  }

  /** Resolves when no lease write is in flight. */
  async leaseWritesSettled(): Promise<void> {
    await Promise.all([...this.#slots.values()].map((s) => s.leaseOp));
  }

  /** Clears every timer (after close). */
  dispose(): void {
    for (const slot of this.#slots.values()) {
      clearTimeout(slot.retry);
      clearTimeout(slot.watchdog);
    }
  }

  #wants(shard: number): boolean {
    return !this.o.closing() && this.o.state.assignments.get(shard)?.value.node === this.o.nodeId;
  }

  /** Queues one lifecycle step for `shard` (coalesced while one is already queued); resolves when it ran. */
  reconcile(shard: number): Promise<void> {
    const slot = this.#slots.get(shard)!;
    if (slot.queued) return slot.chain;
    slot.queued = true;
    slot.chain = slot.chain
      .then(() => {
        slot.queued = false;
        return this.#step(slot);
      })
      .catch((err: unknown) => this.o.config.log("error", "shard ownership step failed", { shard, error: (err as Error).message }));
    return slot.chain;
  }

  async #step(slot: Slot): Promise<void> {
    if (this.o.frozen()) return;
    // The watchdog is a timer, and a process waking from a pause (SIGSTOP, a long GC, a frozen VM) takes
    // the socket's news before its timers: seeing its shards assigned elsewhere it stopped them — the
    // planned stop, whose last commit only fencing kept out — and "released" leases others had taken.
    if (slot.held !== undefined && this.#runOut(slot.held)) return this.#abort(slot, notRenewedInTime(slot.held), true);
    const wants = this.#wants(slot.shard);
    if (wants) slot.wantedSince ??= this.o.config.now();
    else slot.wantedSince = undefined;
    if (wants && slot.held === undefined) await this.#acquire(slot);
    else if (!wants && slot.held !== undefined && slot.phase === "running") await this.#stop(slot);
  }

  async #acquire(slot: Slot): Promise<void> {
    // whatever asks (a retry, the mirror, the stall check), an aborted shard waits out its pause
    const pauseLeft = slot.pausedUntil - performance.now();
    if (pauseLeft > 0) return this.#retryLater(slot, pauseLeft);
    clearTimeout(slot.retry);
    slot.retry = undefined;
    // the lease is taken only once the shard may start: a lease held while waiting would serve nothing
    const waiting = this.#startTurns.activeCount >= this.#startTurns.concurrency;
    if (waiting) slot.lastRefusal = `waiting for a start turn (${this.#startTurns.activeCount} starting, ${this.#startTurns.pendingCount} waiting)`;
    await trackStep(slot, "waiting for a start turn", this.#startTurns(() => this.#takeAndStart(slot, waiting)));
  }

  async #takeAndStart(slot: Slot, waited: boolean): Promise<void> {
    const { shard } = slot;
    if (waited && (this.o.frozen() || !this.#wants(shard))) return; // the world moved on while it waited
    const r = await trackStep(slot, "lease acquire", this.o.leases.acquire(shard));
    if (!r.ok) {
      // conflicts in a row back off: the next attempt reads the mirror again, which a lagging watch may
      // not have brought up to date yet
      slot.conflicts = r.reason === "conflict" ? slot.conflicts + 1 : 0;
      const delay =
        r.reason === "held"
          ? Math.max(1, r.expiresAt - this.o.config.now() + 1)
          : r.reason === "conflict"
            ? backoffMs({ firstMs: 10, maxMs: this.o.config.heartbeatMs }, slot.conflicts - 1)
            : this.o.config.heartbeatMs;
      slot.lastRefusal =
        r.reason === "held"
          ? `lease held by ${r.owner} at epoch ${r.epoch} for ${r.expiresAt - this.o.config.now()} ms more`
          : r.reason === "conflict"
            ? `lease write conflict (${slot.conflicts} in a row): ${r.detail}`
            : `lease store unavailable: ${r.error.message}`;
      this.#retryLater(slot, delay);
      return;
    }
    const lease = r.lease;
    slot.conflicts = 0;
    if (this.o.frozen() || !this.#wants(shard) || this.#runOut(lease)) {
      // the world moved on while we were acquiring (or the answer came after a pause): hand it straight back
      await trackStep(slot, "lease release (no longer wanted)", this.o.leases.release(lease));
      return this.#reconcileLater(slot);
    }
    slot.held = lease;
    slot.phase = "starting";
    slot.heldSince = performance.now();
    this.#arm(slot);
    const t0 = performance.now();
    // an abort (lease lost, or a start given up on) ends the wait: the slot's steps must go on even if
    // the host's start never settles
    const abandoned = new Promise<void>((resolve) => (slot.abandonStart = resolve));
    try {
      await trackStep(slot, `host start (epoch ${lease.epoch})`, Promise.race([this.o.host.start({ shard, epoch: lease.epoch, owner: lease.owner }), abandoned]));
    } catch (err) {
      // warn, not error: the shard is tried again after a heartbeat (a start timing out on a loaded
      // machine or during a NATS failover is expected and recovers); what does not recover shows in the
      // unowned shards of the cluster summary
      this.o.config.log("warn", "shard failed to start; lease released, trying again", { shard, epoch: lease.epoch, error: (err as Error).message });
      slot.lastRefusal = `start failed: ${(err as Error).message}`;
      // the abort takes it up again after a pause (or the abort that ended the start did)
      if (slot.held?.epoch === lease.epoch) this.#abort(slot, slot.lastRefusal, true);
      return;
    }
    slot.abandonStart = undefined;
    if (slot.held?.epoch !== lease.epoch) return;
    slot.phase = "running";
    slot.lastRefusal = undefined;
    const waitMs = slot.wantedSince === undefined ? 0 : Math.max(0, this.o.config.now() - slot.wantedSince);
    slot.wantedSince = undefined;
    this.o.config.log("info", "shard acquired", { shard, epoch: lease.epoch, waitMs, startMs: Math.round(performance.now() - t0) });
    this.o.emit("acquired", { shard, epoch: lease.epoch, waitMs, startMs: performance.now() - t0 });
    // the assignment may have changed while the host was starting
    this.#reconcileLater(slot);
  }

  async #stop(slot: Slot): Promise<void> {
    const lease = slot.held!;
    const reason = this.o.closing() ? "shutdown" : stopReason(this.o.state.assignments.get(slot.shard)?.value.reason);
    slot.phase = "stopping";
    const t0 = performance.now();
    try {
      await trackStep(slot, `host stop (${reason}, epoch ${lease.epoch})`, this.o.host.stop(slot.shard, reason));
    } catch (err) {
      this.o.config.log("error", "shard failed to stop cleanly; aborting it", { shard: slot.shard, error: (err as Error).message });
      if (slot.held?.epoch === lease.epoch) this.#abort(slot, `stop failed: ${(err as Error).message}`, true);
      return;
    }
    // lost meanwhile: abort already told the host, and there is nothing of ours to release
    if (slot.held?.epoch !== lease.epoch) return;
    const stopMs = performance.now() - t0;
    const heldMs = performance.now() - slot.heldSince;
    await this.#release(slot);
    this.o.config.log("info", "shard released", { shard: slot.shard, epoch: lease.epoch, reason, stopMs: Math.round(stopMs) });
    this.o.emit("released", { shard: slot.shard, epoch: lease.epoch, reason, stopMs, heldMs });
    this.#reconcileLater(slot);
  }

  /** One more step after `delayMs` (a retry of a refused acquire or a failed start). */
  #retryLater(slot: Slot, delayMs: number): void {
    clearTimeout(slot.retry);
    slot.retry = setTimeout(() => {
      slot.retry = undefined;
      void this.reconcile(slot.shard);
    }, delayMs);
  }

  #reconcileLater(slot: Slot): void {
    // not awaited: we run inside the slot's chain, and the next step queues behind us
    void this.reconcile(slot.shard);
  }

  /** Forgets the lease locally, then releases it (after any renewal in flight). */
  async #release(slot: Slot): Promise<void> {
    const lease = slot.held;
    if (lease === undefined) return;
    slot.held = undefined;
    slot.phase = "idle";
    clearTimeout(slot.watchdog);
    const op = slot.leaseOp.then(() => this.o.leases.release(lease)).catch(() => false);
    slot.leaseOp = op;
    await trackStep(slot, `lease release (epoch ${lease.epoch})`, op);
  }

  /** What each shard that is held, wanted, queued or busy is doing now (for a diagnostic dump). */
  describe(): ShardSlotState[] {
    const now = performance.now();
    const out: ShardSlotState[] = [];
    for (const slot of this.#slots.values()) {
      const wanted = this.#wants(slot.shard);
      if (slot.held === undefined && !wanted && slot.pending === undefined && !slot.queued) continue;
      out.push(slotState(slot, wanted, now, this.o.config.now()));
    }
    return out;
  }

  /**
   * Logs every step pending for {@link PENDING_STEP_REPORT_MS} or more (again after each further period):
   * steps of one shard run one at a time, so a host call or lease write that never settles would
   * otherwise hold the shard unserved without a word. Called every heartbeat.
   */
  reportPending(): void {
    const now = performance.now();
    for (const slot of this.#slots.values()) {
      const p = slot.pending;
      if (p !== undefined && now - p.reportedAt >= PENDING_STEP_REPORT_MS) {
        p.reportedAt = now;
        this.o.config.log("warn", "shard step still pending", { shard: slot.shard, step: p.what, pendingMs: Math.round(now - p.since), phase: slot.phase });
      }
      this.#checkStall(slot, now);
    }
  }

  /**
   * A shard assigned here and not held with no step running, queued or timed would wait for the next
   * change of its keys: take it up again (every heartbeat). One assigned here and not served for
   * {@link PENDING_STEP_REPORT_MS} is reported with the last refusal, again after each further period.
   */
  #checkStall(slot: Slot, now: number): void {
    if (this.o.frozen()) return;
    const start = slot.phase === "starting" ? slot.pending : undefined;
    if (start !== undefined && now - start.since >= PENDING_STEP_REPORT_MS && (!this.#wants(slot.shard) || now - start.since >= this.o.config.startTimeoutMs)) {
      // a start that hangs holds the lease (renewed) while serving nothing: give it up, so the shard is
      // started again here or, once the coordinator passed this node over, by the next owner
      this.#abort(slot, `start not finished after ${Math.round(now - start.since)} ms`, true);
      return;
    }
    if (slot.held !== undefined || !this.#wants(slot.shard)) return;
    const wall = this.o.config.now();
    slot.wantedSince ??= wall;
    if (slot.pending === undefined && !slot.queued && slot.retry === undefined) void this.reconcile(slot.shard);
    const waitingMs = wall - slot.wantedSince;
    if (waitingMs < PENDING_STEP_REPORT_MS || now - slot.stallReportedAt < PENDING_STEP_REPORT_MS) return;
    slot.stallReportedAt = now;
    this.o.config.log("warn", "shard assigned here but not served", {
      shard: slot.shard,
      waitingMs,
      lastRefusal: slot.lastRefusal ?? "none",
      ...(slot.pending === undefined ? {} : { pending: slot.pending.what }),
      queued: slot.queued,
      retryArmed: slot.retry !== undefined,
    });
  }

  /** The lease is gone (or must be given up): tell the host at once. `release`: we may still hold it, give it back. */
  #abort(slot: Slot, reason: string, release: boolean): void {
    const lease = slot.held;
    if (lease === undefined) return;
    slot.held = undefined;
    slot.phase = "idle";
    clearTimeout(slot.watchdog);
    slot.abandonStart?.();
    slot.abandonStart = undefined;
    try {
      this.o.host.abort(slot.shard, reason);
    } catch (err) {
      this.o.config.log("error", "host.abort threw", { shard: slot.shard, error: (err as Error).message });
    }
    const heldMs = performance.now() - slot.heldSince;
    this.o.config.log("warn", "shard aborted", { shard: slot.shard, epoch: lease.epoch, reason });
    this.o.emit("aborted", { shard: slot.shard, epoch: lease.epoch, reason, heldMs });
    if (release) slot.leaseOp = slot.leaseOp.then(() => this.o.leases.release(lease)).catch(() => false);
    if (this.o.closing()) return;
    const pause = this.#restartPauseMs(slot);
    slot.pausedUntil = performance.now() + pause;
    this.#retryLater(slot, pause);
  }

  /**
   * How long to wait before taking an aborted shard up again: a heartbeat or less the first time, doubling
   * with each abort or failed start in a row up to RESTART_BACKOFF_MAX_MS, each pause between half and all
   * of that so the shards of a node that lost them all do not come back in one herd.
   */
  #restartPauseMs(slot: Slot): number {
    const full = backoffMs({ firstMs: this.o.config.heartbeatMs, maxMs: RESTART_BACKOFF_MAX_MS }, slot.unsteady++);
    return Math.round(full * (0.5 + Math.random() / 2));
  }

  /** Arms the watchdog: abort if the lease is not renewed by `expiresAt - leaseSafetyMs`. */
  #arm(slot: Slot): void {
    clearTimeout(slot.watchdog);
    const held = slot.held;
    if (held === undefined) return;
    const due = held.expiresAt - this.o.config.leaseSafetyMs - this.o.config.now();
    slot.watchdog = setTimeout(() => this.#checkExpiry(slot), Math.max(0, due));
  }

  #checkExpiry(slot: Slot): void {
    const held = slot.held;
    if (this.o.frozen() || held === undefined) return;
    if (this.#runOut(held)) this.#abort(slot, notRenewedInTime(held), true);
    else this.#arm(slot);
  }

  /** The lease is within `leaseSafetyMs` of its expiry by our clock: whatever the store says, it is no longer ours to act on. */
  #runOut(held: HeldLease): boolean {
    return this.o.config.now() >= held.expiresAt - this.o.config.leaseSafetyMs;
  }

  /** Renews every held lease (one renewal per shard in flight at most). */
  renewAll(): void {
    for (const slot of this.#slots.values()) {
      if (slot.held === undefined || slot.renewing) continue;
      slot.renewing = true;
      const op = slot.leaseOp.then(async () => {
        const held = slot.held;
        if (held === undefined) return;
        const r = await this.o.leases.renew(held);
        if (slot.held?.epoch !== held.epoch) return; // released or aborted meanwhile
        if (r.ok) {
          slot.held = r.lease;
          this.#arm(slot);
          if (slot.phase === "running" && performance.now() - slot.heldSince >= STEADY_RUN_MS) slot.unsteady = 0;
        } else if (r.reason === "lost") {
          this.#abort(slot, `lease renewal refused: ${r.detail}`, false);
        } else {
          this.o.config.log("warn", "lease not renewed", { shard: slot.shard, epoch: held.epoch, error: r.error.message });
          this.#checkExpiry(slot);
        }
      });
      slot.leaseOp = op
        .catch((err: unknown) => this.o.config.log("error", "lease renewal failed", { shard: slot.shard, error: (err as Error).message }))
        .finally(() => (slot.renewing = false));
    }
  }
}

function notRenewedInTime(held: HeldLease): string {
  return `lease not renewed in time (expires at ${held.expiresAt})`;
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

/** Runs `fn` over `items`, at most `limit` at a time. */
async function bounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
