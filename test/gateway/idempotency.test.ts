// The Idempotency-Key header of commands, against a real nats-server and node: a retry under the same
// key (after a lost answer, or just resent) gets the first result with `Idempotent-Replayed: true` and
// the twin shows one application; a bad key is 400 AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID with nothing
// applied; a key reused for a different command is 422 AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED with nothing
// applied; the NATS service `<prefix>.api.cmd.<deviceId>` takes the same header.
import { headers as natsHeaders } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { IDEMPOTENT_REPLAYED_HEADER } from "../../gateways/api/idempotency-key.ts";
import { STATUS_HEADER } from "../../gateways/api/nats-service.ts";
import { decode, encode, RuntimeError } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { errorOf, GatewayFixture } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let alice: Awaited<ReturnType<GatewayFixture["user"]>>;

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

const rule = (id: string, enter: number) => ({ id, channel: "co2", direction: "above", enter, exit: enter - 500, minDurationMs: 0, clearDurationMs: 0 });

function command(id: string, body: unknown, key?: string | string[], app = f.app) {
  const headers: Record<string, string | string[]> = { ...alice.headers, ...(key === undefined ? {} : { "idempotency-key": key }) };
  return app.inject({ method: "POST", url: `/v1/devices/${id}/commands`, headers, payload: body as Record<string, unknown> });
}

async function twin(id: string): Promise<TwinView> {
  return (await f.app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: alice.headers })).json<TwinView>();
}

describe("Idempotency-Key over HTTP", () => {
  it("a retry with the same key returns the first result and does not apply again: a later change stays", async () => {
    await f.device("idem-1", "alice");
    const first = await command("idem-1", { type: "putRule", rule: rule("r1", 2000) }, "put-r1-2000");
    expect(first.statusCode, first.body).toBe(200);
    expect(first.headers[IDEMPOTENT_REPLAYED_HEADER.toLowerCase()]).toBeUndefined();
    // the user changes the rule afterwards; a late retry of the first request must not undo it
    expect((await command("idem-1", { type: "putRule", rule: rule("r1", 3000) }, "put-r1-3000")).statusCode).toBe(200);
    const retry = await command("idem-1", { type: "putRule", rule: rule("r1", 2000) }, "put-r1-2000");
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers[IDEMPOTENT_REPLAYED_HEADER.toLowerCase()]).toBe("true");
    expect((await twin("idem-1")).rules.find((r) => r.id === "r1")?.enter).toBe(3000);

    // deleting twice under one key: one application, and the retry gets its 200 (without a key: 404)
    expect((await command("idem-1", { type: "deleteRule", ruleId: "r1" }, "del-r1")).statusCode).toBe(200);
    const again = await command("idem-1", { type: "deleteRule", ruleId: "r1" }, "del-r1");
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ type: "deleteRule", ruleId: "r1" });
    expect(errorOf(await command("idem-1", { type: "deleteRule", ruleId: "r1" })).code).toBe("AIRTWIN_ERR_RULE_NOT_FOUND");
    // a refusal is remembered like a result
    expect(errorOf(await command("idem-1", { type: "deleteRule", ruleId: "r1" }, "del-r1-late")).code).toBe("AIRTWIN_ERR_RULE_NOT_FOUND");
    expect(errorOf(await command("idem-1", { type: "deleteRule", ruleId: "r1" }, "del-r1-late")).code).toBe("AIRTWIN_ERR_RULE_NOT_FOUND");
  });

  it("a caller that got 504 retries with the same key and gets the result of the one application", async () => {
    await f.device("idem-2", "alice");
    const client = f.parts.client;
    // the first attempt is applied, but its answer is lost (the twin's reply came after the deadline)
    const lossy = await f.buildApp({
      twins: f.twinApi({
        backend: {
          send: (...a) => client.send(...a),
          get: (...a) => client.get(...a),
          getSnapshot: (...a) => client.getSnapshot(...a),
          command: async (...a) => {
            await client.command(...a);
            throw new RuntimeError("REQUEST_TIMEOUT", "no result in time (the command is logged and will still be applied)");
          },
        },
      }),
    });
    const sub = { id: "hook", provider: "webhook", match: { kinds: ["event.start"] }, target: "https://example.com/hook" };
    expect(errorOf(await command("idem-2", { type: "subscribe", subscription: sub }, "sub-hook-1", lossy)).statusCode).toBe(504);
    const retry = await command("idem-2", { type: "subscribe", subscription: sub }, "sub-hook-1");
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json()).toEqual({ type: "subscribe", subscription: sub });
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect((await twin("idem-2")).subscriptions).toHaveLength(1);
  });

  it("refuses a bad key with 400 AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID naming the header, and applies nothing", async () => {
    await f.device("idem-3", "alice");
    for (const bad of ["", "x".repeat(129), ["k1", "k2"]]) {
      const e = errorOf(await command("idem-3", { type: "putRule", rule: rule("bad", 2000) }, bad));
      expect(e, JSON.stringify(bad)).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID" });
      expect(e.details).toEqual([expect.objectContaining({ field: "headers.idempotency-key" })]);
    }
    expect((await twin("idem-3")).rules.find((r) => r.id === "bad")).toBeUndefined();
    // credentials are checked first
    const anonymous = await f.app.inject({ method: "POST", url: "/v1/devices/idem-3/commands", headers: { "idempotency-key": "" }, payload: { type: "reset" } });
    expect(errorOf(anonymous).code).toBe("AIRTWIN_ERR_AUTH_UNAUTHORIZED");
  });

  it("refuses a key reused for a different command with 422 AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED and applies nothing", async () => {
    await f.device("idem-4", "alice");
    const first = await command("idem-4", { type: "putRule", rule: rule("r1", 2000) }, "put-r1");
    expect(first.statusCode, first.body).toBe(200);
    const other = await command("idem-4", { type: "putRule", rule: rule("r1", 2500) }, "put-r1");
    expect(other.statusCode).toBe(422);
    expect(errorOf(other)).toEqual({
      statusCode: 422,
      code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED",
      error: "Unprocessable Entity",
      message: "this idempotency key was used for a different command",
    });
    expect(other.headers["idempotent-replayed"]).toBeUndefined();
    expect(errorOf(await command("idem-4", { type: "reset" }, "put-r1")).statusCode).toBe(422);
    expect((await twin("idem-4")).rules.find((r) => r.id === "r1")?.enter).toBe(2000);
    // the same body with its keys in another order is the same command
    const { enter, id, ...rest } = rule("r1", 2000);
    const reordered = await command("idem-4", { rule: { ...rest, enter, id }, type: "putRule" }, "put-r1");
    expect(reordered.statusCode).toBe(200);
    expect(reordered.json()).toEqual(first.json());
    expect(reordered.headers["idempotent-replayed"]).toBe("true");
  });

  it("documents the header and the replay header in the OpenAPI of the route", async () => {
    const doc = (await f.app.inject({ method: "GET", url: "/docs/json" })).json<{
      paths: Record<string, { post: { parameters: Array<{ in: string; name: string; schema: { maxLength?: number } }>; responses: Record<string, { headers?: Record<string, unknown> }> } }>;
    }>();
    const op = doc.paths["/v1/devices/{id}/commands"]!.post;
    expect(op.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ in: "header", name: "idempotency-key", schema: expect.objectContaining({ maxLength: 128 }) })]));
    expect(op.responses["200"]?.headers).toHaveProperty("idempotent-replayed");
    expect((doc.paths["/v1/devices/{id}/commands"] as unknown as { post: { description: string } }).post.description).toContain("422 AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED");
  });
});

