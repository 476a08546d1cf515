// What a new user found trying the gateway with hostile requests, each reproduced over a real socket:
// requests that never finish (held open for minutes before), error bodies without our code (431, 400
// "Client Error", 414, bad percent-encoding, CONNECT closed without a word), lenient parsing of times and
// admin bodies, and a client's abort logged as the server's error. Now: coded answers, closed
// connections, strict types, and the client's faults at info level.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { exchangeOn, openSocket, rawExchange } from "../harness/raw-http.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, GatewayFixture, listen } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let app: FastifyInstance;
let url: string;
let deviceToken: string;
let aliceKey: string;
const logs: { level: number; msg: string; code?: string; err?: { code?: string } }[] = [];

const LIMITS = { headersTimeoutMs: 400, requestTimeoutMs: 900, idleTimeoutMs: 3000, maxConnectionsPerClient: 6 };
const ERROR_LEVEL = 50;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line.trim() !== "") logs.push(JSON.parse(line));
      cb();
    },
  });
  app = await f.buildApp({ options: { limits: LIMITS, logger: { level: "info", stream } } });
  url = await listen(app);
  aliceKey = (await f.user("alice")).apiKey;
  deviceToken = (await f.device("hostile-1", "alice")).token;
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

const errorLines = () => logs.filter((l) => l.level >= ERROR_LEVEL);

function expectCoded(a: { status: number | undefined; body: string }, status: number, code: string): void {
  expect(a.status, a.body).toBe(status);
  const body = JSON.parse(a.body) as { statusCode: number; code: string; error: string; message: string };
  expect(body).toMatchObject({ statusCode: status, code });
  expect(typeof body.error).toBe("string");
  expect(typeof body.message).toBe("string");
}

describe("requests that never finish", () => {
  it("a body that never completes (POST /v1/users, Content-Length 100, 18 bytes) gets a coded 408 and a closed connection", async () => {
    const a = await rawExchange(url, [
      `POST /v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin.authorization.slice(7)}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      '{"userId":"abcdef"',
    ]);
    expectCoded(a, 408, "AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT");
    expect(JSON.parse(a.body).message).toMatch(/body did not arrive within 900 ms/);
    expect(a.closed).toBe(true);
    expect(a.elapsedMs).toBeLessThan(5000);
    // nothing of it was applied
    expect((await app.inject({ method: "DELETE", url: "/v1/users/abcdef", headers: admin })).statusCode).toBe(404);
  });

  it("a device token cannot hold an ingest request open either", async () => {
    const a = await rawExchange(url, [
      `POST /v1/devices/hostile-1/readings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${deviceToken}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"readings":[`,
    ]);
    expectCoded(a, 408, "AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT");
    expect(a.closed).toBe(true);
  });

  it("a body trickled a byte at a time still ends at the whole-request timeout", async () => {
    const body = '{"userId":"trickle-user-with-a-long-name"}';
    const a = await rawExchange(
      url,
      [`POST /v1/users HTTP/1.1\r\nHost: x\r\n${authHeader()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, ...body.split("")],
      { gapMs: 100 },
    );
    expectCoded(a, 408, "AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT");
    expect(a.elapsedMs).toBeLessThan(4000);
  });

  it("headers that never complete get a coded 408", async () => {
    const a = await rawExchange(url, ["GET /healthz HTTP/1.1\r\nHost: x\r\n"]);
    expectCoded(a, 408, "AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT");
    expect(JSON.parse(a.body).message).toMatch(/headers did not arrive within 400 ms/);
    expect(a.closed).toBe(true);
  });

  it("an idle keep-alive connection is closed after the idle timeout; a request being answered is not cut", async () => {
    const socket = await openSocket(url);
    const a = await exchangeOn(socket, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], { deadlineMs: 8000 });
    expect(a.status).toBe(200);
    expect(a.closed).toBe(true);
    expect(a.elapsedMs).toBeGreaterThan(LIMITS.idleTimeoutMs - 500);
    expect(a.elapsedMs).toBeLessThan(LIMITS.idleTimeoutMs + 3000);
  });

  it("counts the refusals in airtwin_gateway_http_refused_total and logs none of them as errors", async () => {
    const metrics = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metrics).toMatch(/airtwin_gateway_http_refused_total\{code="AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT"\} [1-9]/);
    expect(errorLines()).toEqual([]);
  });
});

