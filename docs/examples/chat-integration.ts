// A complete custom integration: posts each alert or report as a line of text to a chat room's
// incoming-webhook URL (the subscription's target). Run it with `runIntegration` or the test kit.
import { defineIntegration, retryAfter, retryAfterMs } from "../../gateways/integrations/mod.ts";

export const chatIntegration = defineIntegration({
  provider: "chat",
  concurrency: 8,
  maxAttempts: 5,
  async deliver({ alert, report, deviceId, subscription }, { signal }) {
    const text = alert
      ? `${deviceId}: ${alert.kind} on ${alert.channel}${alert.value === undefined ? "" : ` at ${alert.value}`}`
      : `${deviceId}: ${report?.kind} from ${new Date(report?.start ?? 0).toISOString().slice(0, 10)}`;
    const res = await fetch(subscription.target, {
      method: "POST", signal, headers: { "content-type": "application/json" }, body: JSON.stringify({ text }),
    });
    if (res.status === 429) throw retryAfter(retryAfterMs(res.headers.get("retry-after") ?? undefined) ?? 60_000);
    if (!res.ok) throw new Error(`chat answered ${res.status}`); // retried with backoff, then dead-lettered
  },
});
