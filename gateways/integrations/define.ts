// The integration SDK's vocabulary: `defineIntegration({ provider, deliver, … })` names a partner and
// says how one delivery reaches it; the runner (runner.ts) turns that into a service — a durable
// consumer of its own, a concurrency limit, retries with backoff, dead letters, metrics, shutdown.
//
// A delivery's outcome is what `deliver` does: resolve → delivered; throw → retried with exponential
// backoff and jitter until `maxAttempts`, then dead-lettered with the last error. Three errors steer it:
// `retryAfter(ms)` (the partner asked for a pause, e.g. Retry-After), `permanentFailure()` (no retry
// can help: dead-letter now) and `disableSubscription()` (the partner says the target is gone, e.g. a
// webhook's 410: the subscription is removed from its twin).

import type { NatsConnection } from "@nats-io/nats-core";
import type { Alert, Report, Subscription } from "../../actors/device-twin/domain/mod.ts";
import { IntegrationError } from "./errors.ts";

/** One delivery: the alert or report for one subscription, as the twin holds the subscription now. */
export interface Delivery {
  /** Stable id of this delivery (the output's id, `<alert or report id>:<subscriptionId>`): the same on every retry and repeat. */
  id: string;
  provider: string;
  deviceId: string;
  /** The subscription as its twin holds it at this attempt (target and secret included). */
  subscription: Subscription;
  /** Exactly one of `alert` and `report`. */
  alert?: Alert;
  report?: Report;
  /** 1 on the first attempt. */
  attempt: number;
  /** When the provider's stream stored it, a few ms after the twin published it (wall clock, ms). */
  publishedAt: number;
}

/** What `deliver` gets besides the delivery. */
export interface DeliveryContext {
  /**
   * Aborted when the delivery times out (`timeoutMs`) or the service stops hard. Made on first read: an
   * AbortController per delivery costs ~5 µs of CPU (docs/BENCHMARKS.md), so an integration whose client
   * bounds an attempt by itself (undici's timeouts) passes `stop` instead and never reads this.
   */
  readonly signal: AbortSignal;
  /** One signal per provider, aborted when the service stops hard (in-flight deliveries still running after `drainMs`). */
  readonly stop: AbortSignal;
  log: (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** What `start` gets: the service's NATS connection and cluster prefix (for state an integration keeps in KV). */
export interface StartContext {
  nc: NatsConnection;
  prefix: string;
  log: DeliveryContext["log"];
}

/** Backoff between attempts: `initialMs · factor^(attempt−1)`, capped at `maxMs`, ± `jitter` (a fraction). */
export interface BackoffOptions {
  /** Default 1000 ms. */
  initialMs?: number;
  /** Default 300 000 ms (5 min). */
  maxMs?: number;
  /** Default 2. */
  factor?: number;
  /** Default 0.2 (±20 %). */
  jitter?: number;
}

/** An integration: the partner's provider name and how to deliver to it. */
export interface IntegrationDefinition {
  /** Subject token: 1–32 of [a-z0-9-] (`<prefix>.out.integration.<provider>.<deviceId>`). */
  provider: string;
  deliver(delivery: Delivery, ctx: DeliveryContext): Promise<void>;
  /** Deliveries at once in one process. Default 16. */
  concurrency?: number;
  /** Attempts before a delivery is dead-lettered. Default 8. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** A delivery is aborted (and retried) after this long, ms. Default 10 000. */
  timeoutMs?: number;
  /** Deliveries published longer ago than this are dropped as stale (ms). Default 24 h. */
  maxAgeMs?: number;
  /** Called once before the first delivery (open connections, buckets, fetch tokens). */
  start?(ctx: StartContext): Promise<void>;
  /** Called once after the last delivery. */
  close?(): Promise<void>;
}

const PROVIDER = /^[a-z0-9-]{1,32}$/;

/** Checks a definition and fills nothing in (the runner applies defaults); returns it for chaining. */
export function defineIntegration<D extends IntegrationDefinition>(definition: D): D {
  const bad = (field: string, message: string): never => {
    throw new IntegrationError("INTEGRATION_DEFINITION_INVALID", `integration ${JSON.stringify(definition.provider)}: ${field} ${message}`, { details: { field } });
  };
  if (typeof definition.provider !== "string" || !PROVIDER.test(definition.provider)) bad("provider", "must be 1-32 characters of [a-z0-9-]");
  if (typeof definition.deliver !== "function") bad("deliver", "must be a function");
  const positiveInt = (field: keyof IntegrationDefinition, max: number) => {
    const v = definition[field];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max)) bad(field, `must be an integer from 1 to ${max}`);
  };
  positiveInt("concurrency", 4096);
  positiveInt("maxAttempts", 1000);
  positiveInt("timeoutMs", 3_600_000);
  positiveInt("maxAgeMs", 30 * 86_400_000);
  const b = definition.backoff;
  if (b !== undefined) {
    for (const k of ["initialMs", "maxMs", "factor"] as const) if (b[k] !== undefined && !(Number.isFinite(b[k]) && (b[k] as number) > 0)) bad(`backoff.${k}`, "must be a positive number");
    if (b.jitter !== undefined && !(b.jitter >= 0 && b.jitter <= 1)) bad("backoff.jitter", "must be from 0 to 1");
  }
  return definition;
}

/** Thrown by `deliver`: retry after `delayMs` (e.g. the partner's Retry-After), still counting the attempt. */
export class RetryAfter extends Error {
  override readonly name = "RetryAfter";
  constructor(
    readonly delayMs: number,
    message = `retry after ${delayMs} ms`,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown by `deliver`: no retry can succeed; dead-letter the delivery now. */
export class PermanentFailure extends Error {
  override readonly name = "PermanentFailure";
}

/** Thrown by `deliver`: the partner says the target is gone; the subscription is removed from its twin. */
export class DisableSubscription extends Error {
  override readonly name = "DisableSubscription";
}

export const retryAfter = (delayMs: number, message?: string): RetryAfter => new RetryAfter(delayMs, message);
export const permanentFailure = (message: string, options?: { cause?: unknown }): PermanentFailure => new PermanentFailure(message, options);
export const disableSubscription = (message: string): DisableSubscription => new DisableSubscription(message);

/** Delay before attempt `attempt + 1` after attempt `attempt` failed (ms); `random` in [0, 1). */
export function backoffDelayMs(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = o.initialMs ?? 1000;
  const max = o.maxMs ?? 300_000;
  const jitter = o.jitter ?? 0.2;
  const base = Math.min(max, initial * (o.factor ?? 2) ** Math.max(0, attempt - 1));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}
