// The registry and app routes through app.inject() against a real nats-server and node: users and
// devices (admin), who may see which twin (401/403/404 without revealing existence), the twin live and
// from its snapshot, aggregates, events, alerts, and every command with its errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_RULES, MAX_SUBSCRIPTIONS, type Alert, type TwinView } from "../../actors/device-twin/domain/mod.ts";
import { RuntimeError } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer, errorOf, GatewayFixture } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let alice: Awaited<ReturnType<GatewayFixture["user"]>>;
let bob: Awaited<ReturnType<GatewayFixture["user"]>>;

const HOUR = 3_600_000;
// alerts are read back by event time within the last 24 h by default: use recent readings
const NOW = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  alice = await f.user("alice");
  bob = await f.user("bob");
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

const inject = (method: "GET" | "POST" | "DELETE" | "PATCH", url: string, headers: Record<string, string> = {}, payload?: unknown) =>
  f.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

async function ingest(token: string, id: string, readings: Array<Record<string, number>>): Promise<void> {
  const r = await f.app.inject({ method: "POST", url: `/v1/devices/${id}/readings`, headers: bearer(token), payload: { readings } });
  expect(r.statusCode, r.body).toBe(202);
}

async function command(id: string, body: unknown, headers = alice.headers) {
  return inject("POST", `/v1/devices/${id}/commands`, headers, body);
}