describe("connections per client", () => {
  it("answers requests on connections beyond the bound with a coded 429 and closes them; the others keep working", async () => {
    const held = await Promise.all(Array.from({ length: LIMITS.maxConnectionsPerClient }, () => openSocket(url)));
    const extra = await rawExchange(url, ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]);
    expectCoded(extra, 429, "AIRTWIN_ERR_HTTP_TOO_MANY_CONNECTIONS");
    expect(extra.headers["retry-after"]).toBe("1");
    expect(extra.closed).toBe(true);
    const first = await exchangeOn(held[0]!, ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    expect(first.status).toBe(200);
    for (const s of held) s.destroy();
    // once they are closed the client is welcome again
    await waitFor(async () => (await rawExchange(url, ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])).status === 200);
  });
});

describe("error bodies carry our code", () => {
  it("431 for headers over 16 KiB", async () => {
    const a = await rawExchange(url, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`]);
    expectCoded(a, 431, "AIRTWIN_ERR_HTTP_HEADERS_TOO_LARGE");
  });

  it("400 for bytes that are not HTTP, with the parser's reason", async () => {
    const a = await rawExchange(url, ["GARBAGE\x01\x02 / HTTP/1.1\r\n\r\n"]);
    expectCoded(a, 400, "AIRTWIN_ERR_HTTP_MALFORMED");
    expect(JSON.parse(a.body).details.parser).toMatch(/^HPE_/);
  });

  it("414 for a path parameter over 100 characters", async () => {
    const r = await fetch(`${url}/v1/devices/${"a".repeat(300)}`, { headers: { authorization: `Bearer ${aliceKey}` } });
    expect(r.status).toBe(414);
    expect(await r.json()).toMatchObject({ statusCode: 414, code: "AIRTWIN_ERR_HTTP_URL_TOO_LONG" });
  });

  it("400 for bad percent-encoding", async () => {
    const a = await rawExchange(url, ["GET /v1/devices/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]);
    expectCoded(a, 400, "AIRTWIN_ERR_HTTP_URL_INVALID");
  });

  it("405 for CONNECT instead of a closed connection", async () => {
    const a = await rawExchange(url, ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"]);
    expectCoded(a, 405, "AIRTWIN_ERR_HTTP_METHOD_NOT_ALLOWED");
    expect(a.closed).toBe(true);
  });

  it("413 for a body over the limit, also when the rest of it is still arriving", async () => {
    const body = JSON.stringify({ pad: "x".repeat(600 * 1024) });
    const head = `POST /v1/devices/hostile-1/commands HTTP/1.1\r\nHost: x\r\n${authHeader()}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    // the rest keeps coming after the answer: closing at once would make the kernel reset the connection and drop the 413
    for (let i = 0; i < 10; i++) {
      const a = await rawExchange(url, [head + body.slice(0, 300 * 1024), body.slice(300 * 1024)], { gapMs: 1 });
      expectCoded(a, 413, "AIRTWIN_ERR_HTTP_BODY_TOO_LARGE");
    }
  });

  it("417 for an Expect other than 100-continue, in our shape", async () => {
    const a = await rawExchange(url, ["GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: \r\n\r\n"]);
    expectCoded(a, 417, "AIRTWIN_ERR_HTTP_EXPECTATION_FAILED");
  });

  it("a broken chunked body is a coded 400, not an error in the log", async () => {
    const before = errorLines().length;
    const a = await rawExchange(url, [
      `POST /v1/users HTTP/1.1\r\nHost: x\r\n${authHeader()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"use\r\nZZ\r\n`,
    ]);
    expectCoded(a, 400, "AIRTWIN_ERR_HTTP_MALFORMED");
    await new Promise((r) => setTimeout(r, 200));
    expect(errorLines().slice(before)).toEqual([]);
  });

  it("a client that aborts mid-body is logged at info, not as the server's error", async () => {
    const before = logs.length;
    const socket = await openSocket(url);
    socket.write(`POST /v1/users HTTP/1.1\r\nHost: x\r\n${authHeader()}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":`);
    await new Promise((r) => setTimeout(r, 100));
    socket.resetAndDestroy();
    await waitFor(() => logs.slice(before).some((l) => /client closed the connection/.test(l.msg)));
    expect(errorLines()).toEqual([]);
  });
});

describe("strict parsing", () => {
  it.each(["foo%201", "1,2", "x%202026", "2026-02-30", "2026-03-01T12:00:00", "-5", "1e12"])("from=%s is a coded 400 naming from", async (from) => {
    const r = await app.inject({ method: "GET", url: `/v1/devices/hostile-1/alerts?from=${from}`, headers: admin });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: "AIRTWIN_ERR_HTTP_QUERY_INVALID", details: [{ field: "from" }] });
  });

  it("epoch ms, ISO date-times with a zone and dates are read", async () => {
    for (const from of ["1700000000000", "2026-03-01T12:00:00Z", "2026-03-01T12:00:00.250%2B01:00", "2026-03-01"]) {
      const r = await app.inject({ method: "GET", url: `/v1/devices/hostile-1/alerts?from=${from}`, headers: admin });
      expect(r.statusCode, `${from}: ${r.body}`).toBe(200);
    }
    const r = await app.inject({ method: "GET", url: "/v1/devices/hostile-1/alerts?from=2026-03-01T12:00:00.250%2B01:00", headers: admin });
    expect(r.json().from).toBe(Date.UTC(2026, 2, 1, 11, 0, 0, 250));
  });

  it("a repeated query parameter is refused", async () => {
    const r = await app.inject({ method: "GET", url: "/v1/devices/hostile-1/alerts?from=1&from=2", headers: admin });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });

  it.each([
    ["POST", "/v1/devices", { deviceId: 123, ownerId: "alice" }, "body.deviceId", "strict-1"],
    ["POST", "/v1/devices", { deviceId: "strict-2", ownerId: true }, "body.ownerId", "strict-2"],
    ["POST", "/v1/users", { userId: 42 }, "body.userId", undefined],
  ] as const)("%s %s %j: 400 naming %s, nothing created", async (method, path, payload, field, deviceId) => {
    const r = await app.inject({ method, url: path, headers: admin, payload });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: "AIRTWIN_ERR_HTTP_VALIDATION", details: [{ field }] });
    if (deviceId !== undefined) expect((await app.inject({ method: "GET", url: "/v1/devices", headers: admin })).json().devices.map((d: { deviceId: string }) => d.deviceId)).not.toContain("123");
  });

  it.each([["true"], [1], [null], ["false"], [0]])("PATCH disabled=%j is a 400 naming body.disabled; the device is unchanged", async (disabled) => {
    const r = await app.inject({ method: "PATCH", url: "/v1/devices/hostile-1", headers: admin, payload: { disabled } });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: "AIRTWIN_ERR_HTTP_VALIDATION", details: [{ field: "body.disabled" }] });
    const list = (await app.inject({ method: "GET", url: "/v1/devices", headers: admin })).json<{ devices: { deviceId: string; disabled: boolean }[] }>();
    expect(list.devices.find((d) => d.deviceId === "hostile-1")?.disabled).toBe(false);
  });

  it("query strings are still read as their types (limit=5)", async () => {
    const r = await app.inject({ method: "GET", url: "/v1/devices/hostile-1/alerts?limit=5", headers: admin });
    expect(r.statusCode).toBe(200);
    const bad = await app.inject({ method: "GET", url: "/v1/devices/hostile-1/alerts?limit=five", headers: admin });
    expect(bad.json()).toMatchObject({ code: "AIRTWIN_ERR_HTTP_VALIDATION", details: [{ field: "querystring.limit" }] });
  });
});

function authHeader(): string {
  return `Authorization: ${admin.authorization}\r\n`;
}
