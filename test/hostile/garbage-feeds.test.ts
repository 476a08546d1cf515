// Garbage on the subjects the gateway's live feeds and the archive's query service consume, against a
// real nats-server, node, listening gateway and archive (PGlite): a device's live readings
// (`<prefix>.live.<id>`), the alert outputs the server-sent-event streams follow, the gateways'
// live-interest announcements, and `<prefix>.archive.query.<verb>`. The streams stay open and carry
// only what the twin really produced (no garbage event, no event forged through a newline in an id);
// the query service answers garbage with a coded refusal and goes on answering real queries.
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningArchive } from "../../gateways/archive/archive.ts";
import { decode, encode, msgpackHeaders } from "../../runtime/mod.ts";
import { archiveOn, caughtUp, testDatabase } from "../archive/fixture.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import type { SseEvent } from "../harness/sse.ts";
import { admin, bearer, listen, sse } from "../gateway/fixture.ts";
import { HostileCluster } from "./fixture.ts";

const DEVICE = "feed-1";
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const random = rng(23);

const GARBAGE: Uint8Array[] = [
  new Uint8Array(),
  Uint8Array.from({ length: 48 }, () => Math.floor(random() * 256)),
  encode(42),
  encode(null),
  encode("x".repeat(400_000)),
  encode([1, [2, [3]]]),
  encode({ deviceId: DEVICE, readings: "all of them", acceptedAt: "now" }),
  encode({ deviceId: DEVICE, readings: [{ t: "noon", pm: {} }] }),
  encode({ id: "forged\nevent: alert\ndata: {\"forged\":true}", deviceId: DEVICE, kind: "event.start", at: T0 }),
  encode({ id: `${DEVICE}:someone-else`, deviceId: "another-device", kind: "event.start", at: T0 }),
  encode({ from: "gw-x", deviceIds: "all", ttlMs: "forever" }),
  encode({ from: "gw-y", deviceIds: [1, {}, null], ttlMs: 1e300 }),
  encode({ deviceId: DEVICE, fromMs: 1.5, toMs: "x", limit: -1, kinds: [1], resolution: "year" }),
];

let c: HostileCluster;
let nc: NatsConnection;
let archive: RunningArchive;
let db: Awaited<ReturnType<typeof testDatabase>>;
let token: string;
let url: string;

beforeAll(async () => {
  c = await HostileCluster.start(2);
  nc = await c.f.connect();
  db = await testDatabase("pglite");
  archive = await archiveOn(c.f, db);
  await c.f.user("owner");
  token = (await c.f.device(DEVICE, "owner")).token;
  url = await listen(c.f.app);
}, 60_000);

afterAll(async () => {
  await archive?.close();
  await db?.drop();
  await c?.[Symbol.asyncDispose]();
});

