// The thermostat integration against a real local HTTP server playing an Ecobee-like partner (client
// credentials, expiring bearer tokens, a rate limit): ventilation on at an event's start or a forecast,
// back to auto when the last event on the thermostat ends, exactly one call per transition under
// duplicate alerts, the token renewed before it expires, Retry-After and the call pace honoured.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Alert } from "../../actors/device-twin/domain/mod.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { ThermostatPartner } from "../../gateways/integrations/thermostat/partner-client.ts";
import { thermostatIntegration, type ThermostatIntegration } from "../../gateways/integrations/thermostat/thermostat.ts";
import { waitFor } from "../harness/mod.ts";
import { Partner, type PartnerAnswer, type PartnerRequest } from "./partner.ts";

/** An Ecobee-like partner: tokens live `tokenTtlS`; `throttleNext` answers the next thermostat call 429. */
class EcobeeLike {
  tokens = new Map<string, number>();
  calls: Array<{ thermostatId: string; vent: string; at: number }> = [];
  unauthorized = 0;
  throttleNext = 0;
  issued = 0;
  constructor(readonly tokenTtlS: number) {}
  answer = (r: PartnerRequest): PartnerAnswer => {
    if (r.path === "/token") {
      const form = new URLSearchParams(r.body);
      if (form.get("grant_type") !== "client_credentials" || form.get("client_id") !== "airtwin" || form.get("client_secret") !== "s3cret") return { status: 401 };
      const token = `tok-${++this.issued}`;
      this.tokens.set(token, Date.now() + this.tokenTtlS * 1000);
      return { status: 200, body: JSON.stringify({ access_token: token, token_type: "Bearer", expires_in: this.tokenTtlS }) };
    }
    const token = /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ""))?.[1];
    if (token === undefined || !((this.tokens.get(token) ?? 0) > Date.now())) {
      this.unauthorized++;
      return { status: 401 };
    }
    if (this.throttleNext > 0) {
      this.throttleNext--;
      return { status: 429, headers: { "retry-after": "1" } };
    }
    const body = JSON.parse(r.body) as { selection: { selectionMatch: string }; thermostat: { settings: { vent: string } } };
    this.calls.push({ thermostatId: body.selection.selectionMatch, vent: body.thermostat.settings.vent, at: Date.now() });
    return { status: 200, body: JSON.stringify({ status: { code: 0 } }) };
  };
  callsTo = (id: string) => this.calls.filter((c) => c.thermostatId === id).map((c) => c.vent);
}

const base = (deviceId: string, ruleId: string, channel: Alert["channel"], startedAt: number) => ({
  deviceId, ruleId, channel, eventId: `${deviceId}:${ruleId}:${startedAt}`, startedAt,
});
const start = (deviceId: string, ruleId: string, channel: Alert["channel"], startedAt: number): Alert => ({
  id: `${deviceId}:${ruleId}:${startedAt}:start`, kind: "event.start", at: startedAt, ...base(deviceId, ruleId, channel, startedAt),
});
const end = (deviceId: string, ruleId: string, channel: Alert["channel"], startedAt: number): Alert => ({
  id: `${deviceId}:${ruleId}:${startedAt}:end`, kind: "event.end", at: startedAt + 600_000, endedAt: startedAt + 600_000, ...base(deviceId, ruleId, channel, startedAt),
});

