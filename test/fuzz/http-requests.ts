// fast-check arbitraries of hostile HTTP requests to the gateway's routes (test/fuzz/http-routes.ts):
// valid requests, valid ones with one part broken, and noise — in params, query strings, headers,
// credentials, bodies (JSON, MessagePack, raw bytes; wrong types; too large) and, over a socket, in the
// bytes on the wire (sent slowly, cut off, half-closed, a byte flipped, a wrong Content-Length).
// Credentials are symbolic here and resolved by the test, so the arbitraries stay pure.
import fc from "fast-check";
import { encode } from "../../runtime/mod.ts";
import type { FuzzRoute } from "./http-routes.ts";

/** The devices the fuzzer's model follows, all owned by POOL_OWNER. */
export const POOL_DEVICES = ["fz-a", "fz-b"] as const;
export const POOL_OWNER = "fz-owner";
/** A registered device outside the model: requests whose bytes are mangled on the wire go to it. */
export const SCRATCH_DEVICE = "fz-scratch";
/** Event time base of generated readings (a few hours ago, so the twin's windows hold them). */
export const BASE_T = Date.UTC(2026, 0, 15, 8, 0, 0);

export type Cred = "admin" | "owner" | "stranger" | "device" | "otherDevice" | "garbage" | "none" | "basic" | "long";

export interface RequestSpec {
  route: FuzzRoute;
  method: string;
  params: Record<string, string>;
  /** False: the param goes on the wire as generated (spaces, `%`, non-ASCII): sockets only. */
  encodeParams: boolean;
  query: [string, string][];
  cred: Cred;
  credVia: "bearer" | "x-api-key" | "query";
  contentType: string | undefined;
  /** "huge": a JSON body of 600 KiB, past every route's limit (built when sent, so a counterexample stays readable). */
  body: { kind: "json"; value: unknown } | { kind: "msgpack"; value: unknown } | { kind: "raw"; bytes: Uint8Array } | { kind: "huge" } | { kind: "none" };
  headers: [string, string][];
}

export type Transport =
  | { kind: "whole" }
  | { kind: "slow"; pieces: number; gapMs: number }
  | { kind: "truncate"; at: number; then: "wait" | "fin" }
  | { kind: "flip"; at: number; byte: number }
  | { kind: "lengthOff"; delta: number };

const printableChar = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
/** Header-safe text (what `inject` and real clients can send as a header value). */
export const printable = (maxLength = 40) => fc.string({ unit: printableChar, maxLength });
const idChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".split(""));
const validForeignId = fc.string({ unit: idChar, minLength: 1, maxLength: 20 }).map((s) => `zz-${s}`);
const junk = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.constantFrom("", " ", "..", "%", "a/b", "a.b", "a*b", "a>b", "null", "0", "-1", "\u0000", "\u{1F600}"),
  fc.string({ unit: idChar, minLength: 65, maxLength: 150 }),
);

const deviceId = (pool: boolean) => (pool ? fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...POOL_DEVICES) }, { weight: 1, arbitrary: validForeignId }, { weight: 2, arbitrary: junk }) : fc.oneof(validForeignId, junk));

function paramArb(name: string, route: FuzzRoute, sameMethod: boolean): fc.Arbitrary<string> {
  if (name === "id") return deviceId(route.ids === "pool" && sameMethod);
  if (name === "shard") return fc.oneof(fc.integer({ min: -3, max: 70 }).map(String), fc.constantFrom("1e3", "0x10", "99999999999999999999", "1.5"), junk);
  if (name === "node") return fc.oneof(fc.constantFrom("n2", "ghost"), junk).filter((n) => n !== "n1");
  return junk;
}

