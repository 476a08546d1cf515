// Fuzzing every HTTP route (test/fuzz/http-routes.ts) with fast-check against a real gateway, NATS and
// node: every answer is a success or a 4xx in the error shape with an AIRTWIN_ERR_ code — never a 5xx,
// never a hang, never a crash — and at the end the twins hold exactly what the accepted requests imply
// (readings, duplicates, late, per-channel counts, rules, subscriptions), nothing of the refused ones.
// Every answer of a documented route matches the schema the published OpenAPI gives for it, and its
// body is what the handler returned (serialisation lost nothing): test/gateway/openapi-check.ts.
// Two properties: requests through `app.inject` (many, fast), and requests over real sockets whose
// bytes may be sent slowly, cut off, half-closed, flipped or mis-sized.
//
// `npm test` runs a short seeded version; `npm run test:fuzz` a long one. AIRTWIN_FUZZ_RUNS (inject
// cases; sockets get a twentieth), AIRTWIN_FUZZ_SEED (a failure prints its seed and path: rerun with it).
import { Writable } from "node:stream";
import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseReadingsBody, type Reading, type TwinView } from "../../actors/device-twin/domain/mod.ts";
import { decode } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { rawExchange } from "../harness/raw-http.ts";
import { waitFor } from "../harness/wait-for.ts";
import { ADMIN_TOKEN, admin, GatewayFixture, listen } from "../gateway/fixture.ts";
import { PublishedSchemas, watchAnswers, type AnswerWatch } from "../gateway/openapi-check.ts";
import { bodyBytes, POOL_DEVICES, POOL_OWNER, requestArb, SCRATCH_DEVICE, transportArb, type RequestSpec, type Transport } from "./http-requests.ts";
import { HTTP_ROUTES } from "./http-routes.ts";
import { startArchive, type RunningArchive } from "../../gateways/archive/archive.ts";
import { openDatabase, type Database } from "../../gateways/archive/db/mod.ts";

const LONG = process.env.AIRTWIN_FUZZ_PROFILE === "long";
const INJECT_RUNS = Number(process.env.AIRTWIN_FUZZ_RUNS ?? (LONG ? 10_000 : 250));
const SOCKET_RUNS = Math.max(30, Math.floor(INJECT_RUNS / 20));
const SEED = Number(process.env.AIRTWIN_FUZZ_SEED ?? (LONG ? Math.floor(Math.random() * 2 ** 31) : 20_261_203));
const LIMITS = { headersTimeoutMs: 300, requestTimeoutMs: 600, idleTimeoutMs: 2000, maxConnectionsPerClient: 256 };
/** Longest an exchange may take before it counts as a hang: the request timeout, its check interval, and slack for a busy machine. */
const HANG_MS = LIMITS.requestTimeoutMs + 4000;

interface ModelTwin {
  lastT: number | undefined;
  readings: number;
  duplicates: number;
  late: number;
  channels: Record<string, number>;
  rules: Set<string>;
  subscriptions: Set<string>;
}

let server: TestNatsServer;
let f: GatewayFixture;
let archive: RunningArchive | undefined;
let archiveDb: Database | undefined;
let app: FastifyInstance;
let url: string;
let watch: AnswerWatch;
let published: PublishedSchemas;
const tokens: Record<string, string> = {};
let ownerKey = "";
let strangerKey = "";
const model = new Map<string, ModelTwin>();
const errorLogs: unknown[] = [];
const statuses = new Map<number, number>();

