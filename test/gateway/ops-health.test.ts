// Ops routes (through the real coordinator of two in-process nodes), health probes, metrics, OpenAPI,
// unknown routes, and the code → status table applied to every code the gateway can answer with.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainErrors } from "../../actors/device-twin/domain/mod.ts";
import { ProblemError, GatewayError, GatewayErrors, HTTP_STATUS, type GatewayErrorName } from "../../gateways/errors.ts";
import { RuntimeError, RuntimeErrors, type RuntimeErrorName } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, errorOf, GatewayFixture } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let alice: Awaited<ReturnType<GatewayFixture["user"]>>;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server, { shards: 4 });
  await f.startNode("n2");
  await f.ready();
  alice = await f.user("alice");
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

describe("ops (admin)", () => {
  it("shows the cluster; refuses users (403) and strangers (401)", async () => {
    const r = await waitFor(async () => {
      const x = await f.app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
      const v = x.json<{ nodes: Array<{ nodeId: string }>; shards: Array<{ owner: string | null }> }>();
      return v.nodes?.length === 2 && v.shards.every((s) => s.owner !== null) ? v : undefined;
    });
    expect(r.shards).toHaveLength(4);
    expect(r.nodes.map((n) => n.nodeId).sort()).toEqual(["n1", "n2"]);
    expect(errorOf(await f.app.inject({ method: "GET", url: "/v1/ops/cluster", headers: alice.headers })).statusCode).toBe(403);
    expect(errorOf(await f.app.inject({ method: "GET", url: "/v1/ops/cluster" })).statusCode).toBe(401);
  });

  it("shows each node's load from its heartbeat: resident twins, readings/s, and every shard's lag", async () => {
    const dev = await f.device("load-1", "alice");
    const t0 = Date.UTC(2026, 0, 1);
    const readings = Array.from({ length: 50 }, (_, i) => ({ t: t0 + i * 60_000, co2: 500 + i }));
    expect((await f.app.inject({ method: "POST", url: "/v1/devices/load-1/readings", headers: dev.headers, payload: { readings } })).statusCode).toBe(202);
    type Node = { nodeId: string; resident?: number; entities?: number; unitsPerSec?: number };
    const v = await waitFor(
      async () => {
        const x = (await f.app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin })).json<{ nodes: Node[]; shards: Array<{ owner: string | null; lag?: number }> }>();
        const busy = x.nodes.some((n) => (n.unitsPerSec ?? 0) > 0);
        return busy && x.nodes.reduce((sum, n) => sum + (n.resident ?? 0), 0) >= 1 ? x : undefined;
      },
      { timeoutMs: 15_000, message: "a node reporting readings/s and a resident twin" },
    );
    for (const n of v.nodes) expect(n, n.nodeId).toMatchObject({ resident: expect.any(Number), entities: expect.any(Number), unitsPerSec: expect.any(Number) });
    // lag of every owned shard: the coordinator's own freshly read, the other node's from its heartbeat
    for (const s of v.shards.filter((x) => x.owner !== null)) expect(s.lag).toEqual(expect.any(Number));
  });

  it("moves a shard (pinned), and answers bad moves with the runtime's codes", async () => {
    const moved = await f.app.inject({ method: "POST", url: "/v1/ops/shards/1/move", headers: admin, payload: { node: "n2" } });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ shard: 1, to: "n2" });
    await waitFor(async () => {
      const v = (await f.app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin })).json<{ shards: Array<{ shard: number; owner: string; pinned: boolean }> }>();
      return v.shards[1]?.owner === "n2" && v.shards[1]?.pinned;
    });
    const range = await f.app.inject({ method: "POST", url: "/v1/ops/shards/99/move", headers: admin, payload: { node: "n2" } });
    expect(errorOf(range)).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_OPS_SHARD_RANGE" });
    const unknown = await f.app.inject({ method: "POST", url: "/v1/ops/shards/1/move", headers: admin, payload: { node: "n9" } });
    expect(errorOf(unknown)).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_OPS_NODE_UNKNOWN" });
    const noBody = await f.app.inject({ method: "POST", url: "/v1/ops/shards/1/move", headers: admin, payload: {} });
    expect(errorOf(noBody)).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_HTTP_VALIDATION" });
    const notANumber = await f.app.inject({ method: "POST", url: "/v1/ops/shards/one/move", headers: admin, payload: { node: "n2" } });
    expect(errorOf(notANumber).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });

  it("plans a rebalance without writing it (dry run)", async () => {
    const r = await f.app.inject({ method: "POST", url: "/v1/ops/rebalance", headers: admin, payload: { dryRun: true } });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ dryRun: true, moves: expect.any(Array) });
    const empty = await f.app.inject({ method: "POST", url: "/v1/ops/rebalance", headers: admin });
    expect(empty.statusCode, empty.body).toBe(200);
    expect(empty.json()).toMatchObject({ dryRun: false });
  });

  it("drains a node; moving a shard onto a draining node is refused (409)", async () => {
    const drained = await f.app.inject({ method: "POST", url: "/v1/ops/nodes/n2/drain", headers: admin });
    expect(drained.statusCode, drained.body).toBe(200);
    expect(drained.json()).toMatchObject({ nodeId: "n2" });
    const r = await f.app.inject({ method: "POST", url: "/v1/ops/shards/0/move", headers: admin, payload: { node: "n2" } });
    expect(errorOf(r)).toMatchObject({ statusCode: 409, code: "AIRTWIN_ERR_OPS_NODE_DRAINING" });
    expect(errorOf(await f.app.inject({ method: "POST", url: "/v1/ops/nodes/n9/drain", headers: admin })).code).toBe("AIRTWIN_ERR_OPS_NODE_UNKNOWN");
  });

  it("answers 503 with Retry-After when no coordinator answers", async () => {
    const { OpsClient, names } = await import("../../runtime/mod.ts");
    const app = await f.buildApp({ ops: new OpsClient(f.nc, names("nobody-here"), { timeoutMs: 200 }) });
    const r = await app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
    expect(errorOf(r)).toMatchObject({ statusCode: 503, code: "AIRTWIN_ERR_OPS_NO_COORDINATOR" });
    expect(r.headers["retry-after"]).toBe("1");
  });
});

