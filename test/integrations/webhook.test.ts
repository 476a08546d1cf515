// The webhook integration against a real local HTTP partner, a real nats-server and a real twin (through
// the public test kit): Standard Webhooks signatures checked by the `standardwebhooks` package, retries
// with backoff on 500s and timeouts, Retry-After, 410 disabling the subscription, dead letters after N
// attempts, unsubscribe honoured for deliveries already in backoff, and the SSRF guard.
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Alert, Report } from "../../actors/device-twin/domain/mod.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { guardedLookup, isPrivateAddress } from "../../gateways/integrations/webhook/ssrf.ts";
import { webhookBody, webhookIntegration } from "../../gateways/integrations/webhook/webhook.ts";
import { waitFor } from "../harness/mod.ts";
import { Partner } from "./partner.ts";

const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;

function startAlert(deviceId: string, startedAt: number): Alert {
  return {
    id: `${deviceId}:default-co2:${startedAt}:start`, deviceId, ruleId: "default-co2", channel: "co2", kind: "event.start",
    at: startedAt, value: 1500, threshold: 1400, eventId: `${deviceId}:default-co2:${startedAt}`, startedAt,
  };
}

describe("webhook integration", () => {
  let bed: IntegrationTestbed;
  let partner: Partner;
  let n = 0;

  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    partner = await Partner.start();
    await bed.run(webhookIntegration({ allowPrivate: true, timeoutMs: 600, maxAttempts: 4, backoff: { initialMs: 250, maxMs: 2000, jitter: 0 } }));
  }, 60_000);
  afterAll(async () => {
    await bed?.close();
    await partner?.close();
  });

  /** A fresh device subscribed to the partner at `/<device>` (the path tells the tests' requests apart). */
  async function subscribed(secret?: string): Promise<{ deviceId: string; path: string }> {
    const deviceId = `wh-${++n}`;
    await bed.subscribe(deviceId, { id: "s1", provider: "webhook", match: {}, target: `${partner.url}/${deviceId}`, ...(secret ? { secret } : {}) });
    return { deviceId, path: `/${deviceId}` };
  }
  const requestsTo = (path: string) => partner.requests.filter((r) => r.path === path);
  const publish = (deviceId: string, alert: Alert) => bed.publish("webhook", deviceId, `${alert.id}:s1`, { subscriptionId: "s1", target: "ignored: the twin's target is used", alert });

  it("end to end: readings trip a rule, the partner gets a signed Standard Webhooks delivery", async () => {
    const { deviceId, path } = await subscribed(SECRET);
    await bed.command(deviceId, { type: "putRule", rule: { id: "co2-now", channel: "co2", direction: "above", enter: 1000, exit: 800, minDurationMs: 0, clearDurationMs: 0 } });
    const t0 = Date.UTC(2026, 0, 5, 9);
    await bed.sendReadings(deviceId, [{ t: t0, co2: 600 }, { t: t0 + 60_000, co2: 1200 }]);
    const [req] = await waitFor(() => (requestsTo(path).length > 0 ? requestsTo(path) : undefined), { message: "delivery" });
    const verified = new Webhook(SECRET).verify(req!.body, {
      "webhook-id": req!.headers["webhook-id"] as string,
      "webhook-timestamp": req!.headers["webhook-timestamp"] as string,
      "webhook-signature": req!.headers["webhook-signature"] as string,
    }) as { type: string; timestamp: string; data: Alert };
    expect(verified).toEqual({
      type: "event.start",
      timestamp: new Date(t0 + 60_000).toISOString(),
      data: expect.objectContaining({ deviceId, ruleId: "co2-now", kind: "event.start", value: 1200, startedAt: t0 + 60_000 }),
    });
    expect(req!.headers["webhook-id"]).toBe(`${verified.data.id}:s1`);
    expect(req!.headers["content-type"]).toBe("application/json");
    // a signature made with another key does not verify
    expect(() => new Webhook(`whsec_${Buffer.from("x".repeat(32)).toString("base64")}`).verify(req!.body, req!.headers as Record<string, string>)).toThrow();
    // the twin's view never shows the secret
    const view = await bed.client.get("twin", deviceId, null);
    expect(JSON.stringify(view)).not.toContain(SECRET.slice(6));
    expect((view as { value: { subscriptions: unknown[] } }).value.subscriptions).toEqual([expect.objectContaining({ id: "s1", secret: true })]);
  });

  it("500s and a timeout are retried with growing pauses; every attempt carries the same webhook-id", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => {
      const i = requestsTo(r.path).length - 1;
      if (r.path !== path) return { status: 204 };
      return i === 0 ? { status: 500 } : i === 1 ? { status: 204, delayMs: 1500 } : i === 2 ? { status: 502 } : { status: 200 };
    };
    await publish(deviceId, startAlert(deviceId, Date.now()));
    const reqs = await waitFor(() => (requestsTo(path).length >= 4 ? requestsTo(path) : undefined), { timeoutMs: 20_000, message: "4 attempts" });
    await waitFor(() => bed.metrics.delivered.get().then((m) => m.values.some((v) => v.value >= 1)));
    expect(new Set(reqs.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const gaps = reqs.slice(1).map((r, i) => r.at - reqs[i]!.at);
    // backoff 250, 500, 1000 ms (jitter 0) after each failure; the 2nd attempt also waited out its 600 ms
    // timeout (its clock starts before the subscription check, a few ms before the request arrives)
    expect(gaps[0]).toBeGreaterThanOrEqual(200);
    expect(gaps[1]).toBeGreaterThanOrEqual(500 + 400);
    expect(gaps[2]).toBeGreaterThanOrEqual(900);
    expect(gaps[2]!).toBeGreaterThan(gaps[0]!);
    await new Promise((r) => setTimeout(r, 600));
    expect(requestsTo(path)).toHaveLength(4);
  }, 30_000);

  it("a partner that answers 2xx but drips its body holds an attempt for at most timeoutMs; others go on", async () => {
    const slow = await subscribed();
    const quick = await subscribed();
    partner.respond = (r) => (r.path === slow.path ? { status: 200, dripMs: 100 } : { status: 204 });
    const delivered = async () => (await bed.metrics.delivered.get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = await delivered();
    const t0 = Date.now();
    await publish(slow.deviceId, startAlert(slow.deviceId, t0));
    await publish(quick.deviceId, startAlert(quick.deviceId, t0));
    await waitFor(() => requestsTo(quick.path).length === 1, { timeoutMs: 5000, message: "the other partner's delivery" });
    // the status counts (a 2xx is delivered); the body is read for at most the 600 ms timeout, not for as
    // long as the partner drips it
    await waitFor(async () => (await delivered()) >= before + 2, { timeoutMs: 3000, message: "both delivered" });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(requestsTo(slow.path)).toHaveLength(1);
  });

  it("a 2xx with a long body is delivered: the body is read up to 16 KiB, then dropped", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => (r.path === path ? { status: 200, body: "x".repeat(1 << 20) } : { status: 204 });
    const delivered = async () => (await bed.metrics.delivered.get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = await delivered();
    await publish(deviceId, startAlert(deviceId, Date.now()));
    await waitFor(async () => (await delivered()) > before, { timeoutMs: 5000, message: "delivered" });
    expect(requestsTo(path)).toHaveLength(1);
  });

  it("honours Retry-After", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => (r.path === path && requestsTo(path).length === 1 ? { status: 429, headers: { "retry-after": "2" } } : { status: 204 });
    await publish(deviceId, startAlert(deviceId, Date.now()));
    const reqs = await waitFor(() => (requestsTo(path).length >= 2 ? requestsTo(path) : undefined), { timeoutMs: 15_000, message: "retry" });
    expect(reqs[1]!.at - reqs[0]!.at).toBeGreaterThanOrEqual(1900);
  }, 20_000);

  it("410 Gone disables the subscription: the twin no longer has it", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => (r.path === path ? { status: 410 } : { status: 204 });
    await publish(deviceId, startAlert(deviceId, Date.now()));
    await waitFor(async () => {
      const r = await bed.client.get("twin", deviceId, null);
      return r.ok && (r.value as { subscriptions: unknown[] }).subscriptions.length === 0;
    }, { timeoutMs: 10_000, message: "subscription removed" });
    expect(requestsTo(path)).toHaveLength(1);
  });

  it("dead-letters after maxAttempts with the last error", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => (r.path === path ? { status: 503 } : { status: 204 });
    const alert = startAlert(deviceId, Date.now());
    await publish(deviceId, alert);
    const letters = await waitFor(async () => {
      const l = (await bed.deadLetters("webhook")).filter((d) => d.deviceId === deviceId);
      return l.length > 0 ? l : undefined;
    }, { timeoutMs: 20_000, message: "dead letter" });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ deliveryId: `${alert.id}:s1`, provider: "webhook", attempts: 4, lastError: { code: "AIRTWIN_ERR_INTEGRATION_PARTNER_FAILED", message: expect.stringContaining("503") } });
    expect((letters[0]!.message as { alert: Alert }).alert).toEqual(alert);
    expect(requestsTo(path)).toHaveLength(4);
  }, 30_000);

  it("unsubscribe stops deliveries already waiting for a retry", async () => {
    const { deviceId, path } = await subscribed();
    partner.respond = (r) => (r.path === path ? { status: 500 } : { status: 204 });
    await publish(deviceId, startAlert(deviceId, Date.now()));
    await waitFor(() => requestsTo(path).length >= 1, { message: "first attempt" });
    await bed.unsubscribe(deviceId, "s1");
    partner.respond = () => ({ status: 204 });
    const dropped = () => bed.metrics.dropped.get().then((m) => m.values.find((v) => v.labels.reason === "unsubscribed")?.value ?? 0);
    const before = await dropped();
    await waitFor(async () => (await dropped()) > before || (await dropped()) >= 1, { timeoutMs: 10_000, message: "dropped as unsubscribed" });
    expect(requestsTo(path)).toHaveLength(1);
  }, 20_000);
});

