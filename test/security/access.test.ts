// Who may do what, on every HTTP route of the gateway (the route table the fuzzer and the OpenAPI check
// share, test/fuzz/http-routes.ts, so a new route is covered the day it is added), against a real
// nats-server, node and gateway: no credentials and wrong ones get 401; a device token opens its own
// ingest and nothing else — no twin, no command, no feed, no ops; a user is refused (403) every device
// of another owner — reads, commands, live feeds — and every admin route; what was refused changed
// nothing; and the fleet's live alerts carry only the user's own devices.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { HTTP_ROUTES, type FuzzRoute } from "../fuzz/http-routes.ts";
import { admin, bearer, errorOf, GatewayFixture, listen, sse } from "../gateway/fixture.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const RULE = { id: "r1", channel: "pm", direction: "above", enter: 50, exit: 40, minDurationMs: 0, clearDurationMs: 0 };

let server: TestNatsServer;
let f: GatewayFixture;
let url: string;
const who: Record<string, Record<string, string>> = {};

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  const alice = await f.user("alice");
  const bob = await f.user("bob");
  const aliceDevice = await f.device("alice-dev", "alice");
  const bobDevice = await f.device("bob-dev", "bob");
  who.nobody = {};
  who.garbage = bearer("not-a-credential");
  who.almostAdmin = bearer("test-admin-token-012345678"); // the admin token less a character
  who.aliceDevice = aliceDevice.headers;
  who.bobDevice = bobDevice.headers;
  who.alice = alice.headers;
  who.bob = bob.headers;
  who.admin = admin;
  url = await listen(await f.buildApp());
}, 60_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

/** A request body the route would take, so that only the credentials decide. */
function bodyOf(route: FuzzRoute): unknown {
  switch (route.body) {
    case "user":
      return { userId: "carol" };
    case "device":
      return { deviceId: "new-dev", ownerId: "alice" };
    case "patch":
      return { disabled: false };
    case "readings":
      return { readings: [{ t: T0, pm: 5 }] };
    case "command":
      return { type: "putRule", rule: RULE };
    case "move":
      return { node: "n1" };
    case "rebalance":
      return { dryRun: true };
    default:
      return undefined;
  }
}

/** The URL of a route on alice's device (or ids nothing has). */
function urlOf(route: FuzzRoute): string {
  return route.url
    .replace(":id", route.url.startsWith("/v1/users/") ? "nobody-here" : route.ids === "foreign" ? "no-such-device" : "alice-dev")
    .replace(":shard", "0")
    .replace(":node", "no-such-node");
}

