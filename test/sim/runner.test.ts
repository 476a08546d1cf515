// The runner against a real HTTP server standing in for a gateway that refuses: a 429 with Retry-After
// is waited out, a 503 is sent again, and what fell due meanwhile goes out in the next request (a
// backfill honouring the rate limit); every reading ends up stored exactly once, requests of one device
// keep their gap, and a 400 counts as rejected. The clock: a demo fleet catches up with the wall clock.
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { SimClock } from "../../sim/clock.ts";
import { CsvSource } from "../../sim/csv.ts";
import { HttpTransport } from "../../sim/http-transport.ts";
import { SimRunner } from "../../sim/runner.ts";

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

interface Received {
  deviceId: string;
  at: number;
  ts: number[];
  status: number;
}

/** A gateway stand-in: per device, the n-th request gets `script(deviceId, n)`. */
async function gateway(script: (deviceId: string, n: number) => number): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const counts = new Map<string, number>();
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const deviceId = /\/v1\/devices\/([^/]+)\/readings/.exec(req.url ?? "")![1]!;
      const n = (counts.get(deviceId) ?? 0) + 1;
      counts.set(deviceId, n);
      const status = script(deviceId, n);
      const ts = (JSON.parse(body) as { readings: Array<{ t: number }> }).readings.map((r) => r.t);
      received.push({ deviceId, at: Date.now(), ts, status });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (status === 429) headers["retry-after"] = "1";
      res.writeHead(status, headers);
      res.end(JSON.stringify(status === 202 ? { accepted: ts.length } : { statusCode: status, code: status === 400 ? "AIRTWIN_ERR_READING_INVALID" : "X", message: "scripted" }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  return { url: `http://127.0.0.1:${addr.port}`, received };
}

describe("SimRunner over HTTP", () => {
  it("waits out 429, resends after 503, batches what fell due, stores each reading once", { timeout: 30_000 }, async () => {
    const gw = await gateway((_id, n) => (n === 1 ? 429 : n === 2 ? 503 : 202));
    const readings = Array.from({ length: 2500 }, (_, i) => ({ t: 1_700_000_000_000 + i * 60_000, co2: 500 + (i % 300) }));
    const ids = ["a", "b"];
    const transport = new HttpTransport({ gatewayUrl: gw.url, tokens: new Map(ids.map((id) => [id, "tok"])), connections: 4 });
    const runner = new SimRunner({ source: new CsvSource({ readings, deviceIds: ids, paced: false }), transport, clock: new SimClock({ startEventMs: 0, speed: 1 }), minRequestGapMs: 200 });
    const stats = await runner.run();
    await transport.close();
    expect(stats).toMatchObject({ sent: 5000, accepted: 5000, rejected: 0, pending: 0 });
    expect(stats.retriedByCode).toEqual({ X: 4000 }); // each device: a 429 and a 503 of a 1000-reading batch
    for (const id of ids) {
      const mine = gw.received.filter((r) => r.deviceId === id);
      const stored = mine.filter((r) => r.status === 202).flatMap((r) => r.ts);
      expect(stored).toEqual(readings.map((r) => r.t)); // all, once, in order
      expect(mine.every((r) => r.ts.length <= 1000)).toBe(true);
      expect(mine[1]!.at - mine[0]!.at).toBeGreaterThanOrEqual(950); // Retry-After: 1
      for (let i = 2; i < mine.length; i++) expect(mine[i]!.at - mine[i - 1]!.at).toBeGreaterThanOrEqual(150);
    }
  });

  it("counts a 400 as rejected, by code, and goes on with the next readings", { timeout: 30_000 }, async () => {
    const gw = await gateway((id) => (id === "bad" ? 400 : 202));
    const readings = Array.from({ length: 10 }, (_, i) => ({ t: 1_700_000_000_000 + i * 60_000, co2: 500 }));
    const transport = new HttpTransport({ gatewayUrl: gw.url, tokens: new Map([["ok", "t"], ["bad", "t"]]) });
    const runner = new SimRunner({ source: new CsvSource({ readings, deviceIds: ["ok", "bad"], paced: false }), transport, clock: new SimClock({ startEventMs: 0, speed: 1 }), minRequestGapMs: 0, maxReadingsPerRequest: 4 });
    const stats = await runner.run();
    await transport.close();
    expect(stats).toMatchObject({ sent: 20, accepted: 10, rejected: 10, rejectedByCode: { AIRTWIN_ERR_READING_INVALID: 10 } });
    expect(stats.lastRejection).toContain("bad: 400 AIRTWIN_ERR_READING_INVALID");
    expect(gw.received.filter((r) => r.deviceId === "bad").map((r) => r.ts.length)).toEqual([4, 4, 2]);
  });
});

describe("SimClock", () => {
  it("runs event time `speed` times faster, and with catch-up follows the wall clock once it reaches it", () => {
    const w0 = 1_000_000_000;
    let wall = w0;
    const clock = new SimClock({ startEventMs: w0 - 3_600_000, speed: 288, catchUp: true, now: () => wall });
    wall = w0 + 10_000;
    expect(clock.eventNow()).toBe(w0 - 3_600_000 + 2_880_000);
    expect(clock.live).toBe(false);
    expect(clock.wallAt(w0 - 3_600_000 + 2_880_000 + 288_000)).toBe(w0 + 11_000); // 1 s later at 288×
    expect(clock.wallAt(w0 + 20_000)).toBe(w0 + 20_000); // past the catch-up: when the wall clock gets there
    wall = w0 + 15_000; // 1.2 h of event time: past the wall clock
    expect(clock.eventNow()).toBe(wall);
    expect(clock.live).toBe(true);
    wall += 1_000;
    expect(clock.eventNow()).toBe(wall);
    const plain = new SimClock({ startEventMs: 0, speed: 2, now: () => wall });
    wall += 500;
    expect(plain.eventNow()).toBe(1000);
  });
});