describe("webhook body", () => {
  it("is the JSON of { type, timestamp, data } for an alert and for a report", () => {
    const alert = { ...startAlert("b-1", Date.UTC(2026, 0, 5, 9)), ruleId: 'quote " and \\ and \u2028' };
    expect(webhookBody({ alert })).toBe(JSON.stringify({ type: "event.start", timestamp: "2026-01-05T09:00:00.000Z", data: alert }));
    const report: Report = {
      id: "b-1:report.day:0", deviceId: "b-1", kind: "report.day", start: Date.UTC(2026, 0, 5), end: Date.UTC(2026, 0, 6),
      channels: {}, rules: {}, events: [], eventsOmitted: 0, occupiedHours: 3,
    };
    expect(webhookBody({ report })).toBe(JSON.stringify({ type: "report.day", timestamp: "2026-01-06T00:00:00.000Z", data: report }));
  });
});

describe("webhook hard stop", () => {
  it("cuts a request still waiting for its answer after drainMs short and puts it back: sent again with the same webhook-id", async () => {
    await using bed = await startIntegrationTestbed();
    await using partner = await Partner.start((_r, i) => (i === 0 ? { status: 204, delayMs: 20_000 } : { status: 204 }));
    const running = await bed.run(webhookIntegration({ allowPrivate: true, timeoutMs: 30_000 }), { drainMs: 200 });
    await bed.subscribe("stop-1", { id: "s1", provider: "webhook", match: {}, target: `${partner.url}/stop-1` });
    const alert = startAlert("stop-1", Date.now());
    await bed.publish("webhook", "stop-1", `${alert.id}:s1`, { subscriptionId: "s1", target: "", alert });
    await waitFor(() => partner.requests.length === 1, { message: "in flight" });
    const t0 = Date.now();
    await running.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await bed.metrics.retried.get()).values.find((v) => v.labels.provider === "webhook")?.value ?? 0).toBe(0);
    await bed.run(webhookIntegration({ allowPrivate: true }));
    await waitFor(() => partner.requests.length === 2, { timeoutMs: 10_000, message: "sent again" });
    expect(partner.requests[1]!.headers["webhook-id"]).toBe(`${alert.id}:s1`);
  }, 40_000);
});

