// POST /v1/devices/:id/readings through app.inject() against a real nats-server and node: the three
// encodings, device auth that does not reveal whether a device exists, every validation failure with
// its details, 413 (readings and bytes), 415, 429, and 503 when the input is not stored.
import { pack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { PublishError } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer, errorOf, GatewayFixture } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;
let token: string;
let owner: { apiKey: string; headers: Record<string, string> };

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const msgpack = (v: unknown) => pack(v);

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
  owner = await f.user("ingest-owner");
  token = (await f.device("dev-a", "ingest-owner")).token;
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

const post = (id: string, payload: unknown, headers: Record<string, string> = bearer(token), contentType = "application/json") =>
  f.app.inject({
    method: "POST",
    url: `/v1/devices/${id}/readings`,
    headers: { ...headers, "content-type": contentType },
    payload: typeof payload === "string" || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
  });

async function twin(id: string): Promise<TwinView> {
  const r = await f.app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: owner.headers });
  expect(r.statusCode).toBe(200);
  return r.json<TwinView>();
}

describe("ingest", () => {
  it("accepts JSON readings (sorted by t), the Foobot datapoints shape and msgpack; all reach the twin", async () => {
    const dev = await f.device("dev-enc", "ingest-owner");
    const json = await post("dev-enc", { readings: [{ t: T0 + 2000, pm: 20 }, { t: T0, pm: 10, co2: 600 }] }, dev.headers);
    expect(json.statusCode).toBe(202);
    expect(json.json()).toEqual({ accepted: 2 });

    const foobot = await post(
      "dev-enc",
      { sensors: ["time", "pm", "tmp", "co2"], units: ["s", "ugm3", "F", "ppm"], datapoints: [[(T0 + 3000) / 1000, 30, 68, 700]] },
      { "x-api-key-token": dev.token },
    );
    expect(foobot.statusCode).toBe(202);
    expect(foobot.json()).toEqual({ accepted: 1 });

    const mp = await post("dev-enc", msgpack({ readings: [{ t: T0 + 4000, pm: 40, hum: 45.5 }] }), dev.headers, "application/msgpack");
    expect(mp.statusCode).toBe(202);
    expect(mp.json()).toEqual({ accepted: 1 });

    const view = await waitFor(async () => {
      const v = await twin("dev-enc");
      return v.readings === 4 ? v : undefined;
    });
    // sorted before logging: nothing counted late
    expect(view.late).toBe(0);
    expect(view.channels.pm).toMatchObject({ count: 4, min: 10, max: 40, last: 40, lastAt: T0 + 4000, mean: 25 });
    expect(view.channels.tmp?.last).toBeCloseTo(20, 10); // 68 °F
    expect(view.channels.co2).toMatchObject({ count: 2, min: 600, max: 700 });
    expect(view.channels.hum).toMatchObject({ count: 1, last: 45.5 });
  });

  it("counts a resent reading as a duplicate, not twice", async () => {
    const dev = await f.device("dev-dup", "ingest-owner");
    const body = { readings: [{ t: T0, pm: 5 }] };
    expect((await post("dev-dup", body, dev.headers)).statusCode).toBe(202);
    expect((await post("dev-dup", body, dev.headers)).statusCode).toBe(202);
    const v = await waitFor(async () => {
      const x = await twin("dev-dup");
      return x.readings + x.duplicates === 2 ? x : undefined;
    });
    expect(v.readings).toBe(1);
    expect(v.duplicates).toBe(1);
    expect(v.channels.pm?.count).toBe(1);
  });

  it("answers an empty batch with 202 and 0 accepted", async () => {
    const r = await post("dev-a", { readings: [] });
    expect(r.statusCode).toBe(202);
    expect(r.json()).toEqual({ accepted: 0 });
  });

  describe("authentication", () => {
    it("gives the same 401 for no token, a wrong token, another device's token, an unknown device, and the admin token", async () => {
      const other = await f.device("dev-other", "ingest-owner");
      const body = { readings: [{ t: T0, pm: 1 }] };
      const answers = [
        await post("dev-a", body, {}),
        await post("dev-a", body, bearer("wrong-token")),
        await post("dev-a", body, bearer(other.token)),
        await post("dev-a", body, { "x-api-key-token": "wrong" }),
        await post("no-such-device", body, bearer(token)),
        await post("no-such-device", body, bearer("wrong-token")),
        await post("dev-a", body, admin),
      ];
      const bodies = answers.map((r) => {
        expect(r.statusCode).toBe(401);
        expect(r.headers["www-authenticate"]).toMatch(/^Bearer/);
        return errorOf(r);
      });
      for (const b of bodies) expect(b).toEqual(bodies[0]);
      expect(bodies[0]!.code).toBe("AIRTWIN_ERR_AUTH_UNAUTHORIZED");
    });

    it("refuses the token of a disabled device (same 401) and takes it again once re-enabled", async () => {
      const dev = await f.device("dev-dis", "ingest-owner");
      const body = { readings: [{ t: T0, pm: 1 }] };
      const off = await f.app.inject({ method: "PATCH", url: "/v1/devices/dev-dis", headers: admin, payload: { disabled: true } });
      expect(off.statusCode).toBe(200);
      expect(off.json()).toMatchObject({ deviceId: "dev-dis", disabled: true });
      const refused = await post("dev-dis", body, dev.headers);
      expect(refused.statusCode).toBe(401);
      expect(errorOf(refused)).toEqual(errorOf(await post("never-registered", body, dev.headers)));
      await f.app.inject({ method: "PATCH", url: "/v1/devices/dev-dis", headers: admin, payload: { disabled: false } });
      expect((await post("dev-dis", body, dev.headers)).statusCode).toBe(202);
    });

    it("rejects an invalid device id with 400 before anything else", async () => {
      const r = await post("bad.id", { readings: [] }, {});
      expect(r.statusCode).toBe(400);
      expect(errorOf(r)).toMatchObject({ code: "AIRTWIN_ERR_DEVICE_ID_INVALID", details: [{ field: "deviceId" }] });
      const long = await post("x".repeat(65), { readings: [] }, {});
      expect(errorOf(long).code).toBe("AIRTWIN_ERR_DEVICE_ID_INVALID");
    });
  });

  describe("validation: the whole request is refused, every offending index and field named", () => {
    const cases: Array<[string, unknown, string, Array<{ index?: number; field: string }>]> = [
      ["t missing", { readings: [{ pm: 1 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "t" }]],
      ["t not a number", { readings: [{ t: "now", pm: 1 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "t" }]],
      ["t not an integer", { readings: [{ t: 1.5, pm: 1 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "t" }]],
      ["t negative", { readings: [{ t: -1, pm: 1 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "t" }]],
      ["t after 2200", { readings: [{ t: 8e12, pm: 1 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "t" }]],
      ["value out of range", { readings: [{ t: T0, pm: 1001 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "pm" }]],
      ["value below range", { readings: [{ t: T0, tmp: -41 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "tmp" }]],
      ["value not a number", { readings: [{ t: T0, co2: "high" }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "co2" }]],
      ["unknown channel", { readings: [{ t: T0, pm: 1, radon: 3 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "radon" }]],
      ["no channel", { readings: [{ t: T0 }] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "reading" }]],
      ["reading not an object", { readings: [42] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "reading" }]],
      ["readings not an array", { readings: { t: T0 } }, "AIRTWIN_ERR_READING_INVALID", [{ field: "readings" }]],
      ["unknown top-level field", { readings: [], extra: 1 }, "AIRTWIN_ERR_READING_INVALID", [{ field: "extra" }]],
      ["neither shape", { values: [] }, "AIRTWIN_ERR_READING_INVALID", [{ field: "readings" }]],
      ["body not an object", [1, 2], "AIRTWIN_ERR_READING_INVALID", [{ field: "body" }]],
      ["Foobot: unknown sensor", { sensors: ["time", "radon"], datapoints: [[1, 2]] }, "AIRTWIN_ERR_FOOBOT_SHAPE_INVALID", [{ field: "sensors[1]" }]],
      ["Foobot: no time", { sensors: ["pm"], datapoints: [[1]] }, "AIRTWIN_ERR_FOOBOT_SHAPE_INVALID", [{ field: "sensors" }]],
      ["Foobot: ragged datapoint", { sensors: ["time", "pm"], datapoints: [[1]] }, "AIRTWIN_ERR_FOOBOT_SHAPE_INVALID", [{ index: 0, field: "datapoints" }]],
      ["Foobot: bad tmp unit", { sensors: ["time", "tmp"], units: ["s", "K"], datapoints: [[1, 2]] }, "AIRTWIN_ERR_FOOBOT_SHAPE_INVALID", [{ field: "units[1]" }]],
      ["Foobot: value out of range", { sensors: ["time", "hum"], datapoints: [[T0 / 1000, 101]] }, "AIRTWIN_ERR_READING_INVALID", [{ index: 0, field: "hum" }]],
    ];
    it.each(cases)("%s", async (_name, body, code, details) => {
      const r = await post("dev-a", body);
      expect(r.statusCode).toBe(400);
      const e = errorOf(r);
      expect(e.code).toBe(code);
      expect(e.details).toEqual(details.map((d) => expect.objectContaining(d)));
    });

    it("names every bad reading of a batch (and accepts none of it)", async () => {
      const dev = await f.device("dev-batch", "ingest-owner");
      const r = await post("dev-batch", { readings: [{ t: T0, pm: 1 }, { t: T0 + 1, pm: -1 }, { t: T0 + 2, pm: 2 }, { t: "x", voc: 1e9 }] }, dev.headers);
      expect(r.statusCode).toBe(400);
      const e = errorOf(r);
      expect(e.message).toBe("2 of 4 readings are invalid");
      expect(e.details).toEqual([
        expect.objectContaining({ index: 1, field: "pm" }),
        expect.objectContaining({ index: 3, field: "t" }),
        expect.objectContaining({ index: 3, field: "voc" }),
      ]);
      expect((await twin("dev-batch")).readings).toBe(0);
    });

    it("refuses non-finite values that msgpack can carry", async () => {
      const r = await post("dev-a", msgpack({ readings: [{ t: T0, pm: Number.NaN, co2: Number.POSITIVE_INFINITY }] }), bearer(token), "application/msgpack");
      expect(r.statusCode).toBe(400);
      expect(errorOf(r).details).toEqual([expect.objectContaining({ index: 0, field: "pm" }), expect.objectContaining({ index: 0, field: "co2" })]);
    });

    it("answers malformed JSON and malformed msgpack with 400, other content types with 415", async () => {
      const badJson = await post("dev-a", '{"readings": [', bearer(token));
      expect(badJson.statusCode).toBe(400);
      expect(errorOf(badJson).code).toBe("AIRTWIN_ERR_HTTP_BODY_INVALID");
      const emptyJson = await post("dev-a", "", bearer(token));
      expect(errorOf(emptyJson).code).toBe("AIRTWIN_ERR_HTTP_BODY_INVALID");
      const badMp = await post("dev-a", Buffer.from([0x82, 0xa8, 0x72]), bearer(token), "application/msgpack");
      expect(badMp.statusCode).toBe(400);
      expect(errorOf(badMp).code).toBe("AIRTWIN_ERR_CODEC_DECODE");
      const text = await post("dev-a", "t=1", bearer(token), "text/plain");
      expect(text.statusCode).toBe(415);
      expect(errorOf(text).code).toBe("AIRTWIN_ERR_HTTP_CONTENT_TYPE");
    });
  });

  describe("limits", () => {
    it("refuses more than 1000 readings (and datapoints) with 413", async () => {
      const readings = Array.from({ length: 1001 }, (_, i) => ({ t: T0 + i, pm: 1 }));
      const r = await post("dev-a", { readings });
      expect(r.statusCode).toBe(413);
      expect(errorOf(r).code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
      const fb = await post("dev-a", { sensors: ["time", "pm"], datapoints: readings.map((x) => [x.t / 1000, 1]) });
      expect(fb.statusCode).toBe(413);
      expect(errorOf(fb).code).toBe("AIRTWIN_ERR_READINGS_TOO_MANY");
      const ok = await post("dev-a", { readings: readings.slice(0, 1000) });
      expect(ok.statusCode).toBe(202);
      expect(ok.json()).toEqual({ accepted: 1000 });
    });

    it("refuses a body over the byte limit with 413, before reading it", async () => {
      const big = JSON.stringify({ readings: [{ t: T0, pm: 1 }], pad: "x".repeat(600 * 1024) });
      const r = await post("dev-a", big);
      expect(r.statusCode).toBe(413);
      expect(errorOf(r).code).toBe("AIRTWIN_ERR_HTTP_BODY_TOO_LARGE");
    });

    it("limits requests per device (429 with Retry-After), per device and only with a valid token", async () => {
      const app = await f.buildApp({ options: { rateLimitMax: 3, rateLimitWindowMs: 60_000 } });
      const d1 = await f.device("dev-rl1", "ingest-owner");
      const d2 = await f.device("dev-rl2", "ingest-owner");
      const send = (id: string, headers: Record<string, string>) =>
        app.inject({ method: "POST", url: `/v1/devices/${id}/readings`, headers: { ...headers, "content-type": "application/json" }, payload: { readings: [] } });
      // an attacker without the token cannot spend the device's budget
      for (let i = 0; i < 5; i++) expect((await send("dev-rl1", bearer("wrong"))).statusCode).toBe(401);
      for (let i = 0; i < 3; i++) expect((await send("dev-rl1", d1.headers)).statusCode).toBe(202);
      const limited = await send("dev-rl1", d1.headers);
      expect(limited.statusCode).toBe(429);
      expect(errorOf(limited).code).toBe("AIRTWIN_ERR_INGEST_RATE_LIMITED");
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      expect((await send("dev-rl2", d2.headers)).statusCode).toBe(202);
    });
  });

  describe("503 when the input is not stored", () => {
    it("answers 503 with Retry-After when JetStream does not confirm, and 503 while NATS is disconnected", async () => {
      const client = f.parts.client;
      const notStored = new PublishError("no ack within 2000 ms", 0, true);
      const failing = await f.buildApp({
        twins: f.twinApi({
          backend: {
            send: () => Promise.reject(notStored),
            command: (...a) => client.command(...a),
            get: (...a) => client.get(...a),
            getSnapshot: (...a) => client.getSnapshot(...a),
          },
        }),
      });
      const r = await failing.inject({ method: "POST", url: "/v1/devices/dev-a/readings", headers: { ...bearer(token), "content-type": "application/json" }, payload: { readings: [{ t: T0, pm: 1 }] } });
      expect(r.statusCode).toBe(503);
      expect(r.headers["retry-after"]).toBe("1");
      expect(errorOf(r).code).toBe("AIRTWIN_ERR_INPUT_NOT_STORED");

      const down = await f.buildApp({ twins: f.twinApi({ connected: () => false }) });
      const d = await down.inject({ method: "POST", url: "/v1/devices/dev-a/readings", headers: { ...bearer(token), "content-type": "application/json" }, payload: { readings: [{ t: T0, pm: 1 }] } });
      expect(d.statusCode).toBe(503);
      expect(d.headers["retry-after"]).toBe("1");
      expect(errorOf(d).code).toBe("AIRTWIN_ERR_NATS_UNAVAILABLE");
    });
  });

  it("counts accepted and rejected readings, batch sizes and ack latency in /metrics", async () => {
    const m = await f.app.inject({ method: "GET", url: "/metrics" });
    expect(m.statusCode).toBe(200);
    const text = m.body;
    expect(text).toMatch(/^airtwin_gateway_readings_accepted_total [1-9]\d*$/m);
    expect(text).toMatch(/^airtwin_gateway_readings_rejected_total\{code="AIRTWIN_ERR_READING_INVALID"\} [1-9]/m);
    expect(text).toMatch(/^airtwin_gateway_ingest_batch_readings_count [1-9]/m);
    expect(text).toMatch(/^airtwin_gateway_publish_ack_seconds_count [1-9]/m);
    expect(text).toMatch(/^airtwin_gateway_http_request_duration_seconds_count\{route="\/v1\/devices\/:id\/readings",method="POST",status="202"\} [1-9]/m);
    expect(text).toMatch(/airtwin_gateway_nats_reconnects_total 0/);
  });
});
