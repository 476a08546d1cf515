// The built-in `webhook` integration (IFTTT-like): each alert or report is POSTed to the subscription's
// URL as a Standard Webhooks delivery — body `{ type, timestamp, data }`, headers `webhook-id` (the
// delivery id: the same on every retry and repeat), `webhook-timestamp` (seconds, of this attempt) and,
// when the subscription has a secret, `webhook-signature`. 2xx: delivered; 410: the subscription is
// disabled; anything else, a connection error or a timeout: retried (Retry-After honoured). Targets on
// private addresses are refused (ssrf.ts). The requests go through undici's `dispatch` with a handler of
// our own (Exchanges, below).
import { Agent, type Dispatcher } from "undici";
import type { Alert, Report } from "../../../actors/device-twin/domain/mod.ts";
import { defineIntegration, DisableSubscription, PermanentFailure, RetryAfter, type BackoffOptions, type Delivery, type IntegrationDefinition } from "../define.ts";
import { IntegrationError, IntegrationErrors } from "../errors.ts";
import { retryAfterMs } from "../retry-after.ts";
import { signWebhook } from "./signing.ts";
import { allowPrivateFromEnv, checkTargetUrl, guardedLookup } from "./ssrf.ts";

/** Options of {@link webhookIntegration}. */
export interface WebhookOptions {
  /** Allow loopback/private targets. Default: AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1 in the environment. */
  allowPrivate?: boolean;
  /** One attempt's deadlines, ms: connecting, the response headers after the request, and each gap in the body. Default 10 000. */
  timeoutMs?: number;
  /** Deliveries at once per process. Default 64. */
  concurrency?: number;
  /** Default 8. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  /** Kept-alive connections per origin. Default 16. */
  connectionsPerOrigin?: number;
}

/** The JSON body of a delivery. */
export interface WebhookBody {
  /** The alert kind (`event.start`, …) or the report kind (`report.day`, `report.week`). */
  type: string;
  /** ISO 8601: the alert's `at`, or the report period's end. */
  timestamp: string;
  data: Alert | Report;
}

/** The body of a delivery, as sent (and signed): the JSON of a {@link WebhookBody}, written without making one. */
export function webhookBody(d: Pick<Delivery, "alert" | "report">): string {
  if (d.alert !== undefined) return bodyJson(d.alert.kind, d.alert.at, d.alert);
  const report = d.report as Report;
  return bodyJson(report.kind, report.end, report);
}

const bodyJson = (type: string, at: number, data: Alert | Report): string =>
  `{"type":${JSON.stringify(type)},"timestamp":"${new Date(at).toISOString()}","data":${JSON.stringify(data)}}`;

/** What an attempt needs of a target URL, worked out once per target. */
interface Target {
  origin: string;
  path: string;
  host: string;
}

/** The most of an answer's body that is read (and dropped): the status decides. */
const ANSWER_LIMIT_BYTES = 16_384;

export function webhookIntegration(o: WebhookOptions = {}): IntegrationDefinition & { close(): Promise<void> } {
  const allowPrivate = o.allowPrivate ?? allowPrivateFromEnv();
  const timeoutMs = o.timeoutMs ?? 10_000;
  const agent = new Agent({
    connections: o.connectionsPerOrigin ?? 16,
    keepAliveTimeout: 30_000,
    connect: { lookup: guardedLookup(allowPrivate), timeout: timeoutMs },
  });
  // a subscription's target checked once, not per delivery (the check is deterministic; bounded)
  const checked = new Map<string, Target | Error>();
  const targetOf = (target: string): Target => {
    let r = checked.get(target);
    if (r === undefined) {
      try {
        const url = checkTargetUrl(target, allowPrivate);
        r = { origin: url.origin, path: `${url.pathname}${url.search}`, host: url.host };
      } catch (err) {
        r = err as Error;
      }
      if (checked.size >= 10_000) checked.clear();
      checked.set(target, r);
    }
    if (r instanceof Error) throw r;
    return r;
  };
  const exchanges = new Exchanges(timeoutMs);
  return defineIntegration({
    provider: "webhook",
    concurrency: o.concurrency ?? 64,
    maxAttempts: o.maxAttempts ?? 8,
    timeoutMs,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    // bounded by phase, each at most timeoutMs — connecting and the answer's headers (undici's timeouts),
    // its body (Exchanges' sweep) — and by the provider's stop signal, not by the per-delivery `signal`
    // (an AbortController per delivery costs ~10% of the throughput: docs/BENCHMARKS.md)
    async deliver(d, { stop }) {
      let target: Target;
      try {
        target = targetOf(d.subscription.target);
      } catch (err) {
        throw new PermanentFailure((err as Error).message, { cause: err });
      }
      const body = webhookBody(d);
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "airtwin-webhooks/1",
        "webhook-id": d.id,
        "webhook-timestamp": String(timestamp),
      };
      if (d.subscription.secret !== undefined) headers["webhook-signature"] = signWebhook(d.subscription.secret, d.id, timestamp, body);
      let answer: Answer;
      try {
        answer = await exchanges.post(agent, target, headers, body, stop);
      } catch (err) {
        if (isRefusedTarget(err)) throw new PermanentFailure((err as Error).message, { cause: err });
        throw err;
      }
      const status = answer.status;
      if (status >= 200 && status < 300) return;
      if (status === 410) throw new DisableSubscription(`${target.host} answered 410 Gone`);
      const wait = retryAfterMs(answer.retryAfter);
      const failure = new IntegrationError("INTEGRATION_PARTNER_FAILED", `${target.host} answered ${status}`, { details: { status } });
      if (wait !== undefined) throw new RetryAfter(wait, failure.message, { cause: failure });
      throw failure;
    },
    close: async () => {
      exchanges.close();
      await agent.close();
    },
  });
}

