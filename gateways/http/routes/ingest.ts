// POST /v1/devices/:id/readings: device token → per-device rate limit → body (JSON, Foobot datapoints
// or msgpack, size-limited) → the domain's validation → micro-batched publish → 202 after the PubAck.
// Order matters: authentication runs before the rate limit (so nobody can spend a device's budget
// without its token) and both run before the body is read.
import type { FastifyInstance } from "fastify";
import type { TwinApi } from "../../api/twin-api.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

export interface IngestOptions {
  bodyLimitBytes: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
}

/** The domain validates readings (every offending index and field); the schema only documents them. */
const documentOnly = () => (data: unknown) => ({ value: data });

export function registerIngestRoute(app: FastifyInstance, twins: TwinApi, auth: AuthHooks, o: IngestOptions): void {
  app.post<{ Params: { id: string } }>(
    "/v1/devices/:id/readings",
    {
      schema: schemas.ingest,
      validatorCompiler: documentOnly,
      bodyLimit: o.bodyLimitBytes,
      onRequest: [auth.validDeviceId, auth.device],
      config: {
        rateLimit: {
          max: o.rateLimitMax,
          timeWindow: o.rateLimitWindowMs,
          hook: "preParsing",
          keyGenerator: (req) => `device:${(req.params as { id: string }).id}`,
        },
      },
    },
    async (req, reply) => {
      const result = await twins.ingest(req.params.id, req.body);
      reply.code(202);
      return result;
    },
  );
}
