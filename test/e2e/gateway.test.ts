// End to end over real sockets: a real nats-server (harness), two `airtwin node` processes and an
// `airtwin gateway` process, driven like users would — `airtwin ops` for the registry, curl-like HTTP
// for devices and apps, plain NATS for services. Proves: readings in all three encodings reach the twin
// with the reference's statistics; commands trip rules, subscriptions forward and stop; SSE delivers an
// alert; and with the nats-server killed mid-load, requests get 503, none gets 202 without its readings
// being stored, and after a restart and resend the final state equals the reference exactly.
import { connect as natsConnect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { pack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHANNELS, type Alert, type Reading, type TwinView } from "../../actors/device-twin/domain/mod.ts";
import { decode } from "../../runtime/mod.ts";
import { expectChannel } from "../domain/compare.ts";
import { acceptInOrder, refChannel } from "../domain/reference.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { sse as openSse } from "../harness/sse.ts";
import { waitFor } from "../harness/wait-for.ts";
import { AirtwinProcess, FAST_ENV, foobotBody, readingsFor, runAirtwin, startGatewayProcess } from "./processes.ts";

const ADMIN = "e2e-admin-token-0123456789abcdef";
const PREFIX = `e2e${process.pid}`;
const HOUR = 3_600_000;
// recent event time (alerts are listed within the last 24 h by default), whole seconds (Foobot time is in s)
const BASE = Math.floor((Date.now() - 20 * HOUR) / 1000) * 1000;

let ns: TestNatsServer;
let env: Record<string, string>;
const nodes: AirtwinProcess[] = [];
let gateway: AirtwinProcess;
let url: string;
let apiKey: string;
let nc: NatsConnection;

const adminHeaders = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = { authorization: `Bearer ${apiKey}` }) {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, body: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>), headers: r.headers };
}

async function register(deviceId: string): Promise<string> {
  const r = await api("POST", "/v1/devices", { deviceId, ownerId: "alice" }, adminHeaders);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return (r.body as { token: string }).token;
}