describe("registry (admin)", () => {
  it("creates users once, with valid ids, for the admin only", async () => {
    const r = await inject("POST", "/v1/users", admin, { userId: "carol" });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ userId: "carol", apiKey: expect.stringMatching(/^carol\.[A-Za-z0-9_-]{43}$/) });
    expect(errorOf(await inject("POST", "/v1/users", admin, { userId: "carol" }))).toMatchObject({ statusCode: 409, code: "AIRTWIN_ERR_REGISTRY_USER_EXISTS" });
    expect(errorOf(await inject("POST", "/v1/users", admin, { userId: "no spaces" }))).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_REGISTRY_USER_ID_INVALID" });
    const missing = errorOf(await inject("POST", "/v1/users", admin, {}));
    expect(missing).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_HTTP_VALIDATION", details: [expect.objectContaining({ field: "body.userId" })] });
    expect(errorOf(await inject("POST", "/v1/users", admin, { userId: "x", role: "admin" })).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
    expect(errorOf(await inject("POST", "/v1/users", {}, { userId: "dave" }))).toMatchObject({ statusCode: 401, code: "AIRTWIN_ERR_AUTH_UNAUTHORIZED" });
    expect(errorOf(await inject("POST", "/v1/users", bearer("not-the-admin-token"), { userId: "dave" })).statusCode).toBe(401);
    expect(errorOf(await inject("POST", "/v1/users", alice.headers, { userId: "dave" }))).toMatchObject({ statusCode: 403, code: "AIRTWIN_ERR_AUTH_FORBIDDEN" });
  });

  it("deletes a user: their key stops working at once; unknown users are 404", async () => {
    const erin = await f.user("erin");
    expect((await inject("GET", "/v1/devices", erin.headers)).statusCode).toBe(200);
    expect((await inject("DELETE", "/v1/users/erin", admin)).statusCode).toBe(204);
    expect(errorOf(await inject("GET", "/v1/devices", erin.headers)).statusCode).toBe(401);
    expect(errorOf(await inject("DELETE", "/v1/users/erin", admin))).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_REGISTRY_USER_NOT_FOUND" });
  });

  it("registers devices for existing owners, once, with valid ids", async () => {
    const r = await inject("POST", "/v1/devices", admin, { deviceId: "reg-1", ownerId: "alice" });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ deviceId: "reg-1", token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(errorOf(await inject("POST", "/v1/devices", admin, { deviceId: "reg-1", ownerId: "alice" }))).toMatchObject({ statusCode: 409, code: "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS" });
    expect(errorOf(await inject("POST", "/v1/devices", admin, { deviceId: "reg/2", ownerId: "alice" }))).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_DEVICE_ID_INVALID" });
    expect(errorOf(await inject("POST", "/v1/devices", admin, { deviceId: "reg-2", ownerId: "nobody" }))).toMatchObject({
      statusCode: 400,
      code: "AIRTWIN_ERR_REGISTRY_OWNER_UNKNOWN",
      details: [expect.objectContaining({ field: "ownerId" })],
    });
    expect(errorOf(await inject("POST", "/v1/devices", alice.headers, { deviceId: "reg-2", ownerId: "alice" })).statusCode).toBe(403);
  });

  it("imports devices in bulk (admin): a token each that ingests, a bad entry refuses the whole import, registered ones reported", async () => {
    const bad = await inject("POST", "/v1/devices/import", admin, { devices: [{ deviceId: "imp-1", ownerId: "alice" }, { deviceId: "imp/2", ownerId: "alice" }] });
    expect(errorOf(bad)).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_REGISTRY_IMPORT_INVALID", details: [{ index: 1, field: "deviceId", message: expect.any(String) }] });
    expect((await inject("GET", "/v1/devices/imp-1", admin)).statusCode).toBe(404);
    expect(errorOf(await inject("POST", "/v1/devices/import", alice.headers, { devices: [{ deviceId: "imp-1", ownerId: "alice" }] })).statusCode).toBe(403);
    const r = await inject("POST", "/v1/devices/import", admin, { devices: [{ deviceId: "imp-1", ownerId: "alice" }, { deviceId: "imp-2", ownerId: "bob" }] });
    expect(r.statusCode).toBe(200);
    const body = r.json<{ created: number; devices: Array<{ deviceId: string; token: string }> }>();
    expect(body).toEqual({ created: 2, devices: [0, 1].map((i) => ({ deviceId: `imp-${i + 1}`, token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) })) });
    await ingest(body.devices[1]!.token, "imp-2", [{ t: NOW, pm: 3 }]);
    const again = await inject("POST", "/v1/devices/import", admin, { devices: [{ deviceId: "imp-2", ownerId: "bob" }] });
    expect(again.json()).toEqual({ created: 0, devices: [{ deviceId: "imp-2", code: "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS", message: expect.any(String) }] });
  });

  it("lists all devices for admin and only their own for a user", async () => {
    await f.device("list-a", "alice");
    await f.device("list-b", "bob");
    const all = (await inject("GET", "/v1/devices", admin)).json<{ devices: Array<{ deviceId: string; ownerId: string }> }>().devices;
    expect(all.map((d) => d.deviceId)).toEqual(expect.arrayContaining(["list-a", "list-b"]));
    const mine = (await inject("GET", "/v1/devices", bob.headers)).json<{ devices: Array<{ deviceId: string; ownerId: string; disabled: boolean; createdAt: number }> }>().devices;
    expect(mine.every((d) => d.ownerId === "bob")).toBe(true);
    expect(mine.find((d) => d.deviceId === "list-b")).toEqual({ deviceId: "list-b", ownerId: "bob", disabled: false, createdAt: expect.any(Number) });
    expect(JSON.stringify(mine)).not.toMatch(/sha256|token/i);
    expect(errorOf(await inject("GET", "/v1/devices")).statusCode).toBe(401);
  });

  it("deletes a device: its token stops working, admin then gets 404; PATCH of an unknown device is 404", async () => {
    const d = await f.device("del-1", "alice");
    await ingest(d.token, "del-1", [{ t: NOW, pm: 3 }]);
    expect(errorOf(await inject("DELETE", "/v1/devices/del-1", alice.headers)).statusCode).toBe(403);
    expect((await inject("DELETE", "/v1/devices/del-1", admin)).statusCode).toBe(204);
    const refused = await f.app.inject({ method: "POST", url: "/v1/devices/del-1/readings", headers: bearer(d.token), payload: { readings: [] } });
    expect(errorOf(refused).statusCode).toBe(401);
    expect(errorOf(await inject("GET", "/v1/devices/del-1", admin))).toMatchObject({ statusCode: 404, code: "AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND" });
    expect(errorOf(await inject("DELETE", "/v1/devices/del-1", admin)).statusCode).toBe(404);
    expect(errorOf(await inject("PATCH", "/v1/devices/del-1", admin, { disabled: true })).code).toBe("AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND");
    expect(errorOf(await inject("PATCH", "/v1/devices/x", admin, { disabled: "yes" })).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });
  it("erases a deleted device's twin: its id registered again, for another owner, starts from nothing", async () => {
    const d = await f.device("del-2", "alice");
    const rule = { id: "pm-hi", channel: "pm", direction: "above", enter: 50, exit: 20, minDurationMs: 0, clearDurationMs: 0 };
    expect((await command("del-2", { type: "putRule", rule })).statusCode).toBe(200);
    const sub = { id: "hook", provider: "webhook", match: {}, target: "https://alice.example/hook" };
    expect((await command("del-2", { type: "subscribe", subscription: sub })).statusCode).toBe(200);
    await ingest(d.token, "del-2", [{ t: NOW, pm: 60 }]);
    await waitFor(async () => (await inject("GET", "/v1/devices/del-2/alerts", alice.headers)).json<{ alerts: Alert[] }>().alerts.length === 1, { message: "alice's alert" });
    expect((await inject("DELETE", "/v1/devices/del-2", admin)).statusCode).toBe(204);

    const again = await f.device("del-2", "bob");
    await ingest(again.token, "del-2", [{ t: NOW + 60_000, pm: 5 }]);
    // the erasure is in the log before bob's reading: his twin counts one reading, alice's are gone
    const twin = await waitFor(async () => {
      const v = (await inject("GET", "/v1/devices/del-2", bob.headers)).json<TwinView>();
      return v.readings === 1 ? v : undefined;
    });
    expect(twin.channels.pm).toMatchObject({ count: 1, max: 5 });
    expect(twin.rules.map((r) => r.id).sort()).toEqual(["default-allpollu", "default-co2", "default-pm", "default-voc"]);
    expect(twin.subscriptions).toEqual([]);
    expect((await inject("GET", "/v1/devices/del-2/alerts", bob.headers)).json<{ alerts: Alert[] }>().alerts).toEqual([]);
    expect((await inject("GET", "/v1/devices/del-2/events", bob.headers)).json<{ recent: unknown[] }>().recent).toEqual([]);
    await waitFor(async () => (await inject("GET", "/v1/devices/del-2?consistency=snapshot", bob.headers)).json<TwinView>().readings === 1, {
      message: "committed snapshot erased too",
    });
    expect(errorOf(await inject("GET", "/v1/devices/del-2", alice.headers)).statusCode).toBe(403);
  });
});

