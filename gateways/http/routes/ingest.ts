// POST /v1/devices/:id/readings: device id and token → per-device rate limit → body (JSON, Foobot datapoints
// or msgpack, size-limited) → the domain's validation → micro-batched publish → 202 after the PubAck.
// Order matters: authentication runs before the rate limit (so nobody can spend a device's budget
// without its token) and both run before the body is read.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { TwinApi } from "../../api/twin-api.ts";
import { GatewayError } from "../../errors.ts";
import type { AuthHooks } from "../auth.ts";
import { DeviceRateLimiter } from "../device-rate-limit.ts";
import { schemas } from "../schemas.ts";

export interface IngestOptions {
  bodyLimitBytes: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  rateLimitCacheSize: number;
}

/** The domain validates readings (every offending index and field); the schema only documents them. */
const documentOnly = () => (data: unknown) => ({ value: data });

export function registerIngestRoute(app: FastifyInstance, twins: TwinApi, auth: AuthHooks, o: IngestOptions): void {
  const limiter = new DeviceRateLimiter({ max: o.rateLimitMax, windowMs: o.rateLimitWindowMs, cacheSize: o.rateLimitCacheSize });
  const windowSeconds = Math.round(o.rateLimitWindowMs / 1000);
  const limit = (req: FastifyRequest): void => {
    const waitMs = limiter.hit((req.params as { id: string }).id);
    if (waitMs > 0) {
      const retryAfter = String(Math.max(1, Math.ceil(waitMs / 1000)));
      throw new GatewayError("INGEST_RATE_LIMITED", `more than ${o.rateLimitMax} requests for this device within ${windowSeconds} s; retry after ${retryAfter} s`, {
        headers: { "retry-after": retryAfter, "x-ratelimit-limit": String(o.rateLimitMax), "x-ratelimit-remaining": "0", "x-ratelimit-reset": retryAfter },
      });
    }
  };
  // One synchronous callback-style hook (a throw is fastify's error path): no promise per check — but
  // for a device the registry view does not know yet, which is looked up first.
  const admit = (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const lookup = auth.deviceSync(req);
    if (lookup === undefined) {
      limit(req);
      done();
      return;
    }
    lookup.then(() => limit(req)).then(() => done(), done);
  };
  app.post<{ Params: { id: string } }>(
    "/v1/devices/:id/readings",
    {
      schema: schemas.ingest,
      validatorCompiler: documentOnly,
      bodyLimit: o.bodyLimitBytes,
      onRequest: admit,
    },
    async (req, reply) => {
      const result = await twins.ingest(req.params.id, req.body);
      reply.code(202);
      return result;
    },
  );
}
