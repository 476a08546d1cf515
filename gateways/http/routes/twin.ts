// The twin for apps (owner or admin): its state, aggregates, events, alerts, and commands.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, idempotencyKeyOf } from "../../api/idempotency-key.ts";
import type { Consistency, TwinApi } from "../../api/twin-api.ts";
import type { RegistryApi } from "../app.ts";
import { GatewayError } from "../../errors.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

type Params = { id: string };
type TimeQuery = { from?: string; to?: string };

/** Default window of the alerts and events routes: the last 24 hours. */
const DEFAULT_WINDOW_MS = 24 * 3_600_000;

/** Parses a time query parameter: epoch ms or an ISO 8601 date-time. */
export function parseTime(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const ms = /^-?\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new GatewayError("HTTP_QUERY_INVALID", `${field} must be epoch milliseconds or an ISO 8601 date-time`, {
      details: [{ field, message: `cannot read ${JSON.stringify(value)} as a time` }],
    });
  }
  return ms;
}

function window(q: TimeQuery, defaultFrom?: number): { fromMs: number | undefined; toMs: number | undefined } {
  const fromMs = parseTime("from", q.from) ?? defaultFrom;
  const toMs = parseTime("to", q.to);
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) {
    throw new GatewayError("HTTP_QUERY_INVALID", "to must be after from", { details: [{ field: "to", message: "must be after from" }] });
  }
  return { fromMs, toMs };
}

export function registerTwinRoutes(app: FastifyInstance, twins: TwinApi, auth: AuthHooks, registry: Pick<RegistryApi, "device">): void {
  const owner = [auth.validDeviceId, auth.deviceOwner()];
  // alerts stored before this registration belong to an earlier device with the same id
  const registeredAt = (id: string) => registry.device(id)?.createdAt ?? 0;

  app.get<{ Params: Params; Querystring: { consistency?: Consistency } }>(
    "/v1/devices/:id",
    { schema: schemas.twin, onRequest: owner },
    async (req, reply) => {
      const { view, appliedSeq } = await twins.view(req.params.id, req.query.consistency);
      if (appliedSeq !== undefined) reply.header("airtwin-applied-seq", String(appliedSeq));
      return view;
    },
  );

  app.get<{ Params: Params; Querystring: TimeQuery & { resolution?: "hour" | "day"; consistency?: Consistency } }>(
    "/v1/devices/:id/aggregates",
    { schema: schemas.aggregates, onRequest: owner },
    async (req) => {
      const { fromMs, toMs } = window(req.query);
      return twins.aggregates(req.params.id, {
        resolution: req.query.resolution ?? "hour",
        ...(fromMs === undefined ? {} : { fromMs }),
        ...(toMs === undefined ? {} : { toMs }),
        ...(req.query.consistency === undefined ? {} : { consistency: req.query.consistency }),
      });
    },
  );

  app.get<{ Params: Params; Querystring: TimeQuery & { limit?: number; consistency?: Consistency } }>(
    "/v1/devices/:id/events",
    { schema: schemas.events, onRequest: owner },
    async (req) => {
      const { fromMs, toMs } = window(req.query, Date.now() - DEFAULT_WINDOW_MS);
      return twins.events(req.params.id, {
        fromMs: fromMs as number,
        registeredAt: registeredAt(req.params.id),
        ...(toMs === undefined ? {} : { toMs }),
        limit: req.query.limit ?? 1000,
        ...(req.query.consistency === undefined ? {} : { consistency: req.query.consistency }),
      });
    },
  );

  app.get<{ Params: Params; Querystring: TimeQuery & { limit?: number } }>(
    "/v1/devices/:id/alerts",
    { schema: schemas.alerts, onRequest: owner },
    async (req) => {
      const { fromMs, toMs } = window(req.query, Date.now() - DEFAULT_WINDOW_MS);
      return twins.alerts(req.params.id, { fromMs: fromMs as number, registeredAt: registeredAt(req.params.id), ...(toMs === undefined ? {} : { toMs }), limit: req.query.limit ?? 1000 });
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
