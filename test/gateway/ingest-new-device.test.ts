// Two gateways over one real nats-server: a device registered through gateway A posts its first readings
// to gateway B while B's registry watch is behind (stopped, as after a reconnect, for seconds). B looks
// the device up and answers 202 at once; a device created and deleted meanwhile stays 401; a flood of
// unknown ids costs at most the cap of lookups on NATS, the rest answered 503 with Retry-After.
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry, registryBucket } from "../../gateways/registry/registry.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer, errorOf, GatewayFixture } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
/** Gateway B: its own registry view on its own connection, the parts it shares with A hold no registry state. */
let b: FastifyInstance;
let bRegistry: Registry;

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  await f.user("owner");
  // reopens a stopped watch only after 5 s
  bRegistry = await Registry.open(await f.connect(), { prefix: f.prefix, retryMs: 5000 });
  b = await f.buildApp({ registry: bRegistry });
});

afterAll(async () => {
  await bRegistry?.close();
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

async function watchBehind(): Promise<void> {
  await waitFor(() => bRegistry.user("owner") !== undefined, { message: "B has the owner" });
  bRegistry.rewatch("test: B's watch is behind");
}

const post = (app: FastifyInstance, id: string, token: string) =>
  app.inject({ method: "POST", url: `/v1/devices/${id}/readings`, headers: { ...bearer(token), "content-type": "application/json" }, payload: { readings: [{ t: T0, co2: 612 }] } });

async function readsOfRegistry(): Promise<{ settled(): Promise<number> }> {
  const nc = await f.connect();
  let count = 0;
  nc.subscribe(`$JS.API.STREAM.MSG.GET.KV_${registryBucket(f.prefix)}`, { callback: () => void count++ });
  await nc.flush();
  return {
    async settled() {
      await nc.flush();
      return count;
    },
  };
}

describe("ingest from a device the gateway's registry view does not know yet", () => {
  it("is accepted at once by the other gateway; created-and-deleted stays 401; a wrong token stays 401", async () => {
    await watchBehind();
    const dev = await f.device("new-dev", "owner");
    expect(bRegistry.device("new-dev")).toBeUndefined();
    const first = await post(b, "new-dev", dev.token);
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json()).toEqual({ accepted: 1 });

    const other = await f.device("other-dev", "owner");
    const wrong = await post(b, "other-dev", `${other.token}x`);
    expect(wrong.statusCode).toBe(401);
    expect(errorOf(wrong).code).toBe("AIRTWIN_ERR_AUTH_UNAUTHORIZED");
    expect((await post(b, "other-dev", other.token)).statusCode).toBe(202);

    const gone = await f.device("gone-dev", "owner");
    expect((await f.app.inject({ method: "DELETE", url: "/v1/devices/gone-dev", headers: admin })).statusCode).toBe(204);
    for (let i = 0; i < 3; i++) {
      const r = await post(b, "gone-dev", gone.token);
      expect(r.statusCode).toBe(401);
      expect(errorOf(r).code).toBe("AIRTWIN_ERR_AUTH_UNAUTHORIZED");
    }
    expect(bRegistry.device("gone-dev")).toBeUndefined();
  });

  it("answers a flood of unknown ids with 401 or 503 + Retry-After, with at most 32 lookups on NATS", async () => {
    const reads = await readsOfRegistry();
    const token = randomBytes(32).toString("base64url");
    const ids = Array.from({ length: 120 }, () => `flood-${randomBytes(6).toString("hex")}`);
    const answers = await Promise.all(ids.map((id) => post(b, id, token)));
    const unauthorized = answers.filter((r) => r.statusCode === 401);
    const busy = answers.filter((r) => r.statusCode === 503);
    expect(unauthorized.length + busy.length).toBe(ids.length);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) {
      expect(errorOf(r).code).toBe("AIRTWIN_ERR_REGISTRY_LOOKUP_UNAVAILABLE");
      expect(r.headers["retry-after"]).toBe("1");
    }
    const asked = await reads.settled();
    expect(asked).toBe(unauthorized.length); // every 401 was one lookup, every 503 none
    expect(asked).toBeLessThanOrEqual(32);
    expect(bRegistry.lookupsInFlight).toBe(0);
  });
});
