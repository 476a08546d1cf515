// The record the shard lifecycle (shard-lifecycle.ts) keeps per shard: its phase, lease, step chain and
// timers, the step awaited now, and what the node's diagnosis reports of it.
import type { HeldLease } from "./lease.ts";

export type Phase = "idle" | "starting" | "running" | "stopping";

/** One shard's lifecycle as the lifecycle's diagnosis reports it. */
export interface ShardSlotState {
  readonly shard: number;
  readonly phase: Phase;
  /** Assigned to this node in the local mirror. */
  readonly wanted: boolean;
  readonly epoch?: number;
  readonly expiresInMs?: number;
  /** A step is queued behind the one running. */
  readonly queued: boolean;
  /** A retry timer is set. */
  readonly retryArmed: boolean;
  readonly renewing: boolean;
  readonly pending?: string;
  readonly pendingMs?: number;
  readonly lastRefusal?: string;
}

export interface Slot {
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
  /** The step awaited now (a lease write or a host call) and since when (performance.now()), for the lifecycle's pending-step report. */
  pending: { what: string; since: number; reportedAt: number } | undefined;
  /** Lease write conflicts in a row (the retry backs off). */
  conflicts: number;
  /** Aborts and failed starts since the shard last ran steadily (the next take backs off). */
  unsteady: number;
  /** Not taken up again before this time (performance.now()): the pause after an abort. */
  pausedUntil: number;
  /** Ends the wait for a host start that the lifecycle gave up on (an abort). */
  abandonStart: (() => void) | undefined;
  /** Why the last attempt to take or start the shard did not serve it (for the stall report). */
  lastRefusal: string | undefined;
  /** When a shard wanted here and not held was last reported (performance.now()). */
  stallReportedAt: number;
}

/** A fresh slot: idle, nothing held, nothing queued. */
export function newSlot(shard: number): Slot {
  return {
    shard,
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
    pending: undefined,
    conflicts: 0,
    unsteady: 0,
    pausedUntil: 0,
    abandonStart: undefined,
    lastRefusal: undefined,
    stallReportedAt: 0,
  };
}

/** Awaits `p` as the slot's current step, so a step that never settles is seen (the pending-step report). */
export async function trackStep<T>(slot: Slot, what: string, p: Promise<T>): Promise<T> {
  const now = performance.now();
  const step = { what, since: now, reportedAt: now };
  slot.pending = step;
  try {
    return await p;
  } finally {
    if (slot.pending === step) slot.pending = undefined;
  }
}

/** The slot as the diagnosis reports it; `now` from performance.now(), `wallNow` the wall clock (ms). */
export function slotState(slot: Slot, wanted: boolean, now: number, wallNow: number): ShardSlotState {
  return {
    shard: slot.shard,
    phase: slot.phase,
    wanted,
    ...(slot.held === undefined ? {} : { epoch: slot.held.epoch, expiresInMs: slot.held.expiresAt - wallNow }),
    queued: slot.queued,
    retryArmed: slot.retry !== undefined,
    renewing: slot.renewing,
    ...(slot.pending === undefined ? {} : { pending: slot.pending.what, pendingMs: Math.round(now - slot.pending.since) }),
    ...(slot.lastRefusal === undefined ? {} : { lastRefusal: slot.lastRefusal }),
  };
}
