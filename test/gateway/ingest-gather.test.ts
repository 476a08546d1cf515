// The gather gap through the gateway, over a real nats-server and node: a stream's messages leave at
// least gatherMs apart, but a request whose readings alone reach gatherReadings does not wait the gap
// (the gateway weighs each request by its readings). The gap is long here so that the two cases cannot
// be confused by a slow machine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { GatewayFixture } from "./fixture.ts";

const GAP_MS = 1500;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

let server: TestNatsServer;
let f: GatewayFixture;
let headers: Record<string, string>;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server, { gather: { gatherMs: GAP_MS, gatherReadings: 5 } });
  await f.ready();
  await f.user("gather-owner");
  headers = (await f.device("dev-g", "gather-owner")).headers;
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

async function timedPost(readings: number, from: number): Promise<number> {
  const started = performance.now();
  const r = await f.app.inject({
    method: "POST",
    url: "/v1/devices/dev-g/readings",
    headers: { ...headers, "content-type": "application/json" },
    payload: JSON.stringify({ readings: Array.from({ length: readings }, (_, i) => ({ t: T0 + (from + i) * 60_000, pm: 5 })) }),
  });
  expect(r.statusCode).toBe(202);
  expect(r.json()).toEqual({ accepted: readings });
  return performance.now() - started;
}

describe("ingest gathering", () => {
  it("holds a light request for the gap after the stream's last message, and lets a request of gatherReadings readings leave at once", async () => {
    await timedPost(1, 0); // the stream's first message: leaves at once, starts the gap
    expect(await timedPost(1, 1)).toBeGreaterThanOrEqual(GAP_MS - 100);
    expect(await timedPost(10, 2)).toBeLessThan(GAP_MS / 2);
  });
});