const timeValue = fc.oneof(
  fc.integer({ min: BASE_T - 86_400_000, max: BASE_T + 86_400_000 }).map(String),
  fc.date({ min: new Date("1969-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom("foo 1", "1,2", "x 2026", "2026-02-30", "2026-03-01T12:00:00", "2026-03-01", "-5", "1e12", "", "NaN", "Infinity", "99999999999999999999"),
  printable(30),
);

function queryValue(name: string): fc.Arbitrary<string> {
  if (name === "from" || name === "to") return timeValue;
  if (name === "limit") return fc.oneof(fc.integer({ min: -5, max: 20_000 }).map(String), printable(10));
  if (name === "consistency") return fc.oneof(fc.constantFrom("live", "snapshot", "", "LIVE"), printable(10));
  if (name === "resolution") return fc.oneof(fc.constantFrom("hour", "day", "week", ""), printable(10));
  if (name === "period") return fc.oneof(fc.constantFrom("day", "week", "month", ""), printable(10));
  if (name === "cursor") return fc.oneof(fc.constantFrom("", "eyJyIjoiYWxlcnRzIn0", "eyJyIjoicmVhZGluZ3MiLCJkIjoiZnotMSIsImEiOiJ4In0"), printable(40));
  return printable(30);
}

function queryArb(route: FuzzRoute): fc.Arbitrary<[string, string][]> {
  const known = route.query ?? [];
  const knownPairs = known.length === 0 ? fc.constant([] as [string, string][]) : fc.array(fc.constantFrom(...known).chain((n) => queryValue(n).map((v) => [n, v] as [string, string])), { maxLength: 4 });
  return fc.tuple(knownPairs, fc.array(fc.tuple(printable(8), printable(12)), { maxLength: 1 })).map(([a, b]) => [...a, ...b]);
}

const channelValue = fc.oneof(fc.double({ min: -50, max: 1200, noNaN: true }), fc.integer({ min: 0, max: 100 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1e308, 1e308));
const reading = fc.record(
  {
    t: fc.integer({ min: BASE_T, max: BASE_T + 3_600_000 }).map((t) => t - (t % 60_000)),
    pm: channelValue,
    co2: channelValue,
    voc: channelValue,
    tmp: channelValue,
    hum: channelValue,
    allpollu: channelValue,
  },
  { requiredKeys: ["t"] },
);
/** Readings mostly in range (so many requests are valid) with a few out of range. */
const plausibleReading = fc.record(
  {
    t: fc.integer({ min: 0, max: 120 }).map((m) => BASE_T + m * 60_000),
    pm: fc.integer({ min: 0, max: 200 }),
    co2: fc.integer({ min: 300, max: 3000 }),
    tmp: fc.integer({ min: 15, max: 30 }),
  },
  { requiredKeys: ["t", "pm"] },
);
const readingsBody = fc.oneof(
  { weight: 6, arbitrary: fc.array(plausibleReading, { maxLength: 12 }).map((readings) => ({ readings })) },
  { weight: 2, arbitrary: fc.array(reading, { maxLength: 6 }).map((readings) => ({ readings })) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 15, max: 30 })), { maxLength: 8 })
      .map((rows) => ({ sensors: ["time", "pm", "tmp"], units: ["s", "ugm3", "C"], datapoints: rows.map(([m, pm, tmp]) => [BASE_T / 1000 + m * 60, pm, tmp]) })),
  },
  { weight: 1, arbitrary: fc.constant({ readings: Array.from({ length: 1001 }, (_, i) => ({ t: BASE_T + i, pm: 1 })) }) },
);

const ruleIds = fc.constantFrom("r1", "r2", "default-pm", "default-co2", "nope");
const command = fc.oneof(
  fc.record({
    type: fc.constant("putRule"),
    rule: fc.record({
      id: ruleIds,
      channel: fc.constantFrom("pm", "co2", "voc", "hum", "bogus"),
      direction: fc.constantFrom("above", "below", "sideways"),
      enter: fc.integer({ min: -10, max: 3000 }),
      exit: fc.integer({ min: -10, max: 3000 }),
      minDurationMs: fc.constantFrom(0, 60_000, -1),
      clearDurationMs: fc.constantFrom(0, 60_000),
    }),
  }),
  fc.record({ type: fc.constant("deleteRule"), ruleId: ruleIds }),
  fc.record({
    type: fc.constant("subscribe"),
    subscription: fc.record({
      id: fc.constantFrom("s1", "s2"),
      provider: fc.constantFrom("webhook", "push", "fax"),
      match: fc.constant({ kinds: ["event.start"] }),
      target: fc.constantFrom("https://example.com/hook", "not a url", "http://127.0.0.1/x", "user-1"),
    }),
  }),
  fc.record({ type: fc.constant("unsubscribe"), subscriptionId: fc.constantFrom("s1", "s2", "s9") }),
  fc.record({ type: fc.constant("recalibrate"), channel: fc.constantFrom("co2", "voc", "pm") }),
);

function validBody(route: FuzzRoute): fc.Arbitrary<unknown> {
  switch (route.body) {
    case "user":
      return fc.record({ userId: fc.oneof(validForeignId, junk) });
    case "device":
      return fc.record({ deviceId: fc.oneof(validForeignId, fc.constantFrom(...POOL_DEVICES), junk), ownerId: fc.oneof(fc.constant(POOL_OWNER), junk) });
    case "patch":
      return fc.record({ disabled: fc.boolean() });
    case "readings":
      return readingsBody;
    case "command":
      return command;
    case "move":
      return fc.record({ node: fc.oneof(fc.constantFrom("n2", "ghost"), junk).filter((n) => n !== "n1") });
    case "rebalance":
      return fc.oneof(fc.constant(null), fc.record({ dryRun: fc.boolean() }, { requiredKeys: [] }));
    default:
      return fc.constant(undefined);
  }
}

/** A valid-shaped body with one value replaced by noise, or a key added, or the whole wrapped. */
function mutated(body: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.tuple(body, fc.jsonValue({ maxDepth: 2 }), fc.nat(), fc.constantFrom("replace", "add", "wrap", "drop")).map(([b, noise, n, how]) => {
    if (typeof b !== "object" || b === null) return noise;
    const copy = JSON.parse(JSON.stringify(b)) as Record<string, unknown>;
    const keys = Object.keys(copy);
    const key = keys[n % Math.max(1, keys.length)];
    if (how === "wrap") return [copy];
    if (how === "add") return { ...copy, [`x${n % 3}`]: noise };
    if (key === undefined) return noise;
    if (how === "drop") delete copy[key];
    else copy[key] = noise;
    return copy;
  });
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/msgpack",
  "application/x-msgpack",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "application/vnd.api+json",
  "",
];