describe("garbage on the feeds' and queries' subjects", () => {
  it("live streams stay open and carry only the twin's real readings and alerts", { timeout: 60_000 }, async () => {
    const rule = await c.f.app.inject({
      method: "POST",
      url: `/v1/devices/${DEVICE}/commands`,
      headers: admin,
      payload: { type: "putRule", rule: { id: "high", channel: "pm", direction: "above", enter: 50, exit: 40, minDurationMs: 0, clearDurationMs: 0 } },
    });
    expect(rule.statusCode, rule.body).toBe(200);
    const device = sse(`${url}/v1/devices/${DEVICE}/live`, admin);
    const fleet = sse(`${url}/v1/alerts/live`, admin);
    for (const s of [device, fleet]) expect((await s.opened).statusCode).toBe(200);
    await waitFor(() => device.events.some((e) => e.event === "open") && fleet.events.some((e) => e.event === "open"));

    const liveSubject = `${c.f.prefix}.live.${DEVICE}`;
    const alertSubject = `${c.f.prefix}.out.alert.${DEVICE}.pm.event.start`;
    for (const bytes of GARBAGE) {
      for (const subject of [liveSubject, alertSubject, `${c.f.prefix}.live-interest.announce`, `${c.f.prefix}.live-interest.sync`]) {
        nc.publish(subject, bytes, { headers: msgpackHeaders() });
      }
    }
    // valid messages behind the garbage, from the same connection: once they arrive, so has the garbage
    const sentinel = { id: `${DEVICE}:sentinel:${T0 - 1}:start`, deviceId: DEVICE, ruleId: "sentinel", channel: "pm", kind: "event.start", at: T0 - 1 };
    nc.publish(liveSubject, encode({ deviceId: DEVICE, readings: [{ t: T0 - 1, pm: 1 }], acceptedAt: T0 }), { headers: msgpackHeaders() });
    nc.publish(alertSubject, encode(sentinel), { headers: msgpackHeaders() });
    const has = (events: SseEvent[], event: string, match: (data: Record<string, unknown>) => boolean) => events.some((e) => e.event === event && match(e.data as Record<string, unknown>));
    await waitFor(() => has(device.events, "readings", (d) => d.acceptedAt === T0) && has(device.events, "alert", (d) => d.id === sentinel.id) && has(fleet.events, "alert", (d) => d.id === sentinel.id), {
      message: "the valid messages behind the garbage on both streams",
    });

    // the twin's own readings and alert still flow
    const post = await c.f.app.inject({ method: "POST", url: `/v1/devices/${DEVICE}/readings`, headers: bearer(token), payload: { readings: [{ t: T0, pm: 80 }] } });
    expect(post.statusCode, post.body).toBe(202);
    await waitFor(() => has(device.events, "readings", (d) => d.acceptedAt !== T0) && has(device.events, "alert", (d) => d.ruleId === "high") && has(fleet.events, "alert", (d) => d.ruleId === "high"), {
      timeoutMs: 20_000,
      message: "the real readings and alert on both streams",
    });
    device.close();
    fleet.close();
    // nothing else: no event made of garbage, none forged
    expect(device.events.map((e) => e.event).sort()).toEqual(["alert", "alert", "open", "readings", "readings"]);
    expect(device.events.filter((e) => e.event === "readings")[1]!.data).toMatchObject({ deviceId: DEVICE, readings: [{ t: T0, pm: 80 }] });
    for (const s of [device, fleet]) {
      const alerts = s.events.filter((e) => e.event === "alert");
      expect(alerts.map((a) => (a.data as { ruleId: string }).ruleId), JSON.stringify(s.events)).toEqual(["sentinel", "high"]);
      expect(alerts[1]!.data).toMatchObject({ deviceId: DEVICE, kind: "event.start", value: 80 });
      for (const a of alerts) expect(a.id).toBe((a.data as { id: string }).id);
    }
    expect(c.errors()).toEqual([]);
  });

  it("the archive's query service refuses garbage with a code and goes on answering", { timeout: 60_000 }, async () => {
    await caughtUp(archive);
    for (const verb of ["readings", "rollups", "outputs", "status", "nonsense"]) {
      for (const bytes of GARBAGE) {
        const m = await nc.request(`${c.f.prefix}.archive.query.${verb}`, bytes, { timeout: 5000 });
        const reply = decode<{ ok: boolean; error?: { code: string } }>(m.data);
        if (verb === "status") continue; // status takes no arguments: any body is answered
        expect(reply.ok, `${verb} ${Buffer.from(bytes.subarray(0, 16)).toString("hex")}`).toBe(false);
        expect(reply.error!.code).toMatch(/^AIRTWIN_ERR_/);
      }
    }
    // real history still comes from the archive
    const r = await c.f.app.inject({ method: "GET", url: `/v1/devices/${DEVICE}/readings?from=${T0 - 1000}`, headers: admin });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json<{ readings: Array<{ t: number }> }>().readings.map((x) => x.t)).toEqual([T0]);
  });
});