describe("who sees which twin", () => {
  it("owner and admin: 200; another user: 403 — the same 403 as for a device that does not exist; nobody: 401", async () => {
    await f.device("own-1", "alice");
    expect((await inject("GET", "/v1/devices/own-1", alice.headers)).statusCode).toBe(200);
    expect((await inject("GET", "/v1/devices/own-1", admin)).statusCode).toBe(200);
    const cross = await inject("GET", "/v1/devices/own-1", bob.headers);
    const ghost = await inject("GET", "/v1/devices/ghost-1", bob.headers);
    expect(cross.statusCode).toBe(403);
    expect(errorOf(cross)).toEqual(errorOf(ghost));
    expect(errorOf(cross).code).toBe("AIRTWIN_ERR_AUTH_FORBIDDEN");
    for (const path of ["", "/aggregates", "/events", "/alerts", "/live"]) {
      expect(errorOf(await inject("GET", `/v1/devices/own-1${path}`, bob.headers)).statusCode, path).toBe(403);
      expect(errorOf(await inject("GET", `/v1/devices/own-1${path}`)).statusCode, path).toBe(401);
      expect(errorOf(await inject("GET", `/v1/devices/own-1${path}`, bearer("alice.wrong"))).statusCode, path).toBe(401);
    }
    expect(errorOf(await command("own-1", { type: "reset" }, bob.headers)).statusCode).toBe(403);
    expect(errorOf(await inject("GET", "/v1/devices/ghost-1", admin)).statusCode).toBe(404);
    // a device token is for ingest only
    const d = await f.device("own-2", "alice");
    expect(errorOf(await inject("GET", "/v1/devices/own-2", bearer(d.token))).statusCode).toBe(401);
  });
});