describe("health, metrics, docs", () => {
  it("is live and ready; not ready while NATS is down or JetStream does not answer", async () => {
    expect((await f.app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await f.app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "ready", nats: "connected", jetstream: "ok" });
    const down = await f.buildApp({ health: { connected: () => false, jetstream: async () => false } });
    const r = await down.inject({ method: "GET", url: "/readyz" });
    expect(errorOf(r)).toMatchObject({ statusCode: 503, code: "AIRTWIN_ERR_NATS_UNAVAILABLE", details: { nats: "disconnected" } });
    const noJs = await f.buildApp({ health: { connected: () => true, jetstream: async () => false } });
    expect(errorOf(await noJs.inject({ method: "GET", url: "/readyz" }))).toMatchObject({ statusCode: 503, details: { nats: "connected", jetstream: "unavailable" } });
    expect((await down.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
  });

  it("serves Prometheus metrics with the request histogram by route and status", async () => {
    await f.app.inject({ method: "GET", url: "/healthz" });
    const m = await f.app.inject({ method: "GET", url: "/metrics" });
    expect(m.headers["content-type"]).toMatch(/^text\/plain/);
    expect(m.body).toMatch(/airtwin_gateway_http_request_duration_seconds_bucket\{le="0.005",route="\/healthz",method="GET",status="200"\}/);
    for (const name of ["readings_accepted_total", "readings_rejected_total", "ingest_batch_readings", "publish_ack_seconds", "nats_reconnects_total", "nats_connected"]) {
      expect(m.body).toContain(`airtwin_gateway_${name}`);
    }
  });

  it("serves the OpenAPI document of every route at /docs/json and the UI at /docs", async () => {
    const doc = (await f.app.inject({ method: "GET", url: "/docs/json" })).json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    expect(doc.openapi).toMatch(/^3\./);
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes).toEqual(
      expect.arrayContaining([
        "POST /v1/users",
        "DELETE /v1/users/{id}",
        "POST /v1/devices",
        "GET /v1/devices",
        "DELETE /v1/devices/{id}",
        "PATCH /v1/devices/{id}",
        "POST /v1/devices/{id}/readings",
        "GET /v1/devices/{id}",
        "GET /v1/devices/{id}/aggregates",
        "GET /v1/devices/{id}/events",
        "GET /v1/devices/{id}/alerts",
        "POST /v1/devices/{id}/commands",
        "GET /v1/devices/{id}/live",
        "GET /v1/ops/cluster",
        "POST /v1/ops/shards/{shard}/move",
        "POST /v1/ops/nodes/{node}/drain",
        "POST /v1/ops/rebalance",
        "GET /metrics",
        "GET /healthz",
        "GET /readyz",
      ]),
    );
    const ui = await f.app.inject({ method: "GET", url: "/docs/" });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toMatch(/swagger/i);
  });

  it("answers unknown routes with 404 in the error shape", async () => {
    expect(errorOf(await f.app.inject({ method: "GET", url: "/v2/anything" }))).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_HTTP_NOT_FOUND" });
    expect(errorOf(await f.app.inject({ method: "PUT", url: "/v1/devices/x/readings" })).code).toBe("AIRTWIN_ERR_HTTP_NOT_FOUND");
  });
});

describe("every code reaches HTTP with its status", () => {
  /** An app whose cluster route throws `err`: exercises the one error handler with any error. */
  const throwing = (err: Error) =>
    f.buildApp({
      ops: {
        cluster: () => Promise.reject(err),
        move: () => Promise.reject(err),
        drain: () => Promise.reject(err),
        rebalance: () => Promise.reject(err),
      },
    });

  it("maps every runtime code per the table (internal ones as AIRTWIN_ERR_HTTP_INTERNAL, without their message)", async () => {
    for (const name of Object.keys(RuntimeErrors) as RuntimeErrorName[]) {
      const code = RuntimeErrors[name].code;
      expect(HTTP_STATUS[code], `${code} has a status`).toBeDefined();
      const app = await throwing(new RuntimeError(name, `secret internals of ${name}`));
      const r = await app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
      expect(r.statusCode, code).toBe(HTTP_STATUS[code]);
      const e = errorOf(r);
      if (e.code === "AIRTWIN_ERR_HTTP_INTERNAL") {
        expect(HTTP_STATUS[code]).toBe(500);
        expect(e.message).not.toMatch(/secret/);
      } else {
        expect(e.code).toBe(code);
      }
      if (HTTP_STATUS[code] === 503) expect(r.headers["retry-after"], code).toBeDefined();
    }
  });

  it("maps every domain and gateway code per the table", async () => {
    for (const { code } of Object.values(DomainErrors)) {
      const app = await throwing(new ProblemError(code, "x"));
      const r = await app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
      expect(r.statusCode, code).toBe(HTTP_STATUS[code]);
      expect(errorOf(r).code).toBe(code);
    }
    for (const name of Object.keys(GatewayErrors) as GatewayErrorName[]) {
      const app = await throwing(new GatewayError(name));
      const r = await app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
      expect(r.statusCode, name).toBe(GatewayErrors[name].status);
      expect(errorOf(r)).toMatchObject({ code: GatewayErrors[name].code, message: GatewayErrors[name].message });
    }
  });

  it("answers an unexpected error with a generic 500 and no stack", async () => {
    const app = await throwing(new TypeError("Cannot read properties of undefined (reading 'x') at /work/main/gateways/x.ts:1:2"));
    const r = await app.inject({ method: "GET", url: "/v1/ops/cluster", headers: admin });
    expect(errorOf(r)).toEqual({ statusCode: 500, code: "AIRTWIN_ERR_HTTP_INTERNAL", error: "Internal Server Error", message: "internal error" });
  });
});
