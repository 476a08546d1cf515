// Over a real socket: server-sent events deliver readings and alerts; the NATS services answer like
// HTTP; graceful shutdown finishes the request in flight (202 only after its PubAck) while a request
// arriving meanwhile gets 503 in the error shape, and then the port is closed.
import { connect as netConnect } from "node:net";
import { decode, encode } from "../../runtime/mod.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { STATUS_HEADER } from "../../gateways/api/nats-service.ts";
import type { PubAck } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { bearer, GatewayFixture, listen, sse } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let alice: Awaited<ReturnType<GatewayFixture["user"]>>;
const NOW = Date.now() - 3_600_000;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  alice = await f.user("alice");
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

describe("server-sent events", () => {
  it("streams accepted readings and the alerts of the device, to its owner (also with ?token=)", async () => {
    const app = await f.buildApp();
    const url = await listen(app);
    const d = await f.device("live-1", "alice");
    await f.app.inject({
      method: "POST",
      url: "/v1/devices/live-1/commands",
      headers: alice.headers,
      payload: { type: "putRule", rule: { id: "spike", channel: "co2", direction: "above", enter: 2000, exit: 1000, minDurationMs: 0, clearDurationMs: 0 } },
    });
    const a = sse(`${url}/v1/devices/live-1/live`, alice.headers);
    const b = sse(`${url}/v1/devices/live-1/live?token=${encodeURIComponent(alice.apiKey)}`);
    const res = await a.opened;
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    await waitFor(() => a.events.some((e) => e.event === "open") && b.events.some((e) => e.event === "open"));

    const post = await fetch(`${url}/v1/devices/live-1/readings`, {
      method: "POST",
      headers: { ...bearer(d.token), "content-type": "application/json" },
      body: JSON.stringify({ readings: [{ t: NOW + 1000, co2: 2500 }, { t: NOW, co2: 800 }] }),
    });
    expect(post.status).toBe(202);
    for (const s of [a, b]) {
      const readings = await waitFor(() => s.events.find((e) => e.event === "readings"));
      expect(readings.data).toMatchObject({ deviceId: "live-1", readings: [{ t: NOW, co2: 800 }, { t: NOW + 1000, co2: 2500 }] });
      const alert = await waitFor(() => s.events.find((e) => e.event === "alert"));
      expect(alert.data).toMatchObject({ deviceId: "live-1", ruleId: "spike", kind: "event.start", channel: "co2", value: 2500 });
      expect(alert.id).toBe((alert.data as { id: string }).id);
    }
    a.close();
    b.close();
    await waitFor(async () => (await app.inject({ method: "GET", url: "/metrics" })).body.includes("airtwin_gateway_live_streams 0"));
    await app.close();
  });

  it("refuses another user's stream with 403 and a missing token with 401", async () => {
    const app = await f.buildApp();
    const url = await listen(app);
    await f.device("live-2", "alice");
    const bob = await f.user("bob");
    const forbidden = await fetch(`${url}/v1/devices/live-2/live`, { headers: bob.headers });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { code: string }).code).toBe("AIRTWIN_ERR_AUTH_FORBIDDEN");
    expect((await fetch(`${url}/v1/devices/live-2/live`)).status).toBe(401);
    await app.close();
  });
});