describe("the twin", () => {
  it("answers live and from the committed snapshot, which catches up", async () => {
    const d = await f.device("tw-1", "alice");
    await ingest(d.token, "tw-1", [{ t: NOW, pm: 10, co2: 500 }, { t: NOW + 60_000, pm: 20 }]);
    const live = await waitFor(async () => {
      const r = await inject("GET", "/v1/devices/tw-1", alice.headers);
      return r.json<TwinView>().readings === 2 ? r : undefined;
    });
    expect(Number(live.headers["airtwin-applied-seq"])).toBeGreaterThan(0);
    const view = live.json<TwinView>();
    expect(view).toMatchObject({ deviceId: "tw-1", readings: 2, duplicates: 0, late: 0, online: true, lastT: NOW + 60_000 });
    expect(view.channels.pm).toMatchObject({ count: 2, mean: 15, stddev: 5, min: 10, max: 20 });
    expect(view.rules.map((r) => r.id)).toEqual(["default-pm", "default-co2", "default-voc", "default-allpollu"]);
    const snap = await waitFor(async () => {
      const r = await inject("GET", "/v1/devices/tw-1?consistency=snapshot", alice.headers);
      return r.json<TwinView>().readings === 2 ? r.json<TwinView>() : undefined;
    });
    expect(snap.channels).toEqual(view.channels);
    expect(snap.rules).toEqual(view.rules);
    // a device without any committed state answers an empty twin
    await f.device("tw-empty", "alice");
    const empty = await inject("GET", "/v1/devices/tw-empty?consistency=snapshot", alice.headers);
    expect(empty.json<TwinView>()).toMatchObject({ deviceId: "tw-empty", readings: 0, channels: {} });
    expect(errorOf(await inject("GET", "/v1/devices/tw-1?consistency=eventual", alice.headers)).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });

  it("serves hourly and daily aggregates filtered by from/to", async () => {
    const d = await f.device("agg-1", "alice");
    await ingest(d.token, "agg-1", [
      { t: NOW, pm: 10 },
      { t: NOW + 1000, pm: 30 },
      { t: NOW + HOUR, pm: 50 },
    ]);
    await waitFor(async () => (await inject("GET", "/v1/devices/agg-1", alice.headers)).json<TwinView>().readings === 3);
    const all = (await inject("GET", "/v1/devices/agg-1/aggregates", alice.headers)).json<{ resolution: string; channels: { pm: Array<{ start: number; count: number; mean: number }> } }>();
    expect(all.resolution).toBe("hour");
    expect(all.channels.pm).toEqual([
      expect.objectContaining({ start: NOW, count: 2, mean: 20, min: 10, max: 30 }),
      expect.objectContaining({ start: NOW + HOUR, count: 1, mean: 50 }),
    ]);
    const second = (await inject("GET", `/v1/devices/agg-1/aggregates?from=${NOW + 1}`, alice.headers)).json<typeof all>();
    expect(second.channels.pm.map((b) => b.start)).toEqual([NOW + HOUR]);
    const first = (await inject("GET", `/v1/devices/agg-1/aggregates?to=${new Date(NOW + HOUR).toISOString()}`, alice.headers)).json<typeof all>();
    expect(first.channels.pm.map((b) => b.start)).toEqual([NOW]);
    const day = (await inject("GET", "/v1/devices/agg-1/aggregates?resolution=day", alice.headers)).json<typeof all>();
    expect(day.channels.pm.reduce((n, b) => n + b.count, 0)).toBe(3);
    expect(errorOf(await inject("GET", "/v1/devices/agg-1/aggregates?from=yesterday", alice.headers))).toMatchObject({
      statusCode: 400,
      code: "AIRTWIN_ERR_HTTP_QUERY_INVALID",
      details: [expect.objectContaining({ field: "from" })],
    });
    expect(errorOf(await inject("GET", `/v1/devices/agg-1/aggregates?from=${NOW}&to=${NOW}`, alice.headers)).code).toBe("AIRTWIN_ERR_HTTP_QUERY_INVALID");
    expect(errorOf(await inject("GET", "/v1/devices/agg-1/aggregates?resolution=minute", alice.headers)).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });

  it("runs putRule, then readings trip it: events (current and recent) and alerts show it", async () => {
    const d = await f.device("ev-1", "alice");
    const rule = { id: "pm-spike", channel: "pm", direction: "above", enter: 50, exit: 20, minDurationMs: 0, clearDurationMs: 0 };
    const put = await command("ev-1", { type: "putRule", rule });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toEqual({ type: "putRule", rule });
    await ingest(d.token, "ev-1", [{ t: NOW, pm: 60 }]);
    const during = await waitFor(async () => {
      const r = (await inject("GET", "/v1/devices/ev-1/events", alice.headers)).json<{ current: Record<string, { state: string }> }>();
      return r.current["pm-spike"]?.state === "active" ? r : undefined;
    });
    expect(during.current["pm-spike"]).toMatchObject({ state: "active", startedAt: NOW, eventId: `ev-1:pm-spike:${NOW}` });
    await ingest(d.token, "ev-1", [{ t: NOW + 60_000, pm: 10 }]);
    const alerts = await waitFor(async () => {
      const r = (await inject("GET", "/v1/devices/ev-1/alerts", alice.headers)).json<{ alerts: Alert[] }>();
      return r.alerts.filter((a) => a.ruleId === "pm-spike").length === 2 ? r.alerts.filter((a) => a.ruleId === "pm-spike") : undefined;
    });
    expect(alerts.map((a) => a.kind)).toEqual(["event.start", "event.end"]);
    expect(alerts[1]).toMatchObject({ eventId: `ev-1:pm-spike:${NOW}`, startedAt: NOW, endedAt: NOW + 60_000, durationMs: 60_000, peak: 60, mean: 60 });
    const events = (await inject("GET", "/v1/devices/ev-1/events", alice.headers)).json<{ current: Record<string, { state: string }>; recent: unknown[] }>();
    expect(events.current["pm-spike"]?.state).toBe("normal");
    expect(events.recent).toEqual([
      { eventId: `ev-1:pm-spike:${NOW}`, ruleId: "pm-spike", channel: "pm", startedAt: NOW, endedAt: NOW + 60_000, durationMs: 60_000, peak: 60, mean: 60, threshold: 50 },
    ]);
    // windows and limits
    const later = (await inject("GET", `/v1/devices/ev-1/alerts?from=${NOW + 1}`, alice.headers)).json<{ alerts: Alert[] }>();
    expect(later.alerts.filter((a) => a.ruleId === "pm-spike").map((a) => a.kind)).toEqual(["event.end"]);
    const before = (await inject("GET", `/v1/devices/ev-1/alerts?to=${NOW}`, alice.headers)).json<{ alerts: Alert[] }>();
    expect(before.alerts.filter((a) => a.ruleId === "pm-spike")).toEqual([]);
    const one = (await inject("GET", "/v1/devices/ev-1/alerts?limit=1", alice.headers)).json<{ alerts: Alert[]; truncated: boolean }>();
    expect(one.alerts).toHaveLength(1);
    expect(one.truncated).toBe(true);
    expect(errorOf(await inject("GET", "/v1/devices/ev-1/alerts?limit=0", alice.headers)).code).toBe("AIRTWIN_ERR_HTTP_VALIDATION");
  });

  it("finds the alerts of a device whose clock runs ahead (local time sent as UTC), by their event time", async () => {
    // a UTC+13 device sending local time as UTC: its alerts are stored up to 13 h before their `at`
    const ahead = Date.now() + 13 * HOUR;
    const d = await f.device("fast-1", "alice");
    const rule = { id: "pm-now", channel: "pm", direction: "above", enter: 50, exit: 20, minDurationMs: 0, clearDurationMs: 0 };
    expect((await command("fast-1", { type: "putRule", rule })).statusCode).toBe(200);
    await ingest(d.token, "fast-1", [{ t: ahead, pm: 60 }]);
    const all = await waitFor(async () => {
      const r = (await inject("GET", "/v1/devices/fast-1/alerts", alice.headers)).json<{ alerts: Alert[] }>();
      return r.alerts.some((a) => a.ruleId === "pm-now") ? r.alerts : undefined;
    });
    expect(all.find((a) => a.ruleId === "pm-now")).toMatchObject({ kind: "event.start", at: ahead });
    // a client polling by event time ("since the last alert I saw") asks from a time that is still in
    // the future for the server; the alert was stored before it
    for (const from of [ahead - 1, ahead, ahead - 12 * HOUR]) {
      const r = (await inject("GET", `/v1/devices/fast-1/alerts?from=${from}`, alice.headers)).json<{ alerts: Alert[] }>();
      expect(r.alerts.filter((a) => a.ruleId === "pm-now").map((a) => a.at), `from=${from}`).toEqual([ahead]);
    }
    expect((await inject("GET", `/v1/devices/fast-1/alerts?from=${ahead + 1}`, alice.headers)).json<{ alerts: Alert[] }>().alerts).toEqual([]);
  });

  it("answers every command once applied, and each refusal with its code", async () => {
    await f.device("cmd-1", "alice");
    const ok = async (body: unknown) => {
      const r = await command("cmd-1", body);
      expect(r.statusCode, r.body).toBe(200);
      return r.json<Record<string, unknown>>();
    };
    const fail = async (body: unknown, status: number, code: string, field?: string) => {
      const e = errorOf(await command("cmd-1", body));
      expect(e, JSON.stringify(body)).toMatchObject({ statusCode: status, code });
      if (field !== undefined) expect(e.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    };
    const sub = { id: "hook-1", provider: "webhook", match: { kinds: ["event.start"] }, target: "https://example.com/hook" };
    expect(await ok({ type: "subscribe", subscription: sub })).toEqual({ type: "subscribe", subscription: sub });
    expect(await ok({ type: "unsubscribe", subscriptionId: "hook-1" })).toEqual({ type: "unsubscribe", subscriptionId: "hook-1" });
    expect(await ok({ type: "deleteRule", ruleId: "default-voc" })).toEqual({ type: "deleteRule", ruleId: "default-voc" });
    expect(await ok({ type: "recalibrate", channel: "co2" })).toMatchObject({ type: "recalibrate", channel: "co2", calibration: { deviceId: "cmd-1", channel: "co2" } });
    expect(await ok({ type: "reset" })).toEqual({ type: "reset" });

    await fail({ type: "explode" }, 400, "AIRTWIN_ERR_COMMAND_INVALID", "type");
    await fail({ type: "reset", force: true }, 400, "AIRTWIN_ERR_COMMAND_INVALID", "force");
    await fail({ type: "putRule", rule: { id: "r", channel: "pm", direction: "sideways", enter: 1, exit: 0, minDurationMs: 0, clearDurationMs: 0 } }, 400, "AIRTWIN_ERR_RULE_INVALID", "rule.direction");
    await fail({ type: "subscribe", subscription: { ...sub, provider: "Fax!" } }, 400, "AIRTWIN_ERR_SUBSCRIPTION_INVALID", "subscription.provider");
    await fail({ type: "deleteRule", ruleId: "no-such-rule" }, 404, "AIRTWIN_ERR_RULE_NOT_FOUND");
    await fail({ type: "unsubscribe", subscriptionId: "no-such-sub" }, 404, "AIRTWIN_ERR_SUBSCRIPTION_NOT_FOUND");
    const badJson = await f.app.inject({ method: "POST", url: "/v1/devices/cmd-1/commands", headers: { ...alice.headers, "content-type": "application/json" }, payload: "{" });
    expect(errorOf(badJson).code).toBe("AIRTWIN_ERR_HTTP_BODY_INVALID");

    let status = 200;
    for (let i = 0; i < MAX_RULES + 1 && status === 200; i++) {
      const r = await command("cmd-1", { type: "putRule", rule: { id: `r-${i}`, channel: "co2", direction: "above", enter: 2000, exit: 1500, minDurationMs: 0, clearDurationMs: 0 } });
      status = r.statusCode;
      if (status !== 200) expect(errorOf(r).code).toBe("AIRTWIN_ERR_RULE_LIMIT");
    }
    expect(status).toBe(409);
    status = 200;
    for (let i = 0; i < MAX_SUBSCRIPTIONS + 1 && status === 200; i++) {
      const r = await command("cmd-1", { type: "subscribe", subscription: { ...sub, id: `s-${i}` } });
      status = r.statusCode;
      if (status !== 200) expect(errorOf(r).code).toBe("AIRTWIN_ERR_SUBSCRIPTION_LIMIT");
    }
    expect(status).toBe(409);
  });

  it("answers 504 when the twin's result does not come in time, 503 when the command is not stored", async () => {
    await f.device("cmd-2", "alice");
    const client = f.parts.client;
    const slow = await f.buildApp({
      twins: f.twinApi({
        backend: {
          send: (...a) => client.send(...a),
          get: (...a) => client.get(...a),
          getSnapshot: (...a) => client.getSnapshot(...a),
          command: () => Promise.reject(new RuntimeError("REQUEST_TIMEOUT", "no result within 10 ms (the command is logged and will still be applied)")),
        },
      }),
    });
    const r = await slow.inject({ method: "POST", url: "/v1/devices/cmd-2/commands", headers: alice.headers, payload: { type: "reset" } });
    expect(errorOf(r)).toMatchObject({ statusCode: 504, code: "AIRTWIN_ERR_REQUEST_TIMEOUT" });
    const down = await f.buildApp({ twins: f.twinApi({ connected: () => false }) });
    const d = await down.inject({ method: "POST", url: "/v1/devices/cmd-2/commands", headers: alice.headers, payload: { type: "reset" } });
    expect(errorOf(d)).toMatchObject({ statusCode: 503, code: "AIRTWIN_ERR_NATS_UNAVAILABLE" });
    expect(d.headers["retry-after"]).toBe("1");
  });
});
