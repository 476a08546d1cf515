// The dashboard's server side: static files with a strict CSP (uPlot from node_modules, nothing else of
// it), GET /v1/me, and the fleet's live alert feed GET /v1/alerts/live over a real socket — admin sees
// every device's alerts, a user only their own, and no key is taken from the URL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer, errorOf, GatewayFixture, listen, sse } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let alice: Awaited<ReturnType<GatewayFixture["user"]>>;
let bob: Awaited<ReturnType<GatewayFixture["user"]>>;
const NOW = Date.now() - 3_600_000;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  alice = await f.user("alice");
  bob = await f.user("bob");
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

describe("static files", () => {
  it("serves the page at / with a CSP that allows only this origin", async () => {
    const r = await f.app.inject({ method: "GET", url: "/" });
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/html/);
    expect(r.body).toContain('<script type="module" src="/js/app.js"></script>');
    const csp = String(r.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    for (const path of ["/js/app.js", "/js/api.js", "/js/fleet.js", "/js/device.js", "/js/chart.js", "/js/format.js", "/js/history.js", "/js/device-settings.js", "/style.css"]) {
      const file = await f.app.inject({ method: "GET", url: path });
      expect(file.statusCode, path).toBe(200);
    }
    expect((await f.app.inject({ method: "GET", url: "/js/app.js" })).headers["content-type"]).toMatch(/javascript/);
  });

  it("serves uPlot's browser build from node_modules, and nothing else of the package", async () => {
    const esm = await f.app.inject({ method: "GET", url: "/assets/uplot/uPlot.esm.js" });
    expect(esm.statusCode).toBe(200);
    expect(esm.body).toMatch(/export \{ uPlot as default \}|export default/);
    expect((await f.app.inject({ method: "GET", url: "/assets/uplot/uPlot.min.css" })).statusCode).toBe(200);
    expect(errorOf(await f.app.inject({ method: "GET", url: "/assets/uplot/uPlot.cjs.js" })).statusCode).toBe(404);
    expect(errorOf(await f.app.inject({ method: "GET", url: "/assets/uplot/../package.json" })).statusCode).toBe(404);
  });

  it("leaves unknown paths to the API's 404 in the error shape", async () => {
    expect(errorOf(await f.app.inject({ method: "GET", url: "/nothing-here.js" }))).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_HTTP_NOT_FOUND" });
  });
});

describe("errors over a real socket", () => {
  it("keep their own code after the body was read (a 409 is not a cut-off body)", async () => {
    const app = await f.buildApp();
    const url = await listen(app);
    const again = await fetch(`${url}/v1/users`, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ userId: "alice" }) });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { code: string }).code).toBe("AIRTWIN_ERR_REGISTRY_USER_EXISTS");
    const bad = await fetch(`${url}/v1/devices/nobody-here/commands`, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ type: "reset" }) });
    expect(((await bad.json()) as { code: string }).code).toBe("AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND");
    await app.close();
  });
});

describe("GET /v1/me", () => {
  it("says who the key belongs to; 401 without one or with a device token", async () => {
    expect((await f.app.inject({ method: "GET", url: "/v1/me", headers: admin })).json()).toEqual({ kind: "admin" });
    expect((await f.app.inject({ method: "GET", url: "/v1/me", headers: alice.headers })).json()).toEqual({ kind: "user", userId: "alice" });
    expect(errorOf(await f.app.inject({ method: "GET", url: "/v1/me" })).statusCode).toBe(401);
    const d = await f.device("me-dev", "alice");
    expect(errorOf(await f.app.inject({ method: "GET", url: "/v1/me", headers: d.headers })).statusCode).toBe(401);
  });
});

describe("GET /v1/alerts/live", () => {
  it("streams every device's alerts to admin and only their own to a user", async () => {
    const app = await f.buildApp();
    const url = await listen(app);
    const devices = [await f.device("fleet-a", "alice"), await f.device("fleet-b", "bob")];
    for (const d of devices) {
      const put = await f.app.inject({
        method: "POST",
        url: `/v1/devices/${d.deviceId}/commands`,
        headers: admin,
        payload: { type: "putRule", rule: { id: "spike", channel: "co2", direction: "above", enter: 2000, exit: 1000, minDurationMs: 0, clearDurationMs: 0 } },
      });
      expect(put.statusCode, put.body).toBe(200);
    }
    const all = sse(`${url}/v1/alerts/live`, admin);
    const own = sse(`${url}/v1/alerts/live`, alice.headers);
    expect((await all.opened).headers["content-type"]).toMatch(/^text\/event-stream/);
    await waitFor(() => all.events.some((e) => e.event === "open") && own.events.some((e) => e.event === "open"));
    expect(own.events.find((e) => e.event === "open")?.data).toEqual({ scope: "own", userId: "alice" });

    for (const d of devices) {
      const post = await fetch(`${url}/v1/devices/${d.deviceId}/readings`, {
        method: "POST",
        headers: { ...bearer(d.token), "content-type": "application/json" },
        body: JSON.stringify({ readings: [{ t: NOW, co2: 800 }, { t: NOW + 1000, co2: 2500 }] }),
      });
      expect(post.status).toBe(202);
    }
    const alerts = (s: typeof all) => s.events.filter((e) => e.event === "alert").map((e) => e.data as { deviceId: string; kind: string; ruleId: string });
    await waitFor(() => alerts(all).length >= 2, { message: "both alerts on the admin's stream" });
    expect(alerts(all).map((a) => a.deviceId).sort()).toEqual(["fleet-a", "fleet-b"]);
    expect(alerts(all)[0]).toMatchObject({ kind: "event.start", ruleId: "spike" });
    // alice's event ends after bob's alert went out (one node publishes both, in order): once her end
    // arrives, bob's start was filtered from her stream, not merely late
    const end = await fetch(`${url}/v1/devices/fleet-a/readings`, {
      method: "POST",
      headers: { ...bearer(devices[0]!.token), "content-type": "application/json" },
      body: JSON.stringify({ readings: [{ t: NOW + 2000, co2: 500 }] }),
    });
    expect(end.status).toBe(202);
    await waitFor(() => alerts(own).some((a) => a.kind === "event.end"), { message: "alice's event.end" });
    expect(alerts(own).map((a) => `${a.deviceId} ${a.kind}`)).toEqual(["fleet-a event.start", "fleet-a event.end"]);
    all.close();
    own.close();
    await app.close();
  });

  it("takes the key only from the Authorization header (401 for ?token=, 401 without)", async () => {
    const app = await f.buildApp();
    const url = await listen(app);
    const viaQuery = sse(`${url}/v1/alerts/live?token=${encodeURIComponent(bob.apiKey)}`);
    expect((await viaQuery.opened).statusCode).toBe(401);
    const none = sse(`${url}/v1/alerts/live`);
    expect((await none.opened).statusCode).toBe(401);
    viaQuery.close();
    none.close();
    await app.close();
  });
});