describe("NATS services", () => {
  it("answers <prefix>.api.get and <prefix>.api.cmd with the HTTP bodies (msgpack), errors included", async () => {
    f.parts.serve();
    const d = await f.device("svc-1", "alice");
    await f.app.inject({ method: "POST", url: "/v1/devices/svc-1/readings", headers: bearer(d.token), payload: { readings: [{ t: NOW, pm: 12 }] } });
    const nc = await f.connect();
    const ask = async (verb: string, id: string, body?: unknown) => {
      const m = await nc.request(`${f.prefix}.api.${verb}.${id}`, body === undefined ? new Uint8Array() : encode(body), { timeout: 5000 });
      return { status: Number(m.headers?.get(STATUS_HEADER)), body: decode<Record<string, unknown>>(m.data), contentType: m.headers?.get("Content-Type") };
    };
    const view = await waitFor(async () => {
      const r = await ask("get", "svc-1");
      return (r.body as unknown as TwinView).readings === 1 ? r : undefined;
    });
    expect(view.status).toBe(200);
    expect(view.contentType).toBe("application/msgpack");
    const http = (await f.app.inject({ method: "GET", url: "/v1/devices/svc-1", headers: alice.headers })).json<TwinView>();
    expect((view.body as unknown as TwinView).channels).toEqual(http.channels);
    const snap = await waitFor(async () => {
      const r = await ask("get", "svc-1", { consistency: "snapshot" });
      return (r.body as unknown as TwinView).readings === 1 ? r : undefined;
    });
    expect((snap.body as unknown as TwinView).channels).toEqual(http.channels);

    const rule = { id: "svc-rule", channel: "pm", direction: "above", enter: 40, exit: 30, minDurationMs: 0, clearDurationMs: 0 };
    const put = await ask("cmd", "svc-1", { type: "putRule", rule });
    expect(put).toMatchObject({ status: 200, body: { type: "putRule", rule } });

    const refused = await ask("cmd", "svc-1", { type: "deleteRule", ruleId: "nope" });
    const viaHttp = await f.app.inject({ method: "POST", url: "/v1/devices/svc-1/commands", headers: alice.headers, payload: { type: "deleteRule", ruleId: "nope" } });
    expect(refused.status).toBe(404);
    expect(refused.body).toEqual(viaHttp.json());

    expect(await ask("cmd", "svc-1", { type: "bogus" })).toMatchObject({ status: 400, body: { code: "AIRTWIN_ERR_COMMAND_INVALID" } });
    expect(await ask("get", "unregistered")).toMatchObject({ status: 404, body: { code: "AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND" } });
    expect(await ask("get", "svc-1", { consistency: "eventual" })).toMatchObject({ status: 400, body: { code: "AIRTWIN_ERR_HTTP_QUERY_INVALID" } });
    const garbage = await nc.request(`${f.prefix}.api.cmd.svc-1`, new Uint8Array([0x82, 0xa8]), { timeout: 5000 });
    expect(decode(garbage.data)).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_CODEC_DECODE" });
  });
});

describe("graceful shutdown", () => {
  it("finishes the request in flight (202 after its PubAck), answers one arriving meanwhile with 503, then stops listening", async () => {
    const client = f.parts.client;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let stored: PubAck | undefined;
    let entered = false;
    const app = await f.buildApp({
      twins: f.twinApi({
        backend: {
          // the publish happens only after the gate opens, so the request is in flight during close()
          send: async (...a) => {
            entered = true;
            await gate;
            stored = await client.send(...a);
            return stored;
          },
          command: (...a) => client.command(...a),
          get: (...a) => client.get(...a),
          getSnapshot: (...a) => client.getSnapshot(...a),
        },
      }),
    });
    const url = await listen(app);
    const d = await f.device("shut-1", "alice");
    const port = Number(new URL(url).port);
    const body = JSON.stringify({ readings: [{ t: NOW, pm: 7 }] });
    const request = (path: string, payload: string) =>
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${d.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
    const sock = netConnect(port, "127.0.0.1");
    let raw = "";
    sock.setEncoding("utf8");
    sock.on("data", (c: string) => (raw += c));
    const socketClosed = new Promise<void>((r) => sock.on("close", () => r()));
    await new Promise<void>((r) => sock.once("connect", () => r()));
    sock.write(request("/v1/devices/shut-1/readings", body));
    await waitFor(() => entered, { message: "the first request waits for its publish" });

    const closed = app.close();
    await new Promise((r) => setTimeout(r, 100)); // close() is now waiting for the request in flight
    // a second request on the same keep-alive connection, sent while the gateway is closing
    sock.write(request("/v1/devices/shut-1/readings", body));
    await new Promise((r) => setTimeout(r, 100));
    expect(stored).toBeUndefined();
    release();
    await closed;
    await socketClosed;
    expect(stored?.seq).toBeGreaterThan(0);
    const responses = raw.split(/(?=HTTP\/1\.1 )/);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 202/);
    expect(responses[0]).toContain('{"accepted":1}');
    expect(responses[1]).toMatch(/^HTTP\/1\.1 503/);
    expect(responses[1]).toMatch(/retry-after: 1/i);
    expect(responses[1]).toContain('"code":"AIRTWIN_ERR_GATEWAY_SHUTTING_DOWN"');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    // the accepted reading reached the twin
    const view = await waitFor(async () => {
      const r = await f.parts.client.get("twin", "shut-1", null);
      return r.ok && (r.value as TwinView).readings === 1 ? (r.value as TwinView) : undefined;
    });
    expect(view.channels.pm?.last).toBe(7);
  });
});
