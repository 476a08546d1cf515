// JetStream API requests a shard's start may simply ask again: creating a bucket or a consumer with the
// same config is idempotent. On a replicated cluster such a request can time out while the server still
// carries it out (each stream and consumer is a raft group of its own), or find no JetStream leader at
// all while the meta leader is being replaced after a server loss ("jetstream is not enabled", nats.js's
// name for "no responders"). Failing the start for either releases the shard's lease and starts over.
import { errors as natsErrors } from "@nats-io/nats-core";

/** True for the failures {@link askAgain} retries. */
export function worthAskingAgain(err: unknown): boolean {
  return err instanceof natsErrors.TimeoutError || (err instanceof Error && err.name === "JetStreamNotEnabled");
}

/**
 * Runs `request` until it succeeds, fails otherwise, `stopped()` turns true or `withinMs` has passed
 * (then the last failure is thrown). Waits `pauseMs` before asking again after "no JetStream leader"
 * (a timeout has waited already).
 */
export async function askAgain<T>(request: () => Promise<T>, o: { withinMs: number; stopped?: () => boolean; pauseMs?: number }): Promise<T> {
  const deadline = performance.now() + o.withinMs;
  for (;;) {
    try {
      return await request();
    } catch (err) {
      if (!worthAskingAgain(err) || o.stopped?.() === true || performance.now() >= deadline) throw err;
      if (!(err instanceof natsErrors.TimeoutError)) await new Promise((r) => setTimeout(r, o.pauseMs ?? 250));
    }
  }
}