function bodyArb(route: FuzzRoute): fc.Arbitrary<Pick<RequestSpec, "body" | "contentType">> {
  const values = fc.oneof({ weight: 6, arbitrary: validBody(route) }, { weight: 3, arbitrary: mutated(validBody(route)) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) });
  const json = values.map((value) => ({ body: { kind: "json" as const, value }, contentType: "application/json" }));
  const msgpack = values.map((value) => ({ body: { kind: "msgpack" as const, value }, contentType: "application/msgpack" }));
  const raw = fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ body: { kind: "raw" as const, bytes }, contentType: "application/json" }));
  const huge = fc.constant({ body: { kind: "huge" as const }, contentType: "application/json" });
  const none = fc.constant({ body: { kind: "none" as const }, contentType: undefined });
  const encoded = route.body === "none" ? fc.oneof({ weight: 8, arbitrary: none }, { weight: 1, arbitrary: json }, { weight: 1, arbitrary: raw }) : fc.oneof({ weight: 7, arbitrary: json }, { weight: 2, arbitrary: msgpack }, { weight: 1, arbitrary: raw }, { weight: 1, arbitrary: none });
  return fc.tuple(fc.oneof({ weight: 30, arbitrary: encoded }, { weight: 1, arbitrary: huge }), rarely(fc.oneof(fc.constantFrom(...CONTENT_TYPES), printable(30)))).map(([b, ct]) => (ct === null ? b : { ...b, contentType: ct }));
}

const extraHeaders = fc.array(
  fc.oneof(
    fc.tuple(fc.constantFrom("accept", "accept-encoding", "origin", "x-forwarded-for", "idempotency-key", "x-api-key-token", "content-encoding", "expect"), printable(60)),
    fc.tuple(fc.constant("idempotency-key"), fc.uuid()),
    fc.tuple(fc.constant("accept"), fc.constantFrom("text/csv", "application/msgpack", "*/*", "text/event-stream")),
  ),
  { maxLength: 2 },
);

/** null 9 times in 10, else a value of `arb`. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const OTHER_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"];

/** Routes that change the model's twins are picked more often, so the end state says something. */
const ROUTE_WEIGHT: Partial<Record<FuzzRoute["body"], number>> = { readings: 8, command: 4 };

/** A request to one of `routes`. */
export function requestArb(routes: readonly FuzzRoute[]): fc.Arbitrary<RequestSpec> {
  return fc
    .tuple(fc.oneof(...routes.map((r) => ({ weight: ROUTE_WEIGHT[r.body] ?? 1, arbitrary: fc.constant(r) }))), rarely(fc.constantFrom(...OTHER_METHODS)))
    .chain(([route, otherMethod]) => {
      const method = otherMethod ?? route.method;
      const names = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
      const params = fc.tuple(...names.map((n) => paramArb(n, route, method === route.method))).map((vals) => Object.fromEntries(names.map((n, i) => [n, vals[i]!])));
      const usual: Cred = route.auth === "device" ? "device" : route.auth === "owner" ? "owner" : route.auth === "app" ? "owner" : "admin";
      const cred = fc.oneof({ weight: 8, arbitrary: fc.constant(usual) }, { weight: 3, arbitrary: fc.constantFrom<Cred>("admin", "owner", "stranger", "device", "otherDevice", "garbage", "none", "basic", "long") });
      const credVia = fc.oneof({ weight: 8, arbitrary: fc.constant("bearer" as const) }, { weight: 1, arbitrary: fc.constantFrom("x-api-key" as const, "query" as const) });
      return fc.record({
        route: fc.constant(route),
        method: fc.constant(method),
        params,
        encodeParams: fc.constant(true),
        query: queryArb(route),
        cred,
        credVia,
        bodyAndType: bodyArb(route),
        headers: extraHeaders,
      });
    })
    .map(({ bodyAndType, ...r }) => ({ ...r, ...bodyAndType }));
}

export const transportArb: fc.Arbitrary<Transport> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "whole" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("slow" as const), pieces: fc.integer({ min: 2, max: 6 }), gapMs: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0.05, max: 0.95, noNaN: true }), then: fc.constantFrom("wait" as const, "fin" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flip" as const), at: fc.double({ min: 0, max: 0.99, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("lengthOff" as const), delta: fc.constantFrom(-3, -1, 1, 5) }) },
);

/** The body's bytes as sent. */
export function bodyBytes(spec: RequestSpec): Buffer | undefined {
  const b = spec.body;
  if (b.kind === "none") return undefined;
  if (b.kind === "raw") return Buffer.from(b.bytes);
  if (b.kind === "huge") return Buffer.from(JSON.stringify({ pad: "x".repeat(600 * 1024) }));
  if (b.kind === "msgpack") return Buffer.from(encode(b.value));
  return Buffer.from(JSON.stringify(b.value) ?? "null");
}
