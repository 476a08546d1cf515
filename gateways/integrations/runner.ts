// Runs one integration definition as a service: a durable pull consumer of its own on the provider's
// stream (`<PREFIX>_INTEGRATION_<PROVIDER>`, sourcing `<prefix>.out.integration.<provider>.>` from the
// output stream: provider-stream.ts), so a failing partner never blocks another provider; at most
// `concurrency` deliveries at once, the subscription checked against the twin's latest list before each
// attempt (subscription-map.ts), retries by nak-with-delay (exponential backoff with jitter, or the
// partner's Retry-After), a dead letter on `<prefix>.dlq.integration.<provider>` (stream `<PREFIX>_DLQ`)
// after `maxAttempts`, metrics, and a graceful stop: no new messages, in-flight deliveries finish within
// `drainMs` or go back.
//
// Several processes running the same provider share its consumer: JetStream hands each message to one.
// A crash (kill -9) mid-delivery leaves the message unacknowledged; it is delivered again after the
// consumer's ack wait with the same id (so partners can de-duplicate, e.g. on `webhook-id`).
//
// On close, nothing is put back (nak'd) before nats-server has dropped this runner's pull requests
// (`forgetPulls`). nats-server before 2.10.14 (nats-server#5305) mishandles a redelivery that falls due
// while the only pull requests it holds are ones nobody listens to any more (a stopped runner's, until
// they expire or the server next checks them): it drops the redelivery (that message then waits out the
// ack wait) and steps the consumer back one stream message, which it delivers again as attempt 1 — the
// message put back itself when it was the last one taken (its attempt cut short no longer counted), else
// another one (a duplicate).
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import type { IntegrationMessage } from "../../actors/device-twin/behavior.ts";
import { TWIN_TYPE, TwinInputKinds } from "../../actors/device-twin/behavior.ts";
import { askAtStart, decode, encode, msgpackHeaders } from "../../runtime/mod.ts";
import { AckBatch } from "./ack-batch.ts";
import { backoffDelayMs, DisableSubscription, PermanentFailure, RetryAfter, type Delivery, type DeliveryContext, type IntegrationDefinition } from "./define.ts";
import { IntegrationError } from "./errors.ts";
import { integrationMessageProblem } from "./message-shape.ts";
import { IntegrationMetrics } from "./metrics.ts";
import { ensureProviderStream } from "./provider-stream.ts";
import type { TwinAccess } from "./subscription-lookup.ts";
import { SubscriptionMap } from "./subscription-map.ts";

export type IntegrationLog = DeliveryContext["log"];

/** Options of {@link runIntegration}. */
export interface RunIntegrationOptions {
  nc: NatsConnection;
  /** Subject prefix of the cluster (AIRTWIN_PREFIX). */
  prefix: string;
  /** The twins: subscriptions their lists lack (query) and disabling one (unsubscribe command). A RuntimeClient. */
  twins: TwinAccess;
  /** Every device's subscriptions, shared by the integrations of a process. Default: one of its own, closed with it. */
  subscriptions?: SubscriptionMap;
  metrics?: IntegrationMetrics;
  log?: IntegrationLog;
  /** JetStream replicas of the dead-letter stream when it is created. Default 1. */
  replicas?: number;
  /** On close, in-flight deliveries get this long to finish before they are put back (ms). Default 10 000. */
  drainMs?: number;
  /** Random source of the backoff jitter (tests pin it). Default Math.random. */
  random?: () => number;
}

/** A running integration. */
export interface RunningIntegration extends AsyncDisposable {
  readonly provider: string;
  /** Durable consumer name (`integration-<provider>`). */
  readonly consumer: string;
  /** Deliveries being attempted now. */
  readonly inFlight: number;
  /** Stops taking messages, lets in-flight deliveries finish (up to drainMs), puts the rest back. Idempotent. */
  close(): Promise<void>;
}

