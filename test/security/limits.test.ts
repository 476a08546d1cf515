// The body, batch and rate limits under load, over real sockets against a real nats-server, node and
// gateway: hundreds of requests at once — a device far over its rate, bodies over the byte limit on
// ingest and on an admin route, batches over 1000 readings, and ordinary devices within their limits —
// each answered with its coded 413 or 429 or a 202; never a 5xx; the rate-limited device gets exactly
// its budget accepted; and every twin holds exactly the readings of its 202s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, GatewayFixture, listen } from "../gateway/fixture.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const RATE = 20;
const CONCURRENCY = 48;

let server: TestNatsServer;
let f: GatewayFixture;
let url: string;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  await f.user("load");
  for (const id of ["lim-rate", "lim-big", "lim-batch", ...Array.from({ length: 8 }, (_, i) => `lim-ok-${i}`)]) tokens[id] = (await f.device(id, "load")).token;
  // a minute's window: it cannot roll over during the test, so the budget is exact
  url = await listen(await f.buildApp({ options: { rateLimitMax: RATE, rateLimitWindowMs: 60_000 } }));
}, 60_000);

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

interface Shot {
  device: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** What it must get: a status and, for refusals, a code. */
  expect: "accepted" | "rate" | "too-large" | "too-many";
}

describe("limits under load", () => {
  it("every request gets its 202, 413 or 429 at once; the budget and the twins are exact", { timeout: 120_000 }, async () => {
    const shots: Shot[] = [];
    const readingsBody = (t: number, n = 1) => JSON.stringify({ readings: Array.from({ length: n }, (_, i) => ({ t: t + i, pm: 5 })) });
    const as = (id: string) => ({ authorization: `Bearer ${tokens[id]}`, "content-type": "application/json" });
    for (let i = 0; i < 10 * RATE; i++) shots.push({ device: "lim-rate", path: "/v1/devices/lim-rate/readings", headers: as("lim-rate"), body: readingsBody(T0 + i * 1000), expect: "rate" });
    for (let d = 0; d < 8; d++) {
      for (let i = 0; i < RATE / 2; i++) shots.push({ device: `lim-ok-${d}`, path: `/v1/devices/lim-ok-${d}/readings`, headers: as(`lim-ok-${d}`), body: readingsBody(T0 + i * 1000), expect: "accepted" });
    }
    const big = JSON.stringify({ readings: [{ t: T0, pm: 1 }], pad: "x".repeat(600 * 1024) });
    for (let i = 0; i < RATE / 2; i++) shots.push({ device: "lim-big", path: "/v1/devices/lim-big/readings", headers: as("lim-big"), body: big, expect: "too-large" });
    for (let i = 0; i < RATE / 2; i++) shots.push({ device: "lim-batch", path: "/v1/devices/lim-batch/readings", headers: as("lim-batch"), body: readingsBody(T0 + i * 10_000, 1001), expect: "too-many" });
    const bigAdmin = JSON.stringify({ userId: "u", pad: "x".repeat(100 * 1024) });
    for (let i = 0; i < 10; i++) shots.push({ device: "", path: "/v1/users", headers: { ...admin, "content-type": "application/json" }, body: bigAdmin, expect: "too-large" });
    // interleaved, so every kind is in flight together
    const queue = shots.map((s, i) => ({ s, key: (i * 7919) % shots.length })).sort((x, y) => x.key - y.key).map((x) => x.s);

    const answers: Array<{ shot: Shot; status: number; code?: string; retryAfter: string | null }> = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < queue.length) {
          const shot = queue[next++]!;
          const r = await fetch(`${url}${shot.path}`, { method: "POST", headers: shot.headers, body: shot.body });
          const text = await r.text();
          answers.push({ shot, status: r.status, ...(r.status >= 400 ? { code: (JSON.parse(text) as { code: string }).code } : {}), retryAfter: r.headers.get("retry-after") });
        }
      }),
    );

    expect(answers).toHaveLength(shots.length);
    expect(answers.filter((a) => a.status >= 500)).toEqual([]);
    for (const a of answers) {
      if (a.shot.expect === "accepted") expect(a.status, a.shot.device).toBe(202);
      if (a.shot.expect === "too-large") expect([a.status, a.code]).toEqual([413, "AIRTWIN_ERR_HTTP_BODY_TOO_LARGE"]);
      if (a.shot.expect === "too-many") expect([a.status, a.code]).toEqual([413, "AIRTWIN_ERR_READINGS_TOO_MANY"]);
      if (a.shot.expect === "rate") {
        expect([202, 429]).toContain(a.status);
        if (a.status === 429) {
          expect(a.code).toBe("AIRTWIN_ERR_INGEST_RATE_LIMITED");
          expect(Number(a.retryAfter)).toBeGreaterThan(0);
        }
      }
    }
    const rateAccepted = answers.filter((a) => a.shot.device === "lim-rate" && a.status === 202).length;
    expect(rateAccepted).toBe(RATE);

    // every twin holds exactly what was accepted — in order or late, as the requests raced — and the
    // refused requests left nothing behind
    const expected: Record<string, number> = { "lim-rate": RATE, "lim-big": 0, "lim-batch": 0 };
    for (let d = 0; d < 8; d++) expected[`lim-ok-${d}`] = RATE / 2;
    await waitFor(
      async () => {
        for (const [id, n] of Object.entries(expected)) {
          const r = await f.app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: admin });
          const v = r.json<TwinView>();
          if (v.readings + v.late + v.duplicates !== n) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, message: "every twin holds exactly its accepted readings" },
    );
    // and the gateway still serves
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });
});