/** The status a request gets; server-sent-event routes over a socket, cut once the status is in. */
async function statusOf(route: FuzzRoute, headers: Record<string, string>): Promise<{ status: number; body?: string }> {
  const path = urlOf(route);
  if (route.stream) {
    const controller = new AbortController();
    const res = await fetch(`${url}${path}`, { headers, signal: controller.signal });
    const body = res.status === 200 ? "" : await res.text();
    controller.abort();
    return { status: res.status, body };
  }
  const payload = bodyOf(route);
  const r = await f.app.inject({ method: route.method, url: path, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: r.statusCode, body: r.body };
}

/** Who may use a route: the credentials that must pass its authentication and authorisation. */
const ALLOWED: Record<FuzzRoute["auth"], readonly string[]> = {
  none: Object.keys({ nobody: 1, garbage: 1, almostAdmin: 1, aliceDevice: 1, bobDevice: 1, alice: 1, bob: 1, admin: 1 }),
  admin: ["admin"],
  app: ["alice", "bob", "admin"],
  owner: ["alice", "admin"], // routes on alice's device
  device: ["aliceDevice"],
};

describe("access on every route", () => {
  const routes = HTTP_ROUTES.filter((r) => r.auth !== "none");

  it.each(routes.map((r) => [`${r.method} ${r.url}`, r] as const))("%s: only its principals pass; the others get the coded 401 or 403", async (_name, route) => {
    for (const [name, headers] of Object.entries(who)) {
      const { status, body } = await statusOf(route, headers);
      if (ALLOWED[route.auth].includes(name)) {
        expect([401, 403], `${name}: ${body}`).not.toContain(status);
        continue;
      }
      // no credentials, or credentials of no principal: 401; a principal without the right: 403 (a device
      // token on an app route is no principal there: 401)
      const principal = (name === "alice" || name === "bob") && route.auth !== "device";
      expect(status, `${name}: ${body}`).toBe(principal ? 403 : 401);
      expect(JSON.parse(body!).code).toBe(principal ? "AIRTWIN_ERR_AUTH_FORBIDDEN" : "AIRTWIN_ERR_AUTH_UNAUTHORIZED");
    }
  });

  it("?token= opens only the owner's live stream, and never with a device token", async () => {
    for (const [headers, status] of [[who.bob!, 403], [who.aliceDevice!, 401], [who.garbage!, 401], [who.alice!, 200]] as const) {
      const key = headers.authorization!.slice("Bearer ".length);
      const s = sse(`${url}/v1/devices/alice-dev/live?token=${encodeURIComponent(key)}`);
      expect((await s.opened).statusCode).toBe(status);
      s.close();
    }
  });

  it("what was refused changed nothing: bob's commands and readings never reached alice's twin", async () => {
    const twin = async () => (await f.app.inject({ method: "GET", url: "/v1/devices/alice-dev", headers: admin })).json<TwinView & { rules: Array<{ id: string }> }>();
    const before = await twin();
    for (const headers of [who.bob!, who.bobDevice!, who.aliceDevice!]) {
      for (const command of [{ type: "putRule", rule: { ...RULE, id: "intruder" } }, { type: "reset" }, { type: "deleteRule", ruleId: "r1" }]) {
        const r = await f.app.inject({ method: "POST", url: "/v1/devices/alice-dev/commands", headers, payload: command });
        expect([401, 403]).toContain(errorOf(r).statusCode);
      }
    }
    for (const headers of [who.bob!, who.bobDevice!, who.admin!]) {
      const r = await f.app.inject({ method: "POST", url: "/v1/devices/alice-dev/readings", headers, payload: { readings: [{ t: T0 + 1, pm: 999 }] } });
      expect(errorOf(r).statusCode).toBe(401);
    }
    const after = await twin();
    expect(after.readings).toBe(before.readings);
    expect(after.rules.map((r) => r.id)).toEqual(before.rules.map((r) => r.id));
    expect(after.rules.some((r) => r.id === "intruder")).toBe(false);
  });

  it("a user's fleet alert stream carries their own devices' alerts, never another owner's", async () => {
    for (const [device, headers] of [["alice-dev", who.alice!], ["bob-dev", who.bob!]] as const) {
      const r = await f.app.inject({ method: "POST", url: `/v1/devices/${device}/commands`, headers, payload: { type: "putRule", rule: { ...RULE, id: "fleet" } } });
      expect(r.statusCode, r.body).toBe(200);
    }
    const aliceFeed = sse(`${url}/v1/alerts/live`, who.alice);
    const bobFeed = sse(`${url}/v1/alerts/live`, who.bob);
    const adminFeed = sse(`${url}/v1/alerts/live`, admin);
    for (const s of [aliceFeed, bobFeed, adminFeed]) expect((await s.opened).statusCode).toBe(200);
    await waitFor(() => [aliceFeed, bobFeed, adminFeed].every((s) => s.events.some((e) => e.event === "open")));
    for (const [device, headers] of [["alice-dev", who.aliceDevice!], ["bob-dev", who.bobDevice!]] as const) {
      const r = await f.app.inject({ method: "POST", url: `/v1/devices/${device}/readings`, headers, payload: { readings: [{ t: T0 + 60_000, pm: 90 }] } });
      expect(r.statusCode, r.body).toBe(202);
    }
    const devicesOf = (s: typeof aliceFeed) => [...new Set(s.events.filter((e) => e.event === "alert").map((e) => (e.data as { deviceId: string }).deviceId))].sort();
    // the admin sees both: once both alerts reached the admin's stream they reached the others' too
    await waitFor(() => devicesOf(adminFeed).length === 2 && devicesOf(aliceFeed).length > 0 && devicesOf(bobFeed).length > 0, { message: "the alerts on the streams" });
    expect(devicesOf(aliceFeed)).toEqual(["alice-dev"]);
    expect(devicesOf(bobFeed)).toEqual(["bob-dev"]);
    expect(devicesOf(adminFeed)).toEqual(["alice-dev", "bob-dev"]);
    for (const s of [aliceFeed, bobFeed, adminFeed]) s.close();
  });
});
