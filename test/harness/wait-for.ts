// Polls a condition until it holds or a deadline passes. Tests synchronise with this, never with sleeps.

import { setTimeout as sleep } from "node:timers/promises";

/** How long and how often {@link waitFor} polls. */
export interface WaitForOptions {
  /** Give up after this many ms. Default 10 000. */
  timeoutMs?: number;
  /** Pause between polls, in ms. Default 25. */
  intervalMs?: number;
  /** Says what was awaited; starts the timeout error's message. Default "condition". */
  message?: string;
}

/** Thrown by {@link waitFor} at the deadline; `cause` is the condition's last error, if it threw. */
export class WaitForTimeoutError extends Error {
  override name = "WaitForTimeoutError";
  constructor(
    message: string,
    readonly lastValue: unknown,
    cause: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/**
 * Calls `condition` until it returns a truthy value (which is returned) or the deadline passes.
 * A throw counts as "not yet" (and is reported as the cause if the deadline passes).
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v) return v as NonNullable<T>;
      lastValue = v;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError === undefined ? `last value ${String(lastValue)}` : `last error: ${(lastError as Error)?.message ?? String(lastError)}`;
      throw new WaitForTimeoutError(`${opts.message ?? "condition"} not met within ${timeoutMs} ms (${why})`, lastValue, lastError);
    }
    await sleep(intervalMs);
  }
}