beforeAll(async () => {
  console.log(`http fuzz: seed ${SEED}, ${INJECT_RUNS} inject cases, ${SOCKET_RUNS} socket cases (AIRTWIN_FUZZ_SEED=${SEED} reproduces)`);
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  // a real archive (embedded, in memory) answers the history routes that only it can
  archiveDb = await openDatabase({ inMemory: true });
  archive = await startArchive({ nc: f.nc, db: archiveDb, prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, defaultMetrics: false });
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) {
        if (line.trim() === "") continue;
        const entry = JSON.parse(line) as { level: number };
        if (entry.level >= 50) errorLogs.push(entry);
      }
      cb();
    },
  });
  app = await f.buildApp({ options: { limits: LIMITS, rateLimitMax: 1_000_000_000, logger: { level: "warn", stream } } });
  watch = watchAnswers(app);
  url = await listen(app);
  published = PublishedSchemas.of(app);
  await f.ready();
  ownerKey = (await f.user(POOL_OWNER)).apiKey;
  strangerKey = (await f.user("fz-stranger")).apiKey;
  for (const id of [...POOL_DEVICES, SCRATCH_DEVICE]) tokens[id] = (await f.device(id, POOL_OWNER)).token;
  for (const id of POOL_DEVICES) {
    const view = (await app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: admin })).json<TwinView>();
    model.set(id, { lastT: undefined, readings: 0, duplicates: 0, late: 0, channels: {}, rules: new Set(view.rules.map((r) => r.id)), subscriptions: new Set() });
  }
}, 60_000);

