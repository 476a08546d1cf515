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

/** An RFC 3339 date-time with its zone (`2026-03-01T12:00:00Z`, `…T12:00:00.5+01:00`), or a date (`2026-03-01`, UTC midnight). */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/** The epoch ms of a strict ISO 8601 time, or undefined when it is not one or names no real instant (Feb 30, 25:00). */
function isoToMs(value: string): number | undefined {
  const m = ISO_TIME.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const offsetMin = m[8] === undefined || m[8] === "Z" ? 0 : (m[8].startsWith("-") ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  if (month! < 1 || month! > 12 || hour > 23 || minute > 59 || second > 59 || Number(m[9] ?? 0) > 23 || Number(m[10] ?? 0) > 59) return undefined;
  const utc = Date.UTC(year!, month! - 1, day!, hour, minute, second, ms);
  // Date.UTC rolls Feb 30 over into March: a day the month does not have is refused
  if (new Date(utc).getUTCDate() !== day) return undefined;
  return utc - offsetMin * 60_000;
}

/**
 * Parses a time query parameter: epoch milliseconds (digits only) or an ISO 8601 date-time with its zone
 * (or a date, meaning UTC midnight). Nothing lenient: `Date.parse` would read "foo 1" as the year 2001.
 */
export function parseTime(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const ms = /^\d{1,16}$/.test(value) ? Number(value) : isoToMs(value);
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 0) {
    throw new GatewayError("HTTP_QUERY_INVALID", `${field} must be epoch milliseconds or an ISO 8601 date-time with a zone (2026-03-01T12:00:00Z)`, {
      details: [{ field, message: `cannot read ${JSON.stringify(value.slice(0, 64))} as a time` }],
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
