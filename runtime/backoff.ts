// Trying again after a pause, the one way the runtime does it: pauses that double from a first to a
// longest one (`backoffMs`), and `retry`, which tries an operation until it succeeds, fails in a way not
// worth another try, is stopped, or runs out of time — then the last failure is thrown. `askAgain` is
// retry's use for the JetStream requests of a shard's start.
import { errors as natsErrors } from "@nats-io/nats-core";

/** Pauses doubling from `firstMs` up to `maxMs` (equal values: a fixed pause). */
export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** The pause after failed attempt `attempt` (0 for the first). */
export function backoffMs(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.firstMs * 2 ** attempt, backoff.maxMs);
}

/** Resolves after `ms`. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface RetryOptions {
  /** Stop trying this long after the first attempt began (ms); the last failure is thrown. */
  readonly withinMs: number;
  readonly backoff: Backoff;
  /** Failures worth another attempt; any other is thrown at once. Default: every failure. */
  readonly retryable?: (err: unknown) => boolean;
  /** Whether to pause after this failure before the next attempt (default: always). */
  readonly pauseAfter?: (err: unknown) => boolean;
  /** Stop trying once true (checked after each failure); the last failure is thrown. */
  readonly stopped?: () => boolean;
}

/** Runs `attempt(0)`, `attempt(1)`, … until one resolves or trying again is not worth it (see {@link RetryOptions}). */
export async function retry<T>(attempt: (n: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const deadline = performance.now() + o.withinMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (o.retryable?.(err) === false || o.stopped?.() === true || performance.now() >= deadline) throw err;
      if (o.pauseAfter?.(err) !== false) await pause(backoffMs(o.backoff, n));
    }
  }
}

// JetStream API requests a shard's start may simply ask again: creating a bucket or a consumer with the
// same config is idempotent. On a replicated cluster such a request can time out while the server still
// carries it out (each stream and consumer is a raft group of its own), or find no JetStream leader at
// all while the meta leader is being replaced after a server loss ("jetstream is not enabled", nats.js's
// name for "no responders"). Failing the start for either releases the shard's lease and starts over.

/** How long a process's start keeps asking JetStream while a cluster elects its leaders (ms). */
export const START_PATIENCE_MS = 60_000;

/** {@link askAgain} for a start's requests: up to {@link START_PATIENCE_MS}, instead of exiting on one timeout. */
export function askAtStart<T>(request: () => Promise<T>): Promise<T> {
  return askAgain(request, { withinMs: START_PATIENCE_MS });
}

/** nats.js's name for "no responders" on a JetStream API subject: no JetStream leader to answer. */
export function noJetStreamLeader(err: unknown): boolean {
  return err instanceof Error && err.name === "JetStreamNotEnabled";
}

/** True for the failures {@link askAgain} retries. */
export function worthAskingAgain(err: unknown): boolean {
  return err instanceof natsErrors.TimeoutError || noJetStreamLeader(err);
}

/**
 * Runs `request` until it succeeds, fails otherwise, `stopped()` turns true or `withinMs` has passed
 * (then the last failure is thrown). Waits `pauseMs` (default 250) before asking again after "no
 * JetStream leader" (a timeout has waited already).
 */
export function askAgain<T>(
  request: () => Promise<T>,
  o: { withinMs: number; stopped?: () => boolean; pauseMs?: number; /** More failures worth asking again after. */ alsoWhen?: (err: unknown) => boolean },
): Promise<T> {
  const pauseMs = o.pauseMs ?? 250;
  return retry(() => request(), {
    withinMs: o.withinMs,
    backoff: { firstMs: pauseMs, maxMs: pauseMs },
    retryable: (err) => worthAskingAgain(err) || o.alsoWhen?.(err) === true,
    pauseAfter: (err) => !(err instanceof natsErrors.TimeoutError),
    stopped: o.stopped,
  });
}