describe("webhook SSRF guard", () => {
  it("classifies private and public addresses", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "224.0.0.1"]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) expect(isPrivateAddress(a), a).toBe(false);
  });

  it("checks the addresses a name resolves to at connect time", async () => {
    const refused = await new Promise<Error | null>((resolve) => guardedLookup(false)("localhost", {}, (err) => resolve(err)));
    expect(refused).toMatchObject({ code: "AIRTWIN_ERR_INTEGRATION_TARGET_REFUSED", message: expect.stringMatching(/localhost resolves to .* loopback or private/) });
    const allowed = await new Promise<string>((resolve, reject) => guardedLookup(true)("localhost", {}, (err, address) => (err ? reject(err) : resolve(address as string))));
    expect(isPrivateAddress(allowed)).toBe(true);
  });

  it("refuses loopback and private targets without calling them: dead-lettered at once", async () => {
    await using bed = await startIntegrationTestbed();
    await using partner = await Partner.start();
    await bed.run(webhookIntegration({ allowPrivate: false, maxAttempts: 5, backoff: { initialMs: 100 } }));
    const port = new URL(partner.url).port;
    await bed.subscribe("ssrf-1", { id: "s1", provider: "webhook", match: {}, target: `http://127.0.0.1:${port}/x` });
    await bed.subscribe("ssrf-2", { id: "s1", provider: "webhook", match: {}, target: `http://[::ffff:127.0.0.1]:${port}/x` });
    for (const d of ["ssrf-1", "ssrf-2"]) {
      const alert = startAlert(d, Date.now());
      await bed.publish("webhook", d, `${alert.id}:s1`, { subscriptionId: "s1", target: "", alert });
    }
    const letters = await waitFor(async () => {
      const l = await bed.deadLetters("webhook");
      return l.length >= 2 ? l : undefined;
    }, { timeoutMs: 10_000, message: "2 dead letters" });
    for (const l of letters) {
      expect(l.attempts).toBe(1);
      expect(l.lastError.message).toMatch(/loopback or private/);
    }
    expect(partner.requests).toHaveLength(0);
  }, 30_000);
});
