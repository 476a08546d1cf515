// The twin for apps (owner or admin): its state and commands (its history: history.ts).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, idempotencyKeyOf } from "../../api/idempotency-key.ts";
import type { Consistency, TwinApi } from "../../api/twin-api.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

type Params = { id: string };

export function registerTwinRoutes(app: FastifyInstance, twins: TwinApi, auth: AuthHooks): void {
  const owner = [auth.validDeviceId, auth.deviceOwner()];

  app.get<{ Params: Params; Querystring: { consistency?: Consistency } }>(
    "/v1/devices/:id",
    { schema: schemas.twin, onRequest: owner },
    async (req, reply) => {
      const { view, appliedSeq } = await twins.view(req.params.id, req.query.consistency);
      if (appliedSeq !== undefined) reply.header("airtwin-applied-seq", String(appliedSeq));
      return view;
    },
  );

  app.post<{ Params: Params }>(
    "/v1/devices/:id/commands",
    // the domain validates commands (naming each offending field); the schema only documents them
    { schema: schemas.command, validatorCompiler: () => (data: unknown) => ({ value: data }), onRequest: owner },
    async (req, reply) => {
      const idempotencyKey = idempotencyKeyOf(headerValues(req, IDEMPOTENCY_KEY_HEADER));
      const { result, replayed } = await twins.command(req.params.id, req.body, idempotencyKey === undefined ? {} : { idempotencyKey });
      if (replayed) reply.header(IDEMPOTENT_REPLAYED_HEADER, "true");
      return result;
    },
  );
}

/**
 * Every value a request header had. `req.headers` joins repeated unknown headers with ", " — which would
 * turn two keys into one valid-looking key — so repeats are counted in the raw headers.
 */
function headerValues(req: FastifyRequest, name: string): string[] {
  const lower = name.toLowerCase();
  if (req.headers[lower] === undefined) return [];
  const raw = req.raw.rawHeaders;
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === lower) values.push(raw[i + 1]!);
  return values;
}
