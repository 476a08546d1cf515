// The built-in `webhook` integration (IFTTT-like): each alert or report is POSTed to the subscription's
// URL as a Standard Webhooks delivery — body `{ type, timestamp, data }`, headers `webhook-id` (the
// delivery id: the same on every retry and repeat), `webhook-timestamp` (seconds, of this attempt) and,
// when the subscription has a secret, `webhook-signature`. 2xx: delivered; 410: the subscription is
// disabled; anything else, a connection error or a timeout: retried (Retry-After honoured). Targets on
// private addresses are refused (ssrf.ts).
import { Agent, request, type Dispatcher } from "undici";
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

/** The body of a delivery, as sent (and signed). */
export function webhookBody(d: Pick<Delivery, "alert" | "report">): string {
  const data = (d.alert ?? d.report) as Alert | Report;
  const body: WebhookBody = d.alert !== undefined
    ? { type: d.alert.kind, timestamp: new Date(d.alert.at).toISOString(), data }
    : { type: (d.report as Report).kind, timestamp: new Date((d.report as Report).end).toISOString(), data };
  return JSON.stringify(body);
}

export function webhookIntegration(o: WebhookOptions = {}): IntegrationDefinition & { close(): Promise<void> } {
  const allowPrivate = o.allowPrivate ?? allowPrivateFromEnv();
  const timeoutMs = o.timeoutMs ?? 10_000;
  const agent = new Agent({
    connections: o.connectionsPerOrigin ?? 16,
    keepAliveTimeout: 30_000,
    connect: { lookup: guardedLookup(allowPrivate), timeout: timeoutMs },
  });
  // a subscription's target checked once, not per delivery (the check is deterministic; bounded)
  const checked = new Map<string, URL | Error>();
  const targetUrl = (target: string): URL => {
    let r = checked.get(target);
    if (r === undefined) {
      try {
        r = checkTargetUrl(target, allowPrivate);
      } catch (err) {
        r = err as Error;
      }
      if (checked.size >= 10_000) checked.clear();
      checked.set(target, r);
    }
    if (r instanceof Error) throw r;
    return r;
  };
  return defineIntegration({
    provider: "webhook",
    concurrency: o.concurrency ?? 64,
    maxAttempts: o.maxAttempts ?? 8,
    timeoutMs,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    // bounded by phase, each at most timeoutMs — connecting, the answer's headers (undici's timeouts), its
    // body (drainAnswer) — and by the provider's stop signal, not by the per-delivery `signal` (an
    // AbortController per delivery costs ~10% of the throughput: docs/BENCHMARKS.md)
    async deliver(d, { stop }) {
      let url: URL;
      try {
        url = targetUrl(d.subscription.target);
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
      let res;
      try {
        res = await request(url, { method: "POST", headers, body, dispatcher: agent, signal: stop, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      } catch (err) {
        if (isRefusedTarget(err)) {
          throw new PermanentFailure((err as Error).message, { cause: err });
        }
        throw err;
      }
      await drainAnswer(res.body, timeoutMs);
      const status = res.statusCode;
      if (status >= 200 && status < 300) return;
      if (status === 410) throw new DisableSubscription(`${url.host} answered 410 Gone`);
      const wait = retryAfterMs(res.headers["retry-after"]);
      const failure = new IntegrationError("INTEGRATION_PARTNER_FAILED", `${url.host} answered ${status}`, { details: { status } });
      if (wait !== undefined) throw new RetryAfter(wait, failure.message, { cause: failure });
      throw failure;
    },
    close: () => agent.close(),
  });
}

/**
 * Reads and drops an answer's body (the status decides; reading lets the connection be reused): at most
 * 16 KiB, for at most `ms`. undici's body timeout is an idle one, so without this a partner dripping its
 * answer a byte at a time would hold the attempt, its delivery slot and the connection — and every
 * user's webhook queued behind them — for as long as it kept dripping.
 */
async function drainAnswer(body: Dispatcher.ResponseData["body"], ms: number): Promise<void> {
  const timer = setTimeout(() => body.destroy(), ms);
  try {
    await body.dump({ limit: 16_384 });
  } catch {
    // cut short: the status is what counts
  } finally {
    clearTimeout(timer);
  }
}

/** The SSRF guard's refusal, however the HTTP client wrapped it. */
function isRefusedTarget(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.code === IntegrationErrors.INTEGRATION_TARGET_REFUSED.code) return true;
  }
  return false;
}
