// The webhook's SSRF guard through the whole delivery path (a real nats-server, twin, webhook
// integration and a local partner): targets that are, or resolve to, loopback or private addresses —
// names, IPv4 shorthands, hex and decimal forms, IPv6 — are dead-lettered at once without a call unless
// private targets are explicitly allowed; and a redirect is never followed (it could point inside).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Alert } from "../../actors/device-twin/domain/mod.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { webhookIntegration } from "../../gateways/integrations/webhook/webhook.ts";
import { waitFor } from "../harness/wait-for.ts";
import { Partner } from "../integrations/partner.ts";

let n = 0;
function alertFor(deviceId: string): Alert {
  const at = Date.now() - 1000 + ++n;
  return { id: `${deviceId}:r:${at}:start`, deviceId, ruleId: "r", channel: "co2", kind: "event.start", at, value: 1500, threshold: 1400, eventId: `${deviceId}:r:${at}`, startedAt: at };
}

describe("webhook targets inside the network", () => {
  let bed: IntegrationTestbed;
  let partner: Partner;
  let port: string;

  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    partner = await Partner.start();
    port = new URL(partner.url).port;
  }, 60_000);
  afterAll(async () => {
    await bed?.close();
    await partner?.close();
  });

  async function deliver(deviceId: string, target: string): Promise<void> {
    await bed.subscribe(deviceId, { id: "s1", provider: "webhook", match: {}, target });
    const alert = alertFor(deviceId);
    await bed.publish("webhook", deviceId, `${alert.id}:s1`, { subscriptionId: "s1", target, alert });
  }

  it("are refused without a call, in every spelling, unless allowed", { timeout: 60_000 }, async () => {
    const guarded = await bed.run(webhookIntegration({ allowPrivate: false, maxAttempts: 5, backoff: { initialMs: 100 } }));
    const targets = [
      `http://localhost:${port}/a`,
      `http://127.1:${port}/b`,
      `http://0x7f000001:${port}/c`,
      `http://2130706433:${port}/d`,
      `http://[::1]:${port}/e`,
      `http://[::ffff:7f00:1]:${port}/f`,
      `http://0.0.0.0:${port}/g`,
      `http://169.254.169.254:${port}/latest/meta-data`,
      `http://10.0.0.1:${port}/h`,
    ];
    for (const [i, target] of targets.entries()) await deliver(`ssrf-${i}`, target);
    const letters = await waitFor(async () => {
      const l = await bed.deadLetters("webhook");
      return l.length >= targets.length ? l : undefined;
    }, { timeoutMs: 20_000, message: "every internal target dead-lettered" });
    expect(letters.map((l) => l.deviceId).sort()).toEqual(targets.map((_, i) => `ssrf-${i}`).sort());
    for (const l of letters) expect(l, l.deviceId).toMatchObject({ attempts: 1, lastError: { message: expect.stringMatching(/loopback|private/) } });
    expect(partner.requests).toHaveLength(0);
    await guarded.close();

    // explicitly allowed (AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1): the same kind of target is called
    await bed.run(webhookIntegration({ allowPrivate: true, maxAttempts: 2, backoff: { initialMs: 100 } }));
    await deliver("allowed", `http://localhost:${port}/allowed`);
    await waitFor(() => partner.requests.some((r) => r.path === "/allowed"), { timeoutMs: 20_000, message: "the allowed target called" });
  });

  it("a redirect is not followed", { timeout: 60_000 }, async () => {
    partner.respond = (req) => (req.path === "/moved" ? { status: 307, headers: { location: `${partner.url}/inside` } } : { status: 204 });
    await deliver("redirected", `${partner.url}/moved`);
    const letters = await waitFor(async () => {
      const l = (await bed.deadLetters("webhook")).filter((x) => x.deviceId === "redirected");
      return l.length > 0 ? l : undefined;
    }, { timeoutMs: 30_000, message: "the redirected delivery given up" });
    expect(letters[0]!.lastError.message).toMatch(/answered 307/);
    expect(partner.requests.filter((r) => r.path === "/inside")).toHaveLength(0);
  });
});