afterAll(async () => {
  console.log(`http fuzz: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  await archive?.close();
  await f?.[Symbol.asyncDispose]();
  await archiveDb?.close();
  await server?.stop();
});

/** The credential header/query of a request. */
function credentials(spec: RequestSpec): { headers: Record<string, string>; query: [string, string][] } {
  const id = spec.params.id ?? "";
  const target = tokens[id] !== undefined ? id : POOL_DEVICES[0];
  const value: string | undefined = {
    admin: ADMIN_TOKEN,
    owner: ownerKey,
    stranger: strangerKey,
    device: tokens[target]!,
    otherDevice: tokens[target === POOL_DEVICES[0] ? POOL_DEVICES[1] : POOL_DEVICES[0]]!,
    garbage: "garbage-token",
    none: undefined,
    basic: undefined,
    long: "x".repeat(5000),
  }[spec.cred];
  if (spec.cred === "basic") return { headers: { authorization: "Basic dXNlcjpwYXNz" }, query: [] };
  if (value === undefined) return { headers: {}, query: [] };
  if (spec.credVia === "x-api-key") return { headers: { "x-api-key-token": value }, query: [] };
  if (spec.credVia === "query") return { headers: {}, query: [["token", value]] };
  return { headers: { authorization: `Bearer ${value}` }, query: [] };
}

function target(spec: RequestSpec): string {
  const path = spec.route.url.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(spec.params[name] ?? ""));
  const query = [...spec.query, ...credentials(spec).query];
  return query.length === 0 ? path : `${path}?${query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`;
}

function headersOf(spec: RequestSpec, body: Buffer | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of spec.headers) h[k] = v;
  Object.assign(h, credentials(spec).headers);
  if (body !== undefined && spec.contentType !== undefined) h["content-type"] = spec.contentType;
  return h;
}

/** Checks one answer: a success or a coded 4xx, never a 5xx; as the OpenAPI documents it, with nothing lost in serialisation. */
function checkAnswer(spec: RequestSpec, status: number, body: string, contentType: string | undefined): void {
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const where = `${spec.method} ${target(spec).slice(0, 200)} → ${status} ${body.slice(0, 300)}`;
  expect(status, where).toBeLessThan(500);
  if (spec.method === spec.route.method && spec.route.openapi !== false) {
    expect(published.check({ method: spec.method, url: spec.route.url, status, contentType, body }), where).toEqual([]);
  }
  expect(watch.losses, where).toEqual([]);
  if (status >= 400 && spec.method !== "HEAD") {
    const e = JSON.parse(body) as { statusCode: number; code: string; message: string };
    expect(e.statusCode, where).toBe(status);
    expect(e.code, where).toMatch(/^AIRTWIN_ERR_[A-Z_]+$/);
    expect(typeof e.message, where).toBe("string");
  }
}

/** What an accepted request changes in the model: the readings of a 202, the rule or subscription of a 200 command. */
function follow(spec: RequestSpec, status: number, body: string): void {
  const twin = model.get(spec.params.id ?? "");
  if (twin === undefined || spec.method !== spec.route.method) return;
  if (spec.route.body === "readings" && status === 202) {
    const sent = spec.body.kind === "json" ? spec.body.value : spec.body.kind === "msgpack" ? spec.body.value : spec.body.kind === "raw" ? tryParse(spec) : undefined;
    const parsed = parseReadingsBody(sent, { maxReadings: 1000 });
    if (!parsed.ok) throw new Error(`202 for a body the domain refuses: ${body}`);
    expect(JSON.parse(body)).toEqual({ accepted: parsed.value.length });
    for (const r of [...parsed.value].sort((a, b) => a.t - b.t)) apply(twin, r);
  }
  if (spec.route.body === "command" && status === 200) {
    const result = JSON.parse(body) as { type: string; rule?: { id: string }; ruleId?: string; subscription?: { id: string }; subscriptionId?: string };
    if (result.type === "putRule") twin.rules.add(result.rule!.id);
    if (result.type === "deleteRule") twin.rules.delete(result.ruleId!);
    if (result.type === "subscribe") twin.subscriptions.add(result.subscription!.id);
    if (result.type === "unsubscribe") twin.subscriptions.delete(result.subscriptionId!);
  }
}

function tryParse(spec: RequestSpec): unknown {
  const bytes = bodyBytes(spec)!;
  try {
    return spec.contentType?.includes("msgpack") === true ? decode(bytes) : JSON.parse(bytes.toString());
  } catch {
    return undefined;
  }
}

function apply(twin: ModelTwin, r: Reading): void {
  if (twin.lastT !== undefined && r.t === twin.lastT) twin.duplicates++;
  else if (twin.lastT !== undefined && r.t < twin.lastT) twin.late++;
  else {
    twin.lastT = r.t;
    twin.readings++;
    for (const ch of ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const) if (r[ch] !== undefined) twin.channels[ch] = (twin.channels[ch] ?? 0) + 1;
  }
}

/** The raw bytes of a request, with a body framed by Content-Length, the connection closed after the answer. */
function wire(spec: RequestSpec): Buffer {
  const body = bodyBytes(spec);
  const headers = { ...headersOf(spec, body), connection: "close", ...(body === undefined ? {} : { "content-length": String(body.length) }) };
  const head = `${spec.method} ${target(spec)} HTTP/1.1\r\nhost: fuzz\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body ?? Buffer.alloc(0)]);
}

/** `bytes` as the transport mangles them: chunks to send and whether to half-close after. */
function mangle(bytes: Buffer, t: Transport): { chunks: Buffer[]; end: boolean; gapMs: number; complete: boolean } {
  switch (t.kind) {
    case "whole":
      return { chunks: [bytes], end: false, gapMs: 0, complete: true };
    case "slow": {
      const size = Math.ceil(bytes.length / t.pieces);
      const chunks = Array.from({ length: t.pieces }, (_, i) => bytes.subarray(i * size, (i + 1) * size)).filter((c) => c.length > 0);
      return { chunks, end: false, gapMs: t.gapMs, complete: true };
    }
    case "truncate":
      return { chunks: [bytes.subarray(0, Math.max(1, Math.floor(bytes.length * t.at)))], end: t.then === "fin", gapMs: 0, complete: false };
    case "flip": {
      const copy = Buffer.from(bytes);
      copy[Math.floor(copy.length * t.at)] = t.byte;
      return { chunks: [copy], end: false, gapMs: 0, complete: false };
    }
    case "lengthOff": {
      const text = bytes.toString("latin1");
      const changed = text.replace(/content-length: (\d+)/, (_m, n: string) => `content-length: ${Math.max(0, Number(n) + t.delta)}`);
      return { chunks: [Buffer.from(changed, "latin1")], end: changed !== text && t.delta > 0, gapMs: 0, complete: changed === text };
    }
  }
}

const injectRoutes = HTTP_ROUTES.filter((r) => r.stream !== true);

describe("HTTP fuzz", () => {
  it(
    "through inject: every answer a success or a coded 4xx",
    async () => {
      await fc.assert(
        fc.asyncProperty(requestArb(injectRoutes), async (spec) => {
          const body = bodyBytes(spec);
          const r = await app.inject({ method: spec.method as "GET", url: target(spec), headers: headersOf(spec, body), ...(body === undefined ? {} : { payload: body }) });
          checkAnswer(spec, r.statusCode, r.body, r.headers["content-type"] as string | undefined);
          follow(spec, r.statusCode, r.body);
        }),
        { seed: SEED, numRuns: INJECT_RUNS },
      );
    },
    Math.max(180_000, INJECT_RUNS * 100),
  );

  it(
    "over sockets (slow, cut off, half-closed, mangled): an answer or a close, never a 5xx or a hang",
    async () => {
      await fc.assert(
        fc.asyncProperty(requestArb(HTTP_ROUTES), transportArb, async (generated, transport) => {
          // bytes mangled on the wire go to a device outside the model: what the server read of them is unknown
          const mangles = transport.kind !== "whole" && transport.kind !== "slow";
          const spec: RequestSpec = mangles && generated.params.id !== undefined && model.has(generated.params.id) ? { ...generated, params: { ...generated.params, id: SCRATCH_DEVICE } } : generated;
          const sent = mangle(wire(spec), transport);
          const stream = spec.route.stream === true;
          const a = await rawExchange(url, sent.chunks, {
            gapMs: sent.gapMs,
            end: sent.end,
            deadlineMs: HANG_MS + sent.gapMs * sent.chunks.length,
            // an accepted stream never ends: its head is the answer
            ...(stream ? { stopWhen: (raw: string) => raw.includes("\r\n\r\n") && (!raw.startsWith("HTTP/1.1 4") || raw.includes("}")) } : {}),
          });
          const where = `${transport.kind} ${spec.method} ${target(spec).slice(0, 120)}: ${a.raw.slice(0, 300)}`;
          if (a.status === undefined) {
            // no answer: only when the request never completed, and then the server must have closed
            expect(sent.complete, `no answer to a complete request: ${where}`).toBe(false);
            expect(a.closed, `hang: ${where}`).toBe(true);
            return;
          }
          if (stream && a.status === 200) {
            expect(a.headers["content-type"], where).toMatch(/^text\/event-stream/);
            return;
          }
          checkAnswer(spec, a.status, a.body, a.headers["content-type"]);
          if (!mangles) follow(spec, a.status, a.body);
        }),
        { seed: SEED + 1, numRuns: SOCKET_RUNS },
      );
    },
    Math.max(240_000, SOCKET_RUNS * 3000),
  );

  it("leaves the gateway serving, no error logged, and the twins equal to what the accepted requests imply", async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    for (const [id, m] of model) {
      const expected = m.readings + m.duplicates + m.late;
      const view = await waitFor(
        async () => {
          const v = (await app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: admin })).json<TwinView>();
          return v.readings + v.duplicates + v.late === expected ? v : undefined;
        },
        { timeoutMs: 20_000, message: `${id} applied ${expected} readings` },
      );
      expect({ readings: view.readings, duplicates: view.duplicates, late: view.late }, id).toEqual({ readings: m.readings, duplicates: m.duplicates, late: m.late });
      const channels = Object.fromEntries(Object.entries(view.channels).map(([ch, s]) => [ch, (s as { count: number }).count]));
      expect(channels, id).toEqual(m.channels);
      expect(new Set(view.rules.map((r) => r.id)), id).toEqual(m.rules);
      expect(new Set(view.subscriptions.map((s) => s.id)), id).toEqual(m.subscriptions);
    }
    expect(errorLogs).toEqual([]);
  }, 60_000);
});