/** Durable consumer name of a provider. */
export const consumerName = (provider: string): string => `integration-${provider}`;
/** Dead-letter subject of a provider. */
export const deadLetterSubject = (prefix: string, provider: string): string => `${prefix}.dlq.integration.${provider}`;
/** The dead-letter stream of a cluster (captures `<prefix>.dlq.>`). */
export const deadLetterStream = (prefix: string): string => `${prefix.toUpperCase().replace(/-/g, "_")}_DLQ`;

/** What a dead letter holds: the original message, where it came from, and why it was given up. */
export interface DeadLetter {
  deliveryId: string;
  provider: string;
  deviceId: string;
  subject: string;
  attempts: number;
  lastError: { name: string; message: string; code?: string };
  failedAt: number;
  message: unknown;
}

const noLog: IntegrationLog = () => undefined;

/** Starts consuming for one integration; resolves once its consumer exists and `start` has run. */
export async function runIntegration(def: IntegrationDefinition, o: RunIntegrationOptions): Promise<RunningIntegration> {
  const log = o.log ?? noLog;
  const metrics = o.metrics ?? new IntegrationMetrics();
  const provider = def.provider;
  const concurrency = def.concurrency ?? 16;
  const maxAttempts = def.maxAttempts ?? 8;
  const timeoutMs = def.timeoutMs ?? 10_000;
  const maxAgeMs = def.maxAgeMs ?? 86_400_000;
  const maxBackoffMs = def.backoff?.maxMs ?? 300_000;
  const random = o.random ?? Math.random;
  const durable = consumerName(provider);
  const js = jetstream(o.nc);
  const jsm = await jetstreamManager(o.nc);

  const dlqStream = deadLetterStream(o.prefix);
  await askAtStart(() => jsm.streams.info(dlqStream)).catch(() =>
    jsm.streams.add({
      name: dlqStream,
      subjects: [`${o.prefix}.dlq.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: o.replicas ?? 1,
      max_age: nanos(30 * 86_400_000),
      duplicate_window: nanos(120_000),
    }),
  );
  // The ack wait covers a whole attempt (the lookup and the partner call, which a provider may bound by
  // phase: the webhook's connect, headers and body each take up to timeoutMs); a crashed process's
  // messages come back after it.
  const ackWaitMs = Math.max(30_000, 3 * timeoutMs + 5_000);
  const stream = await ensureProviderStream(jsm, { prefix: o.prefix, provider, durable, maxAgeMs, log });
  // unfiltered: the stream holds only this provider's messages (why: provider-stream.ts)
  await askAtStart(() => jsm.consumers.add(stream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_deliver: -1,
    // messages waiting out a backoff count as pending: room for many before a provider stalls
    max_ack_pending: 20_000,
  }));
  const ownMap = o.subscriptions === undefined ? await SubscriptionMap.start({ nc: o.nc, prefix: o.prefix, twins: o.twins, log }) : undefined;
  const subscriptions = o.subscriptions ?? (ownMap as SubscriptionMap);
  const providerLog: IntegrationLog = (level, msg, fields) => log(level, msg, { provider, ...fields });
  await def.start?.({ nc: o.nc, prefix: o.prefix, log: providerLog });

  const acks = new AckBatch();
  // deliveries in flight: their count, the abort controllers of those that read `signal`, with deadlines
  // (one sweep timer aborts the late ones, not a timer per delivery), and who waits for a slot or for
  // none to be left; `stop` is the provider's one signal for a hard stop
  const stop = new AbortController();
  let active = 0;
  const deadlines = new Map<AbortController, number>();
  let slotFree: (() => void) | undefined;
  let allDone: (() => void) | undefined;
  let stopping = false;
  // set on close: settles once nats-server no longer holds this runner's pull requests; naks wait for it
  let pullsForgotten: Promise<void> | undefined;
  const untrackInFlight = metrics.trackInFlight(provider, () => active);
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [c, deadline] of deadlines) if (now >= deadline) c.abort(new Error(`delivery timed out after ${timeoutMs} ms`));
  }, Math.min(1000, Math.max(20, Math.floor(timeoutMs / 10))));
  sweep.unref();

  /** Puts `m` back (to be redelivered after `delayMs`, or at once); on close, only after `pullsForgotten`. */
  function nak(m: JsMsg, delayMs?: number): void {
    if (pullsForgotten === undefined) m.nak(delayMs);
    else pullsForgotten.then(() => m.nak(delayMs)).catch((err: unknown) => log("warn", "could not put a delivery back", { provider, error: String(err) }));
  }

  async function deadLetter(m: JsMsg, id: string, deviceId: string, message: unknown, attempts: number, err: unknown): Promise<void> {
    const e = err as { name?: string; message?: string; code?: string };
    const letter: DeadLetter = {
      deliveryId: id, provider, deviceId, subject: m.subject, attempts,
      lastError: { name: e?.name ?? "Error", message: e?.message ?? String(err), ...(e?.code === undefined ? {} : { code: e.code }) },
      failedAt: Date.now(), message,
    };
    await js.publish(deadLetterSubject(o.prefix, provider), encode(letter), { msgID: `${id}:dlq`, headers: msgpackHeaders() });
    m.term("dead-lettered");
    metrics.deadLettered.inc({ provider });
    log("warn", "delivery dead-lettered", { provider, deliveryId: id, attempts, error: letter.lastError.message });
  }

  async function handle(m: JsMsg): Promise<void> {
    const attempt = m.info.deliveryCount;
    const publishedAt = Number(m.info.timestampNanos / 1_000_000);
    const id = m.headers?.get("Nats-Msg-Id") || `${m.info.stream}:${m.seq}`;
    const deviceId = m.subject.slice(m.subject.lastIndexOf(".") + 1);
    let message: IntegrationMessage;
    try {
      message = decode<IntegrationMessage>(m.data);
      const problem = integrationMessageProblem(message, deviceId);
      if (problem !== undefined) throw new Error(problem);
    } catch (err) {
      const invalid = new IntegrationError("INTEGRATION_MESSAGE_INVALID", `${m.subject} #${m.seq}: ${(err as Error).message}`, { cause: err });
      await deadLetter(m, id, deviceId, null, attempt, invalid);
      return;
    }
    if (Date.now() - publishedAt > maxAgeMs) {
      acks.ack(m);
      metrics.dropped.inc({ provider, reason: "stale" });
      return;
    }
    const started = performance.now();
    let controller: AbortController | undefined;
    const context: DeliveryContext = {
      get signal() {
        if (controller === undefined) {
          controller = new AbortController();
          if (stop.signal.aborted) controller.abort(stop.signal.reason);
          else deadlines.set(controller, started + timeoutMs);
        }
        return controller.signal;
      },
      stop: stop.signal,
      log: providerLog,
    };
    let called = false;
    try {
      // the device's list as the twin last published it; the twin itself decides what the list lacks
      let subscription = subscriptions.known(deviceId, message.subscriptionId);
      if (subscription === undefined) {
        const answer = await subscriptions.ask(deviceId, message.subscriptionId);
        if (answer === null) {
          acks.ack(m);
          metrics.dropped.inc({ provider, reason: "unsubscribed" });
          return;
        }
        subscription = answer;
      }
      const delivery: Delivery = { id, provider, deviceId, subscription, attempt, publishedAt };
      if (message.alert !== undefined) delivery.alert = message.alert;
      else delivery.report = message.report;
      called = true;
      await def.deliver(delivery, context);
      if (controller?.signal.aborted) throw controller.signal.reason;
      acks.ack(m);
      metrics.delivered.inc({ provider });
      metrics.endToEndSeconds.observe({ provider }, Math.max(0, Date.now() - publishedAt) / 1000);
    } catch (err) {
      await failed(m, id, deviceId, message, attempt, err);
    } finally {
      if (controller !== undefined) deadlines.delete(controller);
      if (called) metrics.deliverySeconds.observe({ provider }, (performance.now() - started) / 1000);
    }
  }

  async function failed(m: JsMsg, id: string, deviceId: string, message: IntegrationMessage, attempt: number, err: unknown): Promise<void> {
    if (err instanceof DisableSubscription) {
      try {
        await o.twins.command(TWIN_TYPE, deviceId, TwinInputKinds.command, { type: "unsubscribe", subscriptionId: message.subscriptionId }, {
          // one key per message: a retried disable (lost reply) is applied once
          idempotencyKey: `integration-disable:${provider}:${m.seq}`,
        });
        acks.ack(m);
        metrics.disabled.inc({ provider });
        log("warn", "subscription disabled by the partner", { provider, deviceId, subscriptionId: message.subscriptionId, reason: err.message });
      } catch (cmdErr) {
        nak(m, backoffDelayMs(attempt, def.backoff, random));
        log("warn", "could not disable the subscription; retrying", { provider, deviceId, error: String(cmdErr) });
      }
      return;
    }
    if (stopping && !(err instanceof PermanentFailure) && isAbort(err)) {
      // cut short by a hard stop: not the partner's failure, but an attempt; the server counts it
      // (its next delivery is numbered one higher) since nak waits for `pullsForgotten` (why: header)
      nak(m);
      return;
    }
    if (err instanceof PermanentFailure || attempt >= maxAttempts) {
      try {
        await deadLetter(m, id, deviceId, message, attempt, err);
      } catch (dlqErr) {
        nak(m, backoffDelayMs(attempt, def.backoff, random));
        log("error", "dead letter not stored; the delivery will be tried again", { provider, deliveryId: id, error: String(dlqErr) });
      }
      return;
    }
    const delayMs = err instanceof RetryAfter ? Math.min(Math.max(0, err.delayMs), maxBackoffMs) : backoffDelayMs(attempt, def.backoff, random);
    nak(m, delayMs);
    metrics.retried.inc({ provider });
    log("info", "delivery failed; will retry", { provider, deliveryId: id, attempt, delayMs, error: (err as Error)?.message ?? String(err) });
  }

  const consumer = await js.consumers.get(stream, durable);
  const messages: ConsumerMessages = await consumer.consume({ max_messages: concurrency, idle_heartbeat: 1000, expires: 5000 });
  async function run(m: JsMsg): Promise<void> {
    active++;
    try {
      await handle(m);
    } catch (err) {
      log("error", "delivery handler failed", { provider, error: String(err) });
    } finally {
      active--;
      const free = slotFree;
      slotFree = undefined;
      free?.();
      if (active === 0) allDone?.();
    }
  }
  const loop = (async () => {
    for await (const m of messages) {
      if (stopping) {
        nak(m);
        continue;
      }
      void run(m);
      while (active >= concurrency) await new Promise<void>((r) => (slotFree = r));
    }
  })().catch((err: unknown) => log("error", "consumer ended", { provider, error: String(err) }));

  // A consumer info request makes nats-server check its waiting pull requests for interest and drop
  // those nobody listens to (2.9.10: infoWithSnapAndReply → processWaiting). Our inbox's UNSUB went out
  // before it on the same connection, so ours are gone when the answer comes, and a nak sent after the
  // answer is processed after that. Why it matters: the header.
  async function forgetPulls(): Promise<void> {
    try {
      await consumer.info();
    } catch (err) {
      log("warn", "pull requests not confirmed dropped; a delivery put back may come again as attempt 1", { provider, error: String(err) });
    }
  }

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      stopping = true;
      pullsForgotten = (async () => {
        await messages.close().catch(() => undefined); // unsubscribes the pulls' inbox (at once)
        await forgetPulls();
      })();
      await pullsForgotten;
      const drainMs = o.drainMs ?? 10_000;
      const all = active === 0 ? Promise.resolve() : new Promise<void>((r) => (allDone = r));
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), drainMs).unref())]);
      if (timedOut) {
        const reason = new Error("integration stopping");
        stop.abort(reason);
        for (const c of deadlines.keys()) c.abort(reason);
      }
      await all;
      clearInterval(sweep);
      acks.flush();
      untrackInFlight();
      slotFree?.();
      await loop;
      await ownMap?.close();
      await def.close?.();
    })());

  return {
    provider,
    consumer: durable,
    get inFlight() {
      return active;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return e?.name === "AbortError" || /integration stopping/.test(e?.message ?? "");
}
