// Revocation across gateways, over HTTP: two gateways (each with its own NATS connection and registry
// view) on a real nats-server and node. A device disabled or deleted through one gateway, or a user
// deleted there, is refused by the other within a second — the registry's contract (docs/gateway.md) —
// and a token that was refused stays refused until the device is enabled again.
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../gateways/http/app.ts";
import { assembleGateway, type GatewayParts } from "../../gateways/http/gateway.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, ADMIN_TOKEN, bearer, GatewayFixture } from "../gateway/fixture.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
/** The registry's promise: every gateway refuses a revoked credential within a second. */
const REVOKED_WITHIN_MS = 1000;

let server: TestNatsServer;
let f: GatewayFixture;
let other: GatewayParts;
let a: FastifyInstance;
let b: FastifyInstance;
let t = T0;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  other = await assembleGateway(await f.connect(), { prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, defaultMetrics: false, ackTimeoutMs: 2000 });
  a = f.app;
  b = await buildApp({ ...other.deps, adminToken: ADMIN_TOKEN });
}, 60_000);

afterAll(async () => {
  await b?.close();
  await other?.close();
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

const ingest = async (app: FastifyInstance, deviceId: string, token: string) =>
  (await app.inject({ method: "POST", url: `/v1/devices/${deviceId}/readings`, headers: bearer(token), payload: { readings: [{ t: (t += 1000), pm: 5 }] } })).statusCode;

/** Waits until gateway B refuses, and says how long it took from `since`. */
async function refusedBy(check: () => Promise<number>, expected: number, since: number): Promise<number> {
  await waitFor(async () => (await check()) === expected, { timeoutMs: 5000, intervalMs: 10, message: `refused with ${expected}` });
  return Date.now() - since;
}

describe("revocation on every gateway", () => {
  it("a device disabled or deleted on one gateway is refused by the other within a second", async () => {
    await f.user("alice");
    const { token } = await f.device("rev-1", "alice");
    await waitFor(async () => (await ingest(b, "rev-1", token)) === 202, { message: "gateway B knows the device" });

    let since = Date.now();
    expect((await a.inject({ method: "PATCH", url: "/v1/devices/rev-1", headers: admin, payload: { disabled: true } })).statusCode).toBe(200);
    expect(await ingest(a, "rev-1", token)).toBe(401); // the writer at once
    expect(await refusedBy(() => ingest(b, "rev-1", token), 401, since)).toBeLessThan(REVOKED_WITHIN_MS);

    expect((await a.inject({ method: "PATCH", url: "/v1/devices/rev-1", headers: admin, payload: { disabled: false } })).statusCode).toBe(200);
    await waitFor(async () => (await ingest(b, "rev-1", token)) === 202, { message: "enabled again on B" });

    since = Date.now();
    expect((await a.inject({ method: "DELETE", url: "/v1/devices/rev-1", headers: admin })).statusCode).toBe(204);
    expect(await ingest(a, "rev-1", token)).toBe(401);
    expect(await refusedBy(() => ingest(b, "rev-1", token), 401, since)).toBeLessThan(REVOKED_WITHIN_MS);
    // and it stays refused: the same id registered again gets a new token, the old one opens nothing
    const again = await f.device("rev-1", "alice");
    await waitFor(async () => (await ingest(b, "rev-1", again.token)) === 202);
    expect(await ingest(b, "rev-1", token)).toBe(401);
  });

  it("a user deleted on one gateway: their API key is refused by the other within a second", async () => {
    const bob = await f.user("bob");
    await f.device("rev-2", "bob");
    const read = async () => (await b.inject({ method: "GET", url: "/v1/devices/rev-2", headers: bob.headers })).statusCode;
    await waitFor(async () => (await read()) === 200, { message: "gateway B knows bob" });
    const since = Date.now();
    expect((await a.inject({ method: "DELETE", url: "/v1/users/bob", headers: admin })).statusCode).toBe(204);
    expect(await refusedBy(read, 401, since)).toBeLessThan(REVOKED_WITHIN_MS);
    expect((await b.inject({ method: "GET", url: "/v1/me", headers: bob.headers })).statusCode).toBe(401);
  });
});
