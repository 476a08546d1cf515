// The Redis-centric peer's front door (`npm run bench -- peers --systems redis-http`): the service a team
// would put before the Lua script once its devices post over HTTP, as airtwin's devices post to its
// gateway — so the two are compared with the same door. Built as such a team would, with fastify's
// documented defaults:
// - POST /v1/devices/:id/readings, `Authorization: Bearer <token>`: the token's SHA-256 compared in
//   constant time with the device's digest, kept in memory (loaded from Redis at start, as airtwin's
//   gateway keeps its registry's view) — 401 otherwise;
// - the body checked by a JSON schema (fastify's compiled validator): a list of 1–1,000 readings, each
//   an integer time and the six channels within their ranges (design §4) — 400 otherwise;
// - the readings applied by the peer's Lua script (one EVALSHA a request over one auto-pipelined
//   node-redis connection), 202 once Redis replied (in its AOF, fsync within 1 s);
// - POST /v1/devices (the bench's registration): a new token, its digest stored in Redis and in memory.
// Left out, in Redis's favour: airtwin's per-device rate limit, msgpack bodies, and the domain's finer
// checks (a reading's time against the device's last and the clock).
// Run by bench/peers/redis.ts as a process of its own: `peers/redis-http-service --redis-port P --port Q`.
import { randomBytes, timingSafeEqual } from "node:crypto";
import Fastify from "fastify";
import { createClient } from "redis";
import { CHANNEL_RANGES, CHANNELS, type Reading } from "../../actors/device-twin/domain/types.ts";
import { sha256 } from "../../gateways/registry/secrets.ts";
import { int, parseArgs } from "../lib/args.ts";
import { ingestScript, scriptArgs } from "./redis.ts";

const TOKENS = "tokens"; // hash: device id → hex SHA-256 of its token

const reading = {
  type: "object",
  required: ["t"],
  properties: { t: { type: "integer" }, ...Object.fromEntries(CHANNELS.map((c) => [c, { type: "number", minimum: CHANNEL_RANGES[c].min, maximum: CHANNEL_RANGES[c].max }])) },
  additionalProperties: false,
};
const ingestSchema = {
  params: { type: "object", properties: { id: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } } },
  body: { type: "object", required: ["readings"], properties: { readings: { type: "array", minItems: 1, maxItems: 1000, items: reading } }, additionalProperties: false },
};

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const redis = createClient({ url: `redis://127.0.0.1:${int(args, "redis-port", 6379)}`, scripts: { ingest: ingestScript } });
  await redis.connect();
  const digests = new Map<string, Buffer>();
  for (const [id, hex] of Object.entries(await redis.hGetAll(TOKENS))) digests.set(id, Buffer.from(hex, "hex"));

  const app = Fastify({ logger: false });
  app.post<{ Body: { deviceId: string } }>("/v1/devices", { schema: { body: { type: "object", required: ["deviceId"], properties: { deviceId: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } } } } }, async (req) => {
    const token = randomBytes(32).toString("base64url");
    const digest = sha256(token);
    await redis.hSet(TOKENS, req.body.deviceId, digest.toString("hex"));
    digests.set(req.body.deviceId, digest);
    return { deviceId: req.body.deviceId, token };
  });
  app.post<{ Params: { id: string }; Body: { readings: Reading[] } }>(
    "/v1/devices/:id/readings",
    {
      schema: ingestSchema,
      // before the body is read: nobody without the device's token gets to send one
      onRequest: (req, reply, done) => {
        const auth = req.headers.authorization;
        const known = digests.get((req.params as { id: string }).id);
        if (known === undefined || auth === undefined || !auth.startsWith("Bearer ") || !timingSafeEqual(sha256(auth.slice(7)), known)) {
          void reply.code(401).send({ code: "UNAUTHORIZED", message: "unknown device or wrong token" });
          return;
        }
        done();
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const events = await redis.ingest(`dev:{${id}}`, `ev:{${id}}`, scriptArgs(req.body.readings));
      reply.code(202);
      return { readings: req.body.readings.length, events: Number(events) };
    },
  );
  const address = await app.listen({ port: int(args, "port", 0), host: "127.0.0.1" });
  process.stdout.write(`redis-http-service listening on ${address}\n`);
  const close = () => void app.close().then(() => redis.quit()).then(() => process.exit(0));
  process.once("SIGTERM", close);
  process.once("SIGINT", close);
}