describe("thermostat integration", () => {
  let bed: IntegrationTestbed;
  let server: Partner;
  const partner = new EcobeeLike(2);
  let thermostat: ThermostatIntegration;

  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    server = await Partner.start(partner.answer);
    thermostat = thermostatIntegration({
      partner: { baseUrl: server.url, clientId: "airtwin", clientSecret: "s3cret", callsPerSecond: 4 },
      backoff: { initialMs: 200, maxMs: 2000 },
      sweepMs: 200,
      forecastHoldMs: 1000,
    });
    await bed.run(thermostat);
  }, 60_000);
  afterAll(async () => {
    await bed?.close();
    await server?.close();
  });

  async function send(deviceId: string, subscriptionId: string, alert: Alert, copy = ""): Promise<void> {
    await bed.publish("thermostat", deviceId, `${alert.id}:${subscriptionId}${copy}`, { subscriptionId, target: "", alert });
  }

  it("on at the start, auto at the end: one call per transition, however often the alerts come", async () => {
    await bed.subscribe("living", { id: "a", provider: "thermostat", match: {}, target: "t-100" });
    await bed.subscribe("living", { id: "b", provider: "thermostat", match: {}, target: "t-100" });
    const t = Date.UTC(2026, 2, 1, 7);
    const s = start("living", "default-pm", "pm", t);
    await Promise.all([send("living", "a", s), send("living", "b", s), send("living", "a", s, ":repeat")]);
    await waitFor(() => partner.callsTo("t-100").length === 1, { message: "on" });
    const e = end("living", "default-pm", "pm", t);
    await Promise.all([send("living", "a", e), send("living", "b", e), send("living", "a", e, ":repeat")]);
    await waitFor(() => partner.callsTo("t-100").length === 2, { message: "auto" });
    // a late repeat of the start (e.g. after a crash) changes nothing
    await send("living", "a", s, ":late");
    await waitFor(() => bed.metrics.delivered.get().then((m) => (m.values[0]?.value ?? 0) >= 7), { message: "all handled" });
    await new Promise((r) => setTimeout(r, 500));
    expect(partner.callsTo("t-100")).toEqual(["on", "auto"]);
    expect(await thermostat.state().record("t-100")).toMatchObject({ mode: "auto", holds: [] });
  });

  it("overlapping events keep it on until the last ends; other channels and kinds are ignored", async () => {
    await bed.subscribe("office", { id: "a", provider: "thermostat", match: {}, target: "t-200" });
    const t = Date.UTC(2026, 2, 1, 9);
    await send("office", "a", start("office", "default-co2", "co2", t));
    await waitFor(() => partner.callsTo("t-200").length === 1, { message: "on" });
    await send("office", "a", start("office", "default-voc", "voc", t + 60_000));
    await send("office", "a", start("office", "hot", "tmp", t + 60_000));
    await send("office", "a", end("office", "default-co2", "co2", t));
    await new Promise((r) => setTimeout(r, 700));
    expect(partner.callsTo("t-200")).toEqual(["on"]);
    await send("office", "a", end("office", "default-voc", "voc", t + 60_000));
    await waitFor(() => partner.callsTo("t-200").length === 2, { message: "auto" });
    expect(partner.callsTo("t-200")).toEqual(["on", "auto"]);
  });

  it("a forecast turns it on ahead of the event; the event takes over; a forecast nothing follows expires", async () => {
    await bed.subscribe("bedroom", { id: "a", provider: "thermostat", match: {}, target: "t-300" });
    const t = Date.UTC(2026, 2, 1, 11);
    const forecast: Alert = { id: `bedroom:default-co2:forecast:${t}`, deviceId: "bedroom", ruleId: "default-co2", channel: "co2", kind: "forecast", at: t, expectedAt: t + 1_200_000, value: 1450 };
    await send("bedroom", "a", forecast);
    await waitFor(() => partner.callsTo("t-300").length === 1, { message: "on by forecast" });
    await send("bedroom", "a", start("bedroom", "default-co2", "co2", t + 1_000_000));
    await new Promise((r) => setTimeout(r, 300));
    expect(partner.callsTo("t-300")).toEqual(["on"]);
    await send("bedroom", "a", end("bedroom", "default-co2", "co2", t + 1_000_000));
    await waitFor(() => partner.callsTo("t-300").length === 2, { message: "auto" });

    await bed.subscribe("attic", { id: "a", provider: "thermostat", match: {}, target: "t-400" });
    await send("attic", "a", { ...forecast, id: `attic:default-co2:forecast:${t}`, deviceId: "attic", expectedAt: t });
    await waitFor(() => partner.callsTo("t-400").length === 1, { message: "on by forecast" });
    // forecastHoldMs 1 s, sweep every 200 ms: back to auto without any alert
    await waitFor(() => partner.callsTo("t-400").length === 2, { timeoutMs: 10_000, message: "expired forecast" });
    expect(partner.callsTo("t-400")).toEqual(["on", "auto"]);
  }, 30_000);

  it("renews the token before it expires, honours Retry-After and keeps its pace", async () => {
    await bed.subscribe("hall", { id: "a", provider: "thermostat", match: {}, target: "t-500" });
    const t = Date.UTC(2026, 2, 1, 13);
    const issuedBefore = partner.issued;
    partner.throttleNext = 1;
    const firstSentAt = Date.now();
    await send("hall", "a", start("hall", "default-pm", "pm", t));
    await waitFor(() => partner.callsTo("t-500").length === 1, { timeoutMs: 10_000, message: "on after the 429" });
    expect(partner.calls.at(-1)!.at - firstSentAt).toBeGreaterThanOrEqual(1000);
    // tokens live 2 s and are renewed after 80 % of it: wait past a lifetime, the next call still works
    await new Promise((r) => setTimeout(r, 2200));
    await send("hall", "a", end("hall", "default-pm", "pm", t));
    await waitFor(() => partner.callsTo("t-500").length === 2, { message: "auto" });
    expect(partner.issued).toBeGreaterThan(issuedBefore);
    expect(partner.unauthorized).toBe(0);
  }, 30_000);

  it("keeps its pace: a burst of calls goes out one per slot", async () => {
    // judged on the spread of a burst, not on the gap between two arrivals: a loaded machine delays one
    // request and not the next (gaps of 133 ms were seen for 250 ms slots), never a whole burst's span
    const client = new ThermostatPartner({ baseUrl: server.url, clientId: "airtwin", clientSecret: "s3cret", callsPerSecond: 4 });
    try {
      await Promise.all(Array.from({ length: 8 }, (_, i) => client.setVentilation(`t-burst-${i}`, "on")));
    } finally {
      await client.close();
    }
    const arrivals = partner.calls.filter((c) => c.thermostatId.startsWith("t-burst-")).map((c) => c.at);
    expect(arrivals).toHaveLength(8);
    // sent at 250 ms slots after the token's: 1,750 ms from the first to the last; unpaced, a few ms
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThanOrEqual(1250);
  }, 30_000);
});
