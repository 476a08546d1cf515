// Ownership timing and balancing options: `OwnershipOptions` in (all optional), validated `OwnershipConfig` out.
import { RuntimeError } from "../errors.ts";
import { stderrLog, type LogFn } from "../log.ts";
import { DEFAULT_MAX_MOVES } from "./plan.ts";

/** Structured log sink (same shape as the node runtime's). */

/** Tunables of cluster ownership. Every field is optional; defaults in brackets. */
export interface OwnershipOptions {
  /** How often a node writes its heartbeat and renews its leases (ms). [1000] */
  heartbeatMs?: number;
  /** A node is dead once its heartbeat is this old (ms); also the coordinator's term. [max(5000, 5 × heartbeatMs)] */
  nodeTtlMs?: number;
  /** A lease not renewed for this long is free for the next assignee (ms). [nodeTtlMs] */
  leaseTtlMs?: number;
  /**
   * The owner gives a lease up (aborts the shard) when it could not renew it this long before it expires
   * (ms), so a slow timer or a little clock skew never lets two nodes run a shard. [min(heartbeatMs, leaseTtlMs/4)]
   */
  leaseSafetyMs?: number;
  /** The coordinator plans a round this often, and at once on membership changes (ms). [1000] */
  rebalanceIntervalMs?: number;
  /** Drain and rebalance moves per round, in flight ones included; dead nodes' shards do not count. [8] */
  maxMoves?: number;
  /** Balance shards by message rate rather than count. [false] */
  weighted?: boolean;
  /** Shards stopped and released in parallel on close. [8] */
  closeConcurrency?: number;
  /**
   * Shards this node takes and starts at once; the others wait their turn before taking their lease. A
   * start reads the shard's whole snapshot bucket: at 3 million twins, 64 at once kept nats-server too
   * busy to answer lease renewals in time, every shard was aborted and started again, over and over
   * (docs/RELIABILITY.md, "A node that takes too much at once"). [8]
   */
  maxConcurrentStarts?: number;
  /** close() aborts whatever has not stopped by then (ms). [15000] */
  closeTimeoutMs?: number;
  /** The watch is restarted when it has not shown our own heartbeat this long after writing it (ms). [3 × heartbeatMs] */
  watchStaleMs?: number;
  /** The coordinator deletes heartbeat records expired this long ago (ms). [max(60000, 12 × nodeTtlMs)] */
  forgetDeadNodeMs?: number;
  /**
   * Timeout of each cluster-bucket request (ms), when ownership creates its own KV client. Kept short so a
   * request lost in a NATS outage does not hold up the next renewal for long. [max(2000, 2 × heartbeatMs)]
   */
  requestTimeoutMs?: number;
  /**
   * The coordinator reassigns a shard that a live node has not taken this long after it was seen on its
   * way there, and gives that node nothing new for as long again (ms). [max(60000, 12 × leaseTtlMs)]
   */
  stallMs?: number;
  /**
   * A host start not finished this long after it began is given up (the shard aborted, its lease released,
   * tried again); one no longer assigned here is given up after 30 s (ms). [max(120000, 2 × stallMs)]
   */
  startTimeoutMs?: number;
  /** Whether this node may be elected coordinator. [true] */
  coordinator?: boolean;
  /** Wall clock (ms). [Date.now] */
  now?: () => number;
  /** Log sink. [JSON lines on stderr] */
  log?: LogFn;
}

/** Validated {@link OwnershipOptions} with defaults applied. */
export interface OwnershipConfig {
  readonly heartbeatMs: number;
  readonly nodeTtlMs: number;
  readonly leaseTtlMs: number;
  readonly leaseSafetyMs: number;
  readonly rebalanceIntervalMs: number;
  readonly maxMoves: number;
  readonly weighted: boolean;
  readonly closeConcurrency: number;
  readonly maxConcurrentStarts: number;
  readonly closeTimeoutMs: number;
  readonly watchStaleMs: number;
  readonly forgetDeadNodeMs: number;
  readonly requestTimeoutMs: number;
  readonly stallMs: number;
  readonly startTimeoutMs: number;
  readonly coordinator: boolean;
  readonly now: () => number;
  readonly log: LogFn;
}

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) {
    throw new RuntimeError("CONFIG_INVALID", `ownership option ${name} must be an integer ≥ ${min}, got ${String(value)}`, {
      details: { field: name, value },
    });
  }
  return v;
}

/** Applies defaults and checks the relations between timings. @throws RuntimeError AIRTWIN_ERR_CONFIG_INVALID */
export function resolveOwnershipConfig(o: OwnershipOptions = {}): OwnershipConfig {
  const heartbeatMs = positive("heartbeatMs", o.heartbeatMs, 1000);
  const nodeTtlMs = positive("nodeTtlMs", o.nodeTtlMs, Math.max(5000, 5 * heartbeatMs));
  const leaseTtlMs = positive("leaseTtlMs", o.leaseTtlMs, nodeTtlMs);
  const stallMs = positive("stallMs", o.stallMs, Math.max(60_000, 12 * leaseTtlMs));
  const leaseSafetyMs = positive("leaseSafetyMs", o.leaseSafetyMs, Math.min(heartbeatMs, Math.floor(leaseTtlMs / 4)), 0);
  for (const [name, ttl] of [["nodeTtlMs", nodeTtlMs], ["leaseTtlMs", leaseTtlMs]] as const) {
    // a TTL must survive at least one missed heartbeat
    if (ttl < 2 * heartbeatMs) {
      throw new RuntimeError("CONFIG_INVALID", `ownership option ${name} (${ttl}) must be at least 2 × heartbeatMs (${heartbeatMs})`, {
        details: { field: name, value: ttl },
      });
    }
  }
  if (leaseSafetyMs + heartbeatMs >= leaseTtlMs) {
    throw new RuntimeError("CONFIG_INVALID", `ownership option leaseSafetyMs (${leaseSafetyMs}) + heartbeatMs must be below leaseTtlMs (${leaseTtlMs})`, {
      details: { field: "leaseSafetyMs", value: leaseSafetyMs },
    });
  }
  return {
    heartbeatMs,
    nodeTtlMs,
    leaseTtlMs,
    leaseSafetyMs,
    rebalanceIntervalMs: positive("rebalanceIntervalMs", o.rebalanceIntervalMs, 1000),
    maxMoves: positive("maxMoves", o.maxMoves, DEFAULT_MAX_MOVES),
    weighted: o.weighted ?? false,
    closeConcurrency: positive("closeConcurrency", o.closeConcurrency, 8),
    maxConcurrentStarts: positive("maxConcurrentStarts", o.maxConcurrentStarts, 8),
    closeTimeoutMs: positive("closeTimeoutMs", o.closeTimeoutMs, 15_000),
    watchStaleMs: positive("watchStaleMs", o.watchStaleMs, 3 * heartbeatMs),
    forgetDeadNodeMs: positive("forgetDeadNodeMs", o.forgetDeadNodeMs, Math.max(60_000, 12 * nodeTtlMs)),
    requestTimeoutMs: positive("requestTimeoutMs", o.requestTimeoutMs, Math.max(2000, 2 * heartbeatMs)),
    stallMs,
    startTimeoutMs: positive("startTimeoutMs", o.startTimeoutMs, Math.max(120_000, 2 * stallMs)),
    coordinator: o.coordinator ?? true,
    now: o.now ?? Date.now,
    log: o.log ?? stderrLog,
  };
}