/** A partner's answer: what decides a delivery. */
interface Answer {
  status: number;
  retryAfter: string | undefined;
}

/**
 * The webhook's HTTP exchanges in flight, each an undici dispatch handler that keeps the status and
 * Retry-After and drops the answer's body — at most 16 KiB, for at most `timeoutMs` after the headers.
 * undici's body timeout is an idle one, so without this bound a partner dripping its answer a byte at a
 * time would hold the attempt, its delivery slot and the connection — and every user's webhook queued
 * behind them — for as long as it kept dripping; one sweep timer checks those deadlines, and a hard
 * stop aborts the exchanges of its provider, instead of a timer and an abort listener per attempt. A
 * handler of its own instead of undici's `request()`, whose response stream, abort listener and async
 * resource per call cost more than the rest of a delivery's HTTP work (docs/BENCHMARKS.md).
 */
class Exchanges {
  private readonly inFlight = new Set<Exchange>();
  private readonly watched = new WeakSet<AbortSignal>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  post(agent: Agent, target: Target, headers: Record<string, string>, body: string, stop: AbortSignal): Promise<Answer> {
    if (stop.aborted) return Promise.reject(stop.reason as Error);
    if (!this.watched.has(stop)) {
      this.watched.add(stop);
      stop.addEventListener("abort", () => {
        for (const x of this.inFlight) if (x.stop === stop) x.abort(stop.reason as Error);
      }, { once: true });
    }
    this.sweep ??= setInterval(() => {
      const now = performance.now();
      for (const x of this.inFlight) if (now >= x.bodyDeadline) x.abort(new Error(`the answer's body took longer than ${this.timeoutMs} ms`));
    }, Math.min(1000, Math.max(20, Math.floor(this.timeoutMs / 10)))).unref();
    return new Promise<Answer>((resolve, reject) => {
      const x = new Exchange(this, stop, resolve, reject);
      this.inFlight.add(x);
      agent.dispatch({ origin: target.origin, path: target.path, method: "POST", headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs }, x);
    });
  }

  /** An exchange has ended (answered or failed). */
  ended(x: Exchange): void {
    this.inFlight.delete(x);
  }

  /** The answer's headers have arrived: its body gets `timeoutMs` from now. */
  answering(x: Exchange): void {
    x.bodyDeadline = performance.now() + this.timeoutMs;
  }

  close(): void {
    if (this.sweep !== undefined) clearInterval(this.sweep);
    this.sweep = undefined;
  }
}

/** One attempt's exchange (undici's dispatch handler). */
class Exchange implements Dispatcher.DispatchHandler {
  /** Until the headers: no deadline of ours (undici's connect and headers timeouts apply). */
  bodyDeadline = Infinity;
  private status = 0;
  private retryAfter: string | undefined;
  private bytes = 0;
  private controller: Dispatcher.DispatchController | undefined;
  private abortedWith: Error | undefined;
  private settled = false;

  constructor(
    private readonly owner: Exchanges,
    readonly stop: AbortSignal,
    private readonly resolve: (a: Answer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  abort(reason: Error): void {
    if (this.controller === undefined) this.abortedWith = reason;
    else this.controller.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortedWith !== undefined) controller.abort(this.abortedWith);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the answer is still to come
    this.status = statusCode;
    const retryAfter = headers["retry-after"];
    this.retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    this.owner.answering(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.bytes > ANSWER_LIMIT_BYTES) controller.abort(new Error(`the answer's body is longer than ${ANSWER_LIMIT_BYTES} bytes`));
  }

  onResponseEnd(): void {
    this.settle(undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    // an answer cut short after its status (too long, too slow, a hard stop): the status is what counts
    this.settle(this.status === 0 ? err : undefined);
  }

  private settle(err: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.ended(this);
    if (err === undefined) this.resolve({ status: this.status, retryAfter: this.retryAfter });
    else this.reject(err);
  }
}

/** The SSRF guard's refusal, however the HTTP client wrapped it. */
function isRefusedTarget(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === IntegrationErrors.INTEGRATION_TARGET_REFUSED.code) return true;
  }
  return false;
}