describe("Idempotency-Key over NATS", () => {
  it("<prefix>.api.cmd.<deviceId> takes the header and answers a retry with the first result", async () => {
    f.parts.serve();
    await f.device("idem-nats", "alice");
    const nc = await f.connect();
    const ask = async (body: unknown, key?: string) => {
      const h = natsHeaders();
      if (key !== undefined) h.set("Idempotency-Key", key);
      const m = await nc.request(`${f.prefix}.api.cmd.idem-nats`, encode(body), { timeout: 10_000, headers: h });
      return { status: Number(m.headers?.get(STATUS_HEADER)), replayed: m.headers?.get(IDEMPOTENT_REPLAYED_HEADER) ?? "", body: decode<Record<string, unknown>>(m.data) };
    };
    const first = await ask({ type: "putRule", rule: rule("n1", 2000) }, "nats-put-1");
    expect(first).toMatchObject({ status: 200, replayed: "", body: { type: "putRule" } });
    await ask({ type: "putRule", rule: rule("n1", 3000) });
    const retry = await ask({ type: "putRule", rule: rule("n1", 2000) }, "nats-put-1");
    expect(retry).toEqual({ ...first, replayed: "true" });
    expect((await twin("idem-nats")).rules.find((r) => r.id === "n1")?.enter).toBe(3000);
    // the same key over HTTP is the same key: the device's, whichever door it came through
    const http = await command("idem-nats", { type: "putRule", rule: rule("n1", 2000) }, "nats-put-1");
    expect(http.headers["idempotent-replayed"]).toBe("true");
    expect(await ask({ type: "reset" }, "x".repeat(129))).toMatchObject({ status: 400, body: { code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID" } });
    // a key reused for a different command: the error body of the NATS services, status 422, nothing applied
    expect(await ask({ type: "putRule", rule: rule("n1", 2500) }, "nats-put-1")).toEqual({
      status: 422,
      replayed: "",
      body: { statusCode: 422, code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED", error: "Unprocessable Entity", message: "this idempotency key was used for a different command" },
    });
    expect((await twin("idem-nats")).rules.find((r) => r.id === "n1")?.enter).toBe(3000);
  });
});
