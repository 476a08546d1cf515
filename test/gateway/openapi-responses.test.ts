// Real answers against the published OpenAPI: a gateway on real NATS, two nodes and the archive (both
// backends) is driven to a success on every route — nine days of readings with events, reports, learned
// occupancy and forecasts, every command, every ops verb — and each answer's body is validated with Ajv
// against the schema `/docs/json` documents for it. Because fastify writes answers with
// fast-json-stringify, which drops whatever a response schema does not list, each body is also compared
// with what its handler returned: no field may be lost or changed on the way out.
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { archiveOn, BACKENDS, caughtUp, post, testDatabase } from "../archive/fixture.ts";
import { HTTP_ROUTES } from "../fuzz/http-routes.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, GatewayFixture } from "./fixture.ts";
import { PublishedSchemas, watchAnswers, type Answer } from "./openapi-check.ts";

let server: TestNatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

const MIN = 60_000;
const H = 60 * MIN;
const DAY = 24 * H;
const T0 = Date.UTC(2026, 9, 5); // a Monday: eight days and a half close eight daily reports and one weekly
/** The last reading: cooking on day 8, so an event is active at the end. */
const END = T0 + 8 * DAY + 18 * H + 40 * MIN;
const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;

/** Every 10 minutes: a quiet room, busy evenings (co2 rising over its rule: a forecast, then an event), cooking at 18:00 (pm over its rule), a voc spike on day 8 (an anomaly). */
function readings(): Array<Record<string, number>> {
  const out: Array<Record<string, number>> = [];
  for (let t = T0; t < END; t += 10 * MIN) {
    const hour = Math.floor((t % DAY) / H);
    const evening = hour >= 17 && hour < 23;
    const cooking = hour === 18;
    const spike = t >= T0 + 8 * DAY + 3 * H && t < T0 + 8 * DAY + 3 * H + 20 * MIN;
    out.push({
      t,
      // rising 6 ppm a minute from 17:00: the forecast sees the rule's enter coming
      co2: evening ? Math.min(1600, 800 + ((t % DAY) - 17 * H) / 10_000) : 450 + (hour % 3) * 5,
      pm: cooking ? 80 : 8 + (hour % 4),
      voc: spike ? 2500 : 150 + (hour % 5) * 3,
      allpollu: cooking ? 70 : 12,
      tmp: 20.5 + (evening ? 1.5 : 0),
      hum: 42 + (hour % 6),
    });
  }
  return out;
}

/** The documented routes the test must see answer a success (streams are the fuzzer's, over sockets). */
const MUST_SUCCEED = HTTP_ROUTES.filter((r) => r.openapi !== false && r.stream !== true);

