// Integrations end to end, as operators run them: a real nats-server, an `airtwin node`, an `airtwin
// gateway` and `airtwin integrations --providers webhook` processes. A user subscribes over HTTP, readings
// over HTTP trip a rule, the webhook partner receives a signed delivery. Then `kill -9` of the
// integrations process while deliveries are in flight: after a restart every delivery still arrives,
// those cut off arriving again with the same webhook-id.
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { Partner } from "../integrations/partner.ts";
import { AirtwinProcess, FAST_ENV, runAirtwin, startGatewayProcess } from "./processes.ts";

const ADMIN = "e2e-admin-token-integrations-0123";
const SECRET = `whsec_${Buffer.from("e2e-integrations-secret-0123456789").toString("base64")}`;
let ns: TestNatsServer;
let env: Record<string, string>;
let node: AirtwinProcess;
let gateway: AirtwinProcess;
let integrations: AirtwinProcess;
let url: string;
let apiKey: string;
let partner: Partner;

async function api(method: string, path: string, body: unknown, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function startIntegrations(): Promise<AirtwinProcess> {
  const p = new AirtwinProcess("integrations", ["integrations", "--providers", "webhook"], { ...env, AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1" });
  await waitFor(() => p.output().includes('"integrations ready"') || (!p.running && Promise.reject(new Error(p.output()))), { timeoutMs: 60_000, message: "integrations ready" });
  return p;
}

/** A device with an instant co2 rule and a webhook subscription; returns its token. */
async function device(deviceId: string, secret?: string): Promise<string> {
  const r = await api("POST", "/v1/devices", { deviceId, ownerId: "alice" }, ADMIN);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  const rule = { id: "co2-now", channel: "co2", direction: "above", enter: 1000, exit: 800, minDurationMs: 0, clearDurationMs: 0 };
  expect((await api("POST", `/v1/devices/${deviceId}/commands`, { type: "putRule", rule }, apiKey)).status).toBe(200);
  const subscription = { id: "hook", provider: "webhook", match: { kinds: ["event.start"] }, target: `${partner.url}/${deviceId}`, ...(secret ? { secret } : {}) };
  const sub = await api("POST", `/v1/devices/${deviceId}/commands`, { type: "subscribe", subscription }, apiKey);
  expect(sub.status, JSON.stringify(sub.body)).toBe(200);
  return r.body.token as string;
}

beforeAll(async () => {
  ns = await startNatsServer();
  partner = await Partner.start();
  env = { NATS_URL: ns.url, AIRTWIN_PREFIX: `e2ei${process.pid}`, AIRTWIN_SHARDS: "8", AIRTWIN_ADMIN_TOKEN: ADMIN, AIRTWIN_LOG_LEVEL: "warn", ...FAST_ENV };
  node = new AirtwinProcess("node", ["node"], { ...env, AIRTWIN_NODE_ID: "e2ei-n1" });
  await waitFor(() => node.output().includes('"node ready"') || (!node.running && Promise.reject(new Error(node.output()))), { timeoutMs: 60_000, message: "node ready" });
  ({ proc: gateway, url } = await startGatewayProcess(env));
  const user = await runAirtwin(["ops", "user", "create", "alice"], env);
  expect(user.code, user.out).toBe(0);
  apiKey = (JSON.parse(user.stdout) as { apiKey: string }).apiKey;
  integrations = await startIntegrations();
}, 180_000);

afterAll(async () => {
  await integrations?.stop();
  await gateway?.stop();
  await node?.stop();
  await partner?.close();
  await ns?.stop();
}, 120_000);

describe("airtwin integrations end to end", () => {
  it("a user subscribes over HTTP, readings trip a rule, the webhook receives a signed delivery", { timeout: 60_000 }, async () => {
    const token = await device("e2ei-living", SECRET);
    const t = Date.now() - 60_000;
    const r = await fetch(`${url}/v1/devices/e2ei-living/readings`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ readings: [{ t, co2: 700 }, { t: t + 30_000, co2: 1300 }] }),
    });
    expect(r.status).toBe(202);
    const req = await waitFor(() => partner.requests.find((x) => x.path === "/e2ei-living"), { timeoutMs: 30_000, message: "webhook delivery" });
    const body = new Webhook(SECRET).verify(req.body, req.headers as Record<string, string>) as { type: string; data: { deviceId: string; value: number } };
    expect(body.type).toBe("event.start");
    expect(body.data).toMatchObject({ deviceId: "e2ei-living", value: 1300 });
  });

  it("kill -9 mid-delivery: after a restart every delivery arrives, the interrupted ones again with the same webhook-id", { timeout: 150_000 }, async () => {
    const devices = Array.from({ length: 12 }, (_, i) => `e2ei-k${i}`);
    const tokens = await Promise.all(devices.map((d) => device(d)));
    // the partner holds its answers (6 s) until the process is gone: those deliveries are in flight
    let holding = true;
    partner.respond = (r) => (r.path.startsWith("/e2ei-k") && holding ? { status: 204, delayMs: 6000 } : { status: 204 });
    const t = Date.now() - 60_000;
    await Promise.all(devices.map((d, i) =>
      fetch(`${url}/v1/devices/${d}/readings`, {
        method: "POST", headers: { authorization: `Bearer ${tokens[i]}`, "content-type": "application/json" },
        body: JSON.stringify({ readings: [{ t, co2: 600 }, { t: t + 30_000, co2: 1500 }] }),
      })));
    const first = await waitFor(() => {
      const seen = new Set(partner.requests.filter((r) => r.path.startsWith("/e2ei-k")).map((r) => r.path));
      return seen.size === devices.length ? partner.requests.filter((r) => r.path.startsWith("/e2ei-k")) : undefined;
    }, { timeoutMs: 30_000, message: "every delivery in flight" });
    const idOf = new Map(first.map((r) => [r.path, r.headers["webhook-id"] as string]));
    integrations.child.kill("SIGKILL");
    await integrations.exited;
    holding = false;
    integrations = await startIntegrations();
    // the cut-off deliveries come back after the consumer's ack wait (30 s), with the same ids
    const again = await waitFor(() => {
      const later = partner.requests.filter((r) => r.path.startsWith("/e2ei-k")).slice(first.length);
      return new Set(later.map((r) => r.path)).size === devices.length ? later : undefined;
    }, { timeoutMs: 90_000, message: "every delivery again" });
    for (const r of again) expect(r.headers["webhook-id"], r.path).toBe(idOf.get(r.path));
  });
});
