// Garbage on an integration's subjects (`<prefix>.out.integration.<provider>.<device>`), against a real
// nats-server, a real twin and the real webhook integration delivering to a local partner: MessagePack
// that is not ours, the wrong types, alerts of the wrong shape, huge values. Each is dead-lettered at
// once (a metric, a warn line, a letter on the DLQ stream), the partner never receives any of it, and
// the integration is not blocked: an alert the twin raises behind the garbage is delivered.
import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { webhookIntegration } from "../../gateways/integrations/webhook/webhook.ts";
import { encode, msgpackHeaders } from "../../runtime/mod.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import { Partner } from "../integrations/partner.ts";
import type { LogLine } from "./fixture.ts";

const DEVICE = "gi-1";
const T0 = Date.UTC(2026, 0, 5, 9);
const random = rng(11);

/** What no twin publishes on an integration subject; the subscription id is a real one where it matters. */
const GARBAGE: Uint8Array[] = [
  new Uint8Array(),
  Uint8Array.from({ length: 64 }, () => Math.floor(random() * 256)),
  encode({ subscriptionId: "s1", alert: {} }).subarray(0, 9),
  encode(42),
  encode(null),
  encode([1, 2, 3]),
  encode({ subscriptionId: 5, alert: {} }),
  encode({ subscriptionId: "s1" }),
  encode({ subscriptionId: "s1", alert: 42 }),
  encode({ subscriptionId: "s1", alert: "x".repeat(500_000) }),
  encode({ subscriptionId: "s1", alert: { id: 7, kind: ["event.start"], at: "noon" } }),
  encode({ subscriptionId: "s1", alert: { id: `${DEVICE}:x:1:start`, kind: "event.start", at: 1e300 } }),
  encode({ subscriptionId: "s1", report: { kind: "report.day" } }),
  encode({ subscriptionId: "s1", alert: { id: `${DEVICE}:nested`, kind: "event.start", at: T0, deviceId: { deep: [[[[]]]] } }, report: 1 }),
];

describe("garbage on an integration's subjects", () => {
  let bed: IntegrationTestbed;
  let partner: Partner;
  const logs: LogLine[] = [];

  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    partner = await Partner.start();
    await bed.run(webhookIntegration({ allowPrivate: true, timeoutMs: 2000, maxAttempts: 3, backoff: { initialMs: 100, maxMs: 500, jitter: 0 } }), {
      log: (level, msg, fields) => void logs.push({ node: "integrations", level, msg, ...(fields === undefined ? {} : { fields }) }),
    });
  }, 60_000);

  afterAll(async () => {
    await bed?.close();
    await partner?.close();
  });

  it("is dead-lettered at once, never reaches the partner, and the alert behind it is delivered", { timeout: 60_000 }, async () => {
    await bed.subscribe(DEVICE, { id: "s1", provider: "webhook", match: {}, target: `${partner.url}/${DEVICE}` });
    await bed.command(DEVICE, { type: "putRule", rule: { id: "co2-now", channel: "co2", direction: "above", enter: 1000, exit: 800, minDurationMs: 0, clearDurationMs: 0 } });
    const js = jetstream(bed.nc);
    for (const [i, bytes] of GARBAGE.entries()) {
      await js.publish(`${bed.prefix}.out.integration.webhook.${DEVICE}`, bytes, { msgID: `garbage-${i}`, headers: msgpackHeaders() });
    }
    // a valid alert behind the garbage: readings trip the rule, the twin forwards it to the integration
    await bed.sendReadings(DEVICE, [{ t: T0, co2: 600 }, { t: T0 + 60_000, co2: 1200 }]);
    const [delivery] = await waitFor(() => (partner.requests.length > 0 ? partner.requests : undefined), { timeoutMs: 30_000, message: "the valid alert delivered" });
    expect(JSON.parse(delivery!.body)).toMatchObject({ type: "event.start", data: { deviceId: DEVICE, ruleId: "co2-now", value: 1200 } });

    const letters = await waitFor(async () => {
      const l = await bed.deadLetters("webhook");
      return l.length >= GARBAGE.length ? l : undefined;
    }, { timeoutMs: 20_000, message: "every garbage message dead-lettered" });
    expect(letters).toHaveLength(GARBAGE.length);
    // at once: the first attempt, refused as an invalid message rather than retried as a partner failure
    for (const l of letters) expect(l).toMatchObject({ attempts: 1, lastError: { code: "AIRTWIN_ERR_INTEGRATION_MESSAGE_INVALID" } });
    expect(partner.requests).toHaveLength(1);
    expect(await bed.metrics.registry.getSingleMetricAsString("airtwin_integration_dead_lettered_total")).toContain(`{provider="webhook"} ${GARBAGE.length}`);
    const lines = logs.filter((l) => l.msg === "delivery dead-lettered");
    expect(lines).toHaveLength(GARBAGE.length);
    expect(lines.every((l) => l.level === "warn")).toBe(true);
    expect(logs.filter((l) => l.level === "error")).toEqual([]);
    // a device's own next alert still goes through: the consumer is not stuck behind what it refused
    await bed.sendReadings(DEVICE, [{ t: T0 + 120_000, co2: 700 }]);
    await waitFor(() => partner.requests.length === 2, { timeoutMs: 30_000, message: "the end of the event delivered" });
    expect(JSON.parse(partner.requests[1]!.body)).toMatchObject({ type: "event.end" });
  });
});