describe.each(BACKENDS)("every success answer matches the published OpenAPI (%s)", (backend) => {
  it("on every route, with nothing lost in serialisation", { timeout: 300_000 }, async () => {
    await using f = await GatewayFixture.start(server);
    const watch = watchAnswers(f.app);
    const db = await testDatabase(backend);
    const archive = await archiveOn(f, db);
    try {
      await f.startNode("n2");
      await f.ready();
      const ann = await f.user("ann");
      const dev = await f.device("room-1", ann.userId);
      const sent = readings();
      for (let i = 0; i < sent.length; i += 1000) await post(f, dev, sent.slice(i, i + 1000));
      await waitFor(async () => (await f.app.inject({ method: "GET", url: "/v1/devices/room-1", headers: admin })).json<TwinView>().readings === sent.length, {
        timeoutMs: 60_000,
        message: "readings applied",
      });
      await caughtUp(archive);
      // the weekly report comes last (when day 7 closes): once the archive answers with it, all are there
      await waitFor(async () => (await f.app.inject({ method: "GET", url: `/v1/devices/room-1/reports?period=week`, headers: ann.headers })).json<{ reports?: unknown[] }>().reports?.length === 1, {
        timeoutMs: 90_000,
        message: "weekly report archived",
      });

      const published = PublishedSchemas.of(f.app);
      const requests: string[] = [];
      const ok = async (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, headers: Record<string, string>, payload?: unknown): Promise<LightMyRequestResponse> => {
        // what the test sends is a body the document describes (commands: the domain validates, the document must agree)
        const pattern = HTTP_ROUTES.find((r) => r.method === method && new RegExp(`^${r.url.replace(/:[A-Za-z]+/g, "[^/?]+")}(\\?|$)`).test(url))?.url ?? url;
        if (payload !== undefined) requests.push(...published.checkRequest(method, pattern, payload));
        const r = await f.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });
        expect(r.statusCode, `${method} ${url}: ${r.body.slice(0, 300)}`).toBeLessThan(300);
        return r;
      };
      const q = `from=${T0}`;
      // the twin, with what the learned models add
      const twin = (await ok("GET", "/v1/devices/room-1", ann.headers)).json<TwinView>();
      expect(twin.occupancy, "learned occupancy").toBeDefined();
      expect(twin.channels.co2?.forecast, "forecast").toHaveLength(4);
      expect(Object.values(twin.events).map((e) => e.state)).toContain("active");
      await ok("GET", "/v1/devices/room-1?consistency=snapshot", ann.headers);
      // history: aggregates over the archive and the twin, events and alerts (in pages), raw readings, reports
      for (const resolution of ["hour", "day"]) await ok("GET", `/v1/devices/room-1/aggregates?resolution=${resolution}&${q}`, ann.headers);
      const events = (await ok("GET", `/v1/devices/room-1/events?${q}`, ann.headers)).json<{ recent: unknown[] }>();
      expect(events.recent.length).toBeGreaterThan(5);
      const alerts = (await ok("GET", `/v1/devices/room-1/alerts?${q}&limit=5`, ann.headers)).json<{ alerts: { kind: string }[]; next?: string }>();
      expect(alerts.next).toBeDefined();
      const all = (await ok("GET", `/v1/devices/room-1/alerts?${q}`, ann.headers)).json<{ alerts: { kind: string }[] }>();
      expect(new Set(all.alerts.map((a) => a.kind))).toEqual(new Set(["event.start", "event.end", "anomaly", "forecast"]));
      const page = (await ok("GET", `/v1/devices/room-1/readings?limit=100`, ann.headers)).json<{ readings: unknown[]; next?: string }>();
      expect(page.readings).toHaveLength(100);
      await ok("GET", `/v1/devices/room-1/readings?limit=100&cursor=${page.next}`, ann.headers);
      const csv = await ok("GET", `/v1/devices/room-1/readings?limit=10`, { ...ann.headers, accept: "text/csv" });
      expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
      const daily = (await ok("GET", `/v1/devices/room-1/reports?period=day&limit=3`, ann.headers)).json<{ reports: unknown[]; next?: string }>();
      expect(daily.reports).toHaveLength(3);
      await ok("GET", `/v1/devices/room-1/reports?period=day&cursor=${daily.next}`, ann.headers);
      await ok("GET", `/v1/devices/room-1/reports?period=week`, ann.headers);

      // every command
      const command = (body: unknown) => ok("POST", "/v1/devices/room-1/commands", ann.headers, body);
      await command({ type: "putRule", rule: { id: "stuffy", channel: "co2", direction: "above", enter: 1200, exit: 900, minDurationMs: 600_000, clearDurationMs: 300_000 } });
      await command({ type: "subscribe", subscription: { id: "hook", provider: "webhook", match: { kinds: ["event.start", "report.day"], ruleIds: ["stuffy"], channels: ["co2", "device"] }, target: "https://example.com/hook", secret: SECRET } });
      await command({ type: "subscribe", subscription: { id: "mail", provider: "email", match: {}, target: "ann@example.com" } });
      await command({ type: "recalibrate", channel: "co2" });
      await command({ type: "recalibrate", channel: "voc" });
      // the twin again, now with a custom rule, subscriptions and a secret
      await ok("GET", "/v1/devices/room-1", ann.headers);
      await command({ type: "unsubscribe", subscriptionId: "mail" });
      await command({ type: "deleteRule", ruleId: "stuffy" });
      const replayed = await f.app.inject({ method: "POST", url: "/v1/devices/room-1/commands", headers: { ...ann.headers, "idempotency-key": "k-1" }, payload: { type: "deleteRule", ruleId: "default-voc" } });
      expect(replayed.statusCode).toBe(200);
      await f.device("room-2", ann.userId);
      await ok("POST", "/v1/devices/room-2/commands", ann.headers, { type: "reset" });

      // the registry and the caller
      await ok("GET", "/v1/devices", admin);
      await ok("GET", "/v1/devices", ann.headers);
      await ok("PATCH", "/v1/devices/room-2", admin, { disabled: true });
      await ok("GET", "/v1/me", ann.headers);
      await ok("GET", "/v1/me", admin);
      await f.user("bob");
      await ok("DELETE", "/v1/users/bob", admin);
      await f.device("room-3", ann.userId);
      await ok("DELETE", "/v1/devices/room-3", admin);
      // the bulk import: one new device, one already registered (reported, left alone)
      const imported = (await ok("POST", "/v1/devices/import", admin, { devices: [{ deviceId: "room-4", ownerId: ann.userId }, { deviceId: "room-1", ownerId: ann.userId }] })).json<{ created: number }>();
      expect(imported.created).toBe(1);

      // ops
      const cluster = (await ok("GET", "/v1/ops/cluster", admin)).json<{ nodes: { nodeId: string }[] }>();
      expect(cluster.nodes.map((n) => n.nodeId)).toEqual(["n1", "n2"]);
      await ok("POST", "/v1/ops/shards/0/move", admin, { node: "n2" });
      await ok("POST", "/v1/ops/rebalance", admin, { dryRun: true, unpin: true });
      await ok("POST", "/v1/ops/rebalance", admin);
      await ok("POST", "/v1/ops/nodes/n2/drain", admin);
      await ok("GET", "/v1/ops/cluster", admin);
      await ok("GET", "/v1/ops/archive", admin);
      for (const url of ["/healthz", "/readyz", "/metrics"]) await ok("GET", url, {});

      // what was sent and what came back, against the document
      expect(requests).toEqual([]);
      const documented = new Set(MUST_SUCCEED.map((r) => `${r.method} ${r.url}`));
      const checked = watch.answers.filter((a) => documented.has(`${a.method} ${a.url}`));
      const invalid = checked.flatMap((a: Answer) => published.check(a));
      expect(invalid).toEqual([]);
      expect(watch.losses).toEqual([]);
      const succeeded = new Set(checked.filter((a) => a.status < 300).map((a) => `${a.method} ${a.url}`));
      expect([...documented].filter((r) => !succeeded.has(r)), "routes never answered a success").toEqual([]);
    } finally {
      await archive.close();
      await db.drop();
    }
  });
});
