// Live readings are published only for devices that some gateway streams: a gateway with no SSE client
// for a device sends nothing on `<prefix>.live.<deviceId>`, while a stream opened on one gateway gets the
// readings accepted by another — also by one started after the stream opened — and is forgotten after
// three announcement periods once it ends.
import type { Msg } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsLiveFeed } from "../../gateways/api/live.ts";
import { buildApp } from "../../gateways/http/app.ts";
import { assembleGateway, type GatewayParts } from "../../gateways/http/gateway.ts";
import { encode, msgpackHeaders, names as namesOf } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { ADMIN_TOKEN, bearer, GatewayFixture, listen, sse } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
const others: GatewayParts[] = [];
const NOW = Date.now() - 3_600_000;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  await f.user("alice");
});

afterAll(async () => {
  for (const p of others) await p.close().catch(() => undefined);
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

/** Another gateway of the fixture's cluster, on its own connection, listening. */
async function gateway(): Promise<{ parts: GatewayParts; url: string }> {
  const parts = await assembleGateway(await f.connect(), { prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, defaultMetrics: false });
  others.push(parts);
  const app = await buildApp({ ...parts.deps, adminToken: ADMIN_TOKEN });
  return { parts, url: await listen(app) };
}

/** Posts one reading, retrying while the gateway's registry view has not seen the device yet (401). */
async function post(url: string, deviceId: string, token: string, t: number): Promise<void> {
  await waitFor(async () => {
    const r = await fetch(`${url}/v1/devices/${deviceId}/readings`, {
      method: "POST",
      headers: { ...bearer(token), "content-type": "application/json" },
      body: JSON.stringify({ readings: [{ t, pm: 9 }] }),
    });
    if (r.status !== 202 && r.status !== 401) throw new Error(`status ${r.status}`);
    return r.status === 202;
  });
}

describe("live readings", () => {
  it("are published only for streamed devices, and reach a stream on another gateway", async () => {
    const quiet = await f.device("quiet-1", "alice");
    const watched = await f.device("watched-1", "alice");
    const a = await listen(await f.buildApp());
    const b = await gateway();
    const published: string[] = [];
    const nc = await f.connect();
    nc.subscribe(`${f.prefix}.live.>`, { callback: (_e, m: Msg) => void published.push(m.subject) });
    await nc.flush();

    // nobody streams quiet-1: its accepted readings are not published
    await post(b.url, "quiet-1", quiet.token, NOW);
    const stream = sse(`${a}/v1/devices/watched-1/live`, bearer(ADMIN_TOKEN));
    await waitFor(() => stream.events.some((e) => e.event === "open"));
    // gateway b learns of the stream on gateway a and publishes what it accepts for watched-1
    await post(b.url, "watched-1", watched.token, NOW);
    const first = await waitFor(() => stream.events.find((e) => e.event === "readings"));
    expect(first.data).toMatchObject({ deviceId: "watched-1", readings: [{ t: NOW, pm: 9 }] });
    // b published in order on one connection: quiet-1's message would have arrived first
    await waitFor(() => published.length > 0);
    expect(published).toEqual([`${f.prefix}.live.watched-1`]);

    // a gateway started after the stream opened asks for the streams and publishes for it too
    const c = await gateway();
    await waitFor(() => (c.parts.deps.live as NatsLiveFeed).watched("watched-1"));
    await post(c.url, "watched-1", watched.token, NOW + 1000);
    const second = await waitFor(() => stream.events.find((e) => e.event === "readings" && (e.data as { readings: Array<{ t: number }> }).readings[0]?.t === NOW + 1000));
    expect(second.data).toMatchObject({ deviceId: "watched-1" });
    stream.close();
  });

  it("forgets a stream three announcement periods after it ended", async () => {
    const names = namesOf(f.prefix);
    const here = new NatsLiveFeed(await f.connect(), names, { announceMs: 50 });
    const there = new NatsLiveFeed(await f.connect(), names, { announceMs: 50 });
    try {
      const unsubscribe = here.subscribe("gone-1", { alert: () => undefined, readings: () => undefined });
      expect(here.watched("gone-1")).toBe(true);
      await waitFor(() => there.watched("gone-1"));
      unsubscribe();
      expect(here.watched("gone-1")).toBe(false);
      await waitFor(() => !there.watched("gone-1"), { timeoutMs: 2000 });
    } finally {
      here.close();
      there.close();
    }
  });

  it("believes an announcement only for a bounded time, for real device ids, up to a bounded number", async () => {
    const names = namesOf(f.prefix);
    const there = new NatsLiveFeed(await f.connect(), names, { announceMs: 50, maxInterestTtlMs: 300, maxRemoteDevices: 3 });
    const nc = await f.connect();
    const announce = (body: unknown) => nc.publish(`${f.prefix}.live-interest.announce`, encode(body), { headers: msgpackHeaders() });
    try {
      // nonsense lifetimes and shapes are ignored whole
      for (const ttlMs of [-5, 0, Number.NaN, "1000", null]) announce({ from: "hostile", deviceIds: ["t-bad"], ttlMs });
      announce({ from: "hostile", deviceIds: Array.from({ length: 1001 }, (_, i) => `many-${i}`), ttlMs: 1000 });
      announce(null);
      announce(["t-bad"]);
      // a lifetime of 30 years, and ids that are no device's: the real ids count, for 300 ms
      announce({ from: "hostile", deviceIds: ["long-1", "bad id", "a.b", 5, "x".repeat(65), "long-2"], ttlMs: 1e12 });
      await waitFor(() => there.watched("long-1") && there.watched("long-2"));
      for (const id of ["t-bad", "many-0", "bad id", "a.b", "5", "x".repeat(65)]) expect(there.watched(id), id).toBe(false);
      // the memory is bounded: two more devices, one room left
      announce({ from: "hostile", deviceIds: ["room-1", "room-2"], ttlMs: 1000 });
      await waitFor(() => there.watched("room-1"));
      expect(there.watched("room-2")).toBe(false);
      await waitFor(() => !there.watched("long-1") && !there.watched("room-1"), { timeoutMs: 2000 });
    } finally {
      there.close();
    }
  });
});
