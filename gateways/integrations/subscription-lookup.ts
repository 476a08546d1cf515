// Asks a device's twin for one subscription as it holds it now (the `{ view: "subscription" }` query):
// what decides a delivery whose subscription the device's published list lacks (subscription-map.ts),
// so an unsubscribe — or the device's deletion, which erases its twin — stops deliveries already
// queued or in backoff. Concurrent questions about the same subscription share one request.
import { TWIN_TYPE, type SubscriptionAnswer, type TwinQuery } from "../../actors/device-twin/behavior.ts";
import type { Subscription } from "../../actors/device-twin/domain/mod.ts";

/** What the service needs of the runtime client (RuntimeClient implements it). */
export interface TwinAccess {
  get(type: string, entityId: string, query: unknown, options?: { timeoutMs?: number }): Promise<{ ok: true; value: unknown } | { ok: false; error: { code: string; message: string } }>;
  command(type: string, entityId: string, kind: string, payload: unknown, options?: { timeoutMs?: number; idempotencyKey?: string }): Promise<unknown>;
}

export class SubscriptionLookup {
  private readonly pending = new Map<string, Promise<Subscription | null>>();

  constructor(
    private readonly twins: TwinAccess,
    private readonly timeoutMs = 5000,
  ) {}

  /** The subscription now, or null when the twin no longer has it. Rejects when the twin did not answer. */
  current(deviceId: string, subscriptionId: string): Promise<Subscription | null> {
    const key = `${deviceId}\u0000${subscriptionId}`;
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.ask(deviceId, subscriptionId).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async ask(deviceId: string, subscriptionId: string): Promise<Subscription | null> {
    const query: TwinQuery = { view: "subscription", subscriptionId };
    const reply = await this.twins.get(TWIN_TYPE, deviceId, query, { timeoutMs: this.timeoutMs });
    if (!reply.ok) throw new Error(`the twin of ${deviceId} did not answer: ${reply.error.code} ${reply.error.message}`);
    return (reply.value as SubscriptionAnswer).subscription;
  }
}