async function twin(deviceId: string): Promise<TwinView> {
  const r = await api("GET", `/v1/devices/${deviceId}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as unknown as TwinView;
}

/** The twin's statistics equal the reference computed from `readings` (each applied once, in t order). */
function expectReference(view: TwinView, readings: readonly Reading[]): void {
  const accepted = acceptInOrder([...readings].sort((a, b) => a.t - b.t));
  expect(view.readings).toBe(accepted.length);
  expect(view.lastT).toBe(accepted.at(-1)!.t);
  for (const ch of CHANNELS) expectChannel(ch, view.channels[ch], refChannel(accepted, ch), accepted.at(-1)!.t);
}

beforeAll(async () => {
  ns = await startNatsServer();
  env = {
    NATS_URL: ns.url,
    AIRTWIN_PREFIX: PREFIX,
    AIRTWIN_SHARDS: "8",
    AIRTWIN_ADMIN_TOKEN: ADMIN,
    AIRTWIN_INGEST_ACK_TIMEOUT_MS: "1500",
    AIRTWIN_INGEST_RATE_MAX: "1000000",
    AIRTWIN_LOG_LEVEL: "warn",
    ...FAST_ENV,
    // the snapshot reads below check what a commit wrote: every changed twin at every commit, not the 15-minute default
    AIRTWIN_SNAPSHOT_INTERVAL_MS: "0",
  };
  for (const id of ["e2e-n1", "e2e-n2"]) nodes.push(new AirtwinProcess(id, ["node"], { ...env, AIRTWIN_NODE_ID: id }));
  await waitFor(() => nodes.every((n) => n.output().includes('"node ready"') || (!n.running && Promise.reject(new Error(n.output())))), {
    timeoutMs: 60_000,
    message: "nodes ready",
  });
  ({ proc: gateway, url } = await startGatewayProcess(env));
  const user = await runAirtwin(["ops", "user", "create", "alice"], env);
  expect(user.code, user.out).toBe(0);
  apiKey = (JSON.parse(user.stdout) as { apiKey: string }).apiKey;
  nc = await natsConnect({ servers: ns.url, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
}, 120_000);

afterAll(async () => {
  await nc?.close().catch(() => undefined);
  const gwExit = await gateway?.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  await ns?.stop();
  expect(gwExit, "the gateway exits cleanly on SIGTERM").toBe(0);
}, 120_000);

describe("airtwin gateway end to end", () => {
  it("takes readings as JSON, Foobot datapoints and msgpack; the twin's statistics equal the reference", { timeout: 120_000 }, async () => {
    const token = await register("e2e-enc");
    const readings = readingsFor(7, BASE, 300);
    // JSON, one request, shuffled (the gateway sorts a request's readings by t)
    const shuffled = [...readings.slice(0, 100)].reverse();
    expect((await api("POST", "/v1/devices/e2e-enc/readings", { readings: shuffled }, { authorization: `Bearer ${token}` })).status).toBe(202);
    // Foobot datapoints with Foobot's token header, two requests
    for (const part of [readings.slice(100, 150), readings.slice(150, 200)]) {
      const r = await api("POST", "/v1/devices/e2e-enc/readings", foobotBody(part), { "x-api-key-token": token });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expect(r.body).toEqual({ accepted: 50 });
    }
    // msgpack
    const mp = await fetch(`${url}/v1/devices/e2e-enc/readings`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/msgpack" },
      body: pack({ readings: readings.slice(200) }),
    });
    expect(mp.status).toBe(202);
    expect(await mp.json()).toEqual({ accepted: 100 });

    const view = await waitFor(async () => {
      const v = await twin("e2e-enc");
      return v.readings === 300 ? v : undefined;
    }, { timeoutMs: 30_000 });
    expect(view.late).toBe(0);
    expect(view.duplicates).toBe(0);
    expectReference(view, readings);

    // the same from the shell, live and from the snapshot once committed
    const live = await runAirtwin(["ops", "twin", "get", "e2e-enc"], env);
    expect(live.code, live.out).toBe(0);
    expect((JSON.parse(live.stdout) as TwinView).channels).toEqual(view.channels);
    await waitFor(async () => {
      const snap = await api("GET", "/v1/devices/e2e-enc?consistency=snapshot");
      return (snap.body as unknown as TwinView).readings === 300;
    });
  });

  it("runs commands: a rule trips, a subscription forwards until unsubscribed, SSE delivers the alerts", { timeout: 120_000 }, async () => {
    const token = await register("e2e-cmd");
    const outputs: Array<{ subject: string; data: Record<string, unknown> }> = [];
    const sub = nc.subscribe(`${PREFIX}.out.>`, { callback: (_e, m) => void outputs.push({ subject: m.subject, data: decode(m.data) }) });
    await nc.flush();
    const sse = openSse(`${url}/v1/devices/e2e-cmd/live`, { authorization: `Bearer ${apiKey}` });
    await waitFor(() => sse.events.some((e) => e.event === "open"), { message: "SSE open" });

    const rule = { id: "co2-high", channel: "co2", direction: "above", enter: 1500, exit: 1000, minDurationMs: 0, clearDurationMs: 0 };
    expect(await api("POST", "/v1/devices/e2e-cmd/commands", { type: "putRule", rule })).toMatchObject({ status: 200, body: { type: "putRule", rule } });
    const subscription = { id: "hook", provider: "webhook", match: { ruleIds: ["co2-high"] }, target: "https://example.test/hook" };
    expect((await api("POST", "/v1/devices/e2e-cmd/commands", { type: "subscribe", subscription })).status).toBe(200);

    const post = async (t: number, co2: number) =>
      expect((await api("POST", "/v1/devices/e2e-cmd/readings", { readings: [{ t, co2 }] }, { authorization: `Bearer ${token}` })).status).toBe(202);
    const alertsOf = () => outputs.filter((o) => o.subject.startsWith(`${PREFIX}.out.alert.e2e-cmd.co2.`)).map((o) => o.data as unknown as Alert);
    const integrations = () => outputs.filter((o) => o.subject === `${PREFIX}.out.integration.webhook.e2e-cmd`);

    await post(BASE, 1600);
    await post(BASE + 60_000, 800);
    await waitFor(() => alertsOf().length === 2, { message: "start and end alerts" });
    expect(alertsOf().map((a) => a.kind)).toEqual(["event.start", "event.end"]);
    await waitFor(() => integrations().length === 2, { message: "both forwarded to the webhook" });
    expect(integrations()[0]!.data).toMatchObject({ subscriptionId: "hook", target: "https://example.test/hook", alert: { kind: "event.start", ruleId: "co2-high" } });

    // SSE: the readings and the alerts
    const sseAlerts = await waitFor(() => {
      const a = sse.events.filter((e) => e.event === "alert").map((e) => e.data as Alert);
      return a.length >= 2 ? a : undefined;
    });
    expect(sseAlerts.slice(0, 2).map((a) => [a.kind, a.eventId])).toEqual([
      ["event.start", `e2e-cmd:co2-high:${BASE}`],
      ["event.end", `e2e-cmd:co2-high:${BASE}`],
    ]);
    // the readings come from the gateway, the alerts through the node: either may be first
    await waitFor(() => sse.events.filter((e) => e.event === "readings").length >= 2, { message: "SSE readings" });

    expect(await api("POST", "/v1/devices/e2e-cmd/commands", { type: "unsubscribe", subscriptionId: "hook" })).toMatchObject({ status: 200 });
    await post(BASE + 120_000, 1700);
    await post(BASE + 180_000, 900);
    // outputs of one apply arrive in order from the one node connection: once the second end alert is
    // here, a forward of the second event would have been too
    await waitFor(() => alertsOf().length === 4, { message: "second event's alerts" });
    expect(integrations()).toHaveLength(2);

    const listed = await api("GET", "/v1/devices/e2e-cmd/alerts");
    expect((listed.body as { alerts: Alert[] }).alerts.filter((a) => a.ruleId === "co2-high").map((a) => a.kind)).toEqual(["event.start", "event.end", "event.start", "event.end"]);
    const events = await api("GET", "/v1/devices/e2e-cmd/events");
    expect((events.body as { recent: unknown[] }).recent).toHaveLength(2);
    sse.close();
    sub.unsubscribe();
  });

  it("answers services over NATS like HTTP", { timeout: 60_000 }, async () => {
    const r = await nc.request(`${PREFIX}.api.get.e2e-enc`, new Uint8Array(), { timeout: 10_000 });
    expect(r.headers?.get("Airtwin-Status")).toBe("200");
    expect(decode<TwinView>(r.data).readings).toBe(300);
    const c = await nc.request(`${PREFIX}.api.cmd.e2e-enc`, pack({ type: "deleteRule", ruleId: "nope" }), { timeout: 10_000 });
    expect(decode(c.data)).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_RULE_NOT_FOUND" });
  });

  it("survives the nats-server dying mid-load: 503s, no 202 without storage, exact state after resend", { timeout: 300_000 }, async () => {
    const DEVICES = 4;
    const BATCH = 10;
    const PER_DEVICE = 400;
    const devices = await Promise.all(
      Array.from({ length: DEVICES }, async (_, i) => {
        const id = `e2e-out-${i}`;
        return { id, token: await register(id), readings: readingsFor(100 + i, BASE, PER_DEVICE), next: 0, accepted: 0, lastAcceptedT: -1, refused: 0 };
      }),
    );
    const statuses = new Map<number, number>();
    let paused = false;

    // A device sends its batches in order and resends a batch until it gets 202 (as a Foobot would).
    const runDevice = async (d: (typeof devices)[number]) => {
      while (d.next * BATCH < d.readings.length && !paused) {
        const batch = d.readings.slice(d.next * BATCH, (d.next + 1) * BATCH);
        const status = await fetch(`${url}/v1/devices/${d.id}/readings`, {
          method: "POST",
          headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
          body: JSON.stringify({ readings: batch }),
        }).then(
          async (r) => (await r.arrayBuffer(), r.status),
          () => 0,
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 202) {
          d.accepted += batch.length;
          d.lastAcceptedT = batch.at(-1)!.t;
          d.next++;
        } else {
          d.refused++;
          await new Promise((r) => setTimeout(r, 100)); // Retry-After says 1 s; impatient devices are fine too
        }
      }
    };

    let running = Promise.all(devices.map(runDevice));
    await waitFor(() => devices.reduce((n, d) => n + d.next, 0) >= 30, { timeoutMs: 60_000, message: "load flowing" });
    await ns.kill("SIGKILL");
    await waitFor(() => (statuses.get(503) ?? 0) >= 8, { timeoutMs: 30_000, message: "requests answered 503 during the outage" });
    paused = true;
    await running;
    const acceptedBefore = devices.map((d) => ({ accepted: d.accepted, lastAcceptedT: d.lastAcceptedT }));

    await ns.restart();
    await waitFor(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, message: "gateway ready again" });

    // every 202 was stored: once the twins catch up, each holds at least every accepted reading — and at
    // most the one batch in flight when NATS died (stored, but its answer was 503)
    for (const [i, d] of devices.entries()) {
      const v = await waitFor(async () => {
        const x = await api("GET", `/v1/devices/${d.id}`).catch(() => undefined);
        const view = x?.status === 200 ? (x.body as unknown as TwinView) : undefined;
        return view !== undefined && view.readings >= acceptedBefore[i]!.accepted ? view : undefined;
      }, { timeoutMs: 90_000, message: `${d.id} holds its accepted readings` });
      expect(v.lastT ?? -1).toBeGreaterThanOrEqual(acceptedBefore[i]!.lastAcceptedT);
      expect(v.readings).toBeLessThanOrEqual(acceptedBefore[i]!.accepted + BATCH);
    }

    // resend what was not confirmed, then the rest
    paused = false;
    running = Promise.all(devices.map(runDevice));
    await running;
    expect([...statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([]);
    expect(statuses.get(503)).toBeGreaterThan(0);

    for (const d of devices) {
      const v = await waitFor(async () => {
        const x = await twin(d.id);
        return x.readings === PER_DEVICE ? x : undefined;
      }, { timeoutMs: 60_000, message: `${d.id} complete` });
      // A request answered 503 may still have been stored: nats.js keeps what was published while it was
      // disconnected and sends it on reconnect. Its resend then repeats readings the twin has (counted as
      // duplicate or late, applied once) — only ever readings of refused requests.
      expect(v.late + v.duplicates).toBeLessThanOrEqual(d.refused * BATCH);
      expectReference(v, d.readings);
    }
  });

  it("lets `airtwin ops` show the cluster, list and disable devices", { timeout: 120_000 }, async () => {
    const cluster = await runAirtwin(["ops", "cluster", "--json"], env);
    expect(cluster.code, cluster.out).toBe(0);
    const view = JSON.parse(cluster.stdout) as { nodes: Array<{ nodeId: string }>; shards: unknown[] };
    expect(view.nodes.map((n) => n.nodeId).sort()).toEqual(["e2e-n1", "e2e-n2"]);
    expect(view.shards).toHaveLength(8);
    const list = await runAirtwin(["ops", "device", "list", "--owner", "alice"], env);
    expect((JSON.parse(list.stdout) as { devices: Array<{ deviceId: string }> }).devices.map((d) => d.deviceId)).toContain("e2e-enc");
    const token = await register("e2e-ops");
    expect((await runAirtwin(["ops", "device", "disable", "e2e-ops"], env)).code).toBe(0);
    await waitFor(async () => (await api("POST", "/v1/devices/e2e-ops/readings", { readings: [] }, { authorization: `Bearer ${token}` })).status === 401, {
      timeoutMs: 1000,
      message: "the gateway refuses the disabled device within a second",
    });
    const bad = await runAirtwin(["ops", "move", "99", "e2e-n1"], env);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("AIRTWIN_ERR_OPS_SHARD_RANGE");
  });
});
