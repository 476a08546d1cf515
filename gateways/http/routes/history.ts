// A device's history for apps (owner or admin), spanning the twin and the archive (api/history-api.ts):
// aggregates, events, alerts, reports, raw readings (JSON pages or CSV); and the archive's status for
// ops (admin). Times are epoch ms or strict ISO 8601; `from`/`to` outside that, or `to <= from`, are a
// coded 400 before anything is asked.
import type { FastifyInstance } from "fastify";
import type { HistoryApi } from "../../api/history-api.ts";
import type { Consistency } from "../../api/twin-api.ts";
import { GatewayError } from "../../errors.ts";
import type { RegistryApi } from "../app.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

type Params = { id: string };
type TimeQuery = { from?: string; to?: string };
type PageQuery = TimeQuery & { limit?: number; cursor?: string };

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

/** Columns of the readings CSV (also `airtwin archive export`). */
export const READINGS_CSV_COLUMNS = ["t", "pm", "co2", "voc", "tmp", "hum", "allpollu", "accepted_at", "late", "repeats"] as const;

/** One CSV line of an archived reading (numbers as JavaScript prints them; empty when absent). */
export function readingCsvLine(r: Record<string, unknown>, deviceId?: string): string {
  const cells = READINGS_CSV_COLUMNS.map((c) => {
    const v = c === "accepted_at" ? r.acceptedAt : r[c];
    return v === undefined || v === null ? (c === "late" ? "false" : c === "repeats" ? "0" : "") : String(v);
  });
  return `${deviceId === undefined ? "" : `${deviceId},`}${cells.join(",")}\n`;
}

export function registerHistoryRoutes(app: FastifyInstance, history: HistoryApi, auth: AuthHooks, registry: Pick<RegistryApi, "device">): void {
  const owner = [auth.validDeviceId, auth.deviceOwner()];
  // outputs stored before this registration belong to an earlier device with the same id
  const registeredAt = (id: string) => registry.device(id)?.createdAt ?? 0;
  const opt = <K extends string, V>(key: K, v: V | undefined) => (v === undefined ? {} : ({ [key]: v } as { [P in K]: V }));

  app.get<{ Params: Params; Querystring: PageQuery & { resolution?: "hour" | "day"; consistency?: Consistency } }>(
    "/v1/devices/:id/aggregates",
    { schema: schemas.aggregates, onRequest: owner },
    async (req) => {
      const { fromMs, toMs } = window(req.query);
      return history.aggregates(req.params.id, {
        resolution: req.query.resolution ?? "hour",
        limit: req.query.limit ?? 1000,
        ...opt("fromMs", fromMs),
        ...opt("toMs", toMs),
        ...opt("cursor", req.query.cursor),
        ...opt("consistency", req.query.consistency),
      });
    },
  );

  app.get<{ Params: Params; Querystring: PageQuery & { consistency?: Consistency } }>(
    "/v1/devices/:id/events",
    { schema: schemas.events, onRequest: owner },
    async (req) => {
      const { fromMs, toMs } = window(req.query, Date.now() - DEFAULT_WINDOW_MS);
      return history.events(req.params.id, {
        fromMs: fromMs as number,
        registeredAt: registeredAt(req.params.id),
        limit: req.query.limit ?? 1000,
        ...opt("toMs", toMs),
        ...opt("cursor", req.query.cursor),
        ...opt("consistency", req.query.consistency),
      });
    },
  );

  app.get<{ Params: Params; Querystring: PageQuery }>("/v1/devices/:id/alerts", { schema: schemas.alerts, onRequest: owner }, async (req) => {
    const { fromMs, toMs } = window(req.query, Date.now() - DEFAULT_WINDOW_MS);
    return history.alerts(req.params.id, {
      fromMs: fromMs as number,
      registeredAt: registeredAt(req.params.id),
      limit: req.query.limit ?? 1000,
      ...opt("toMs", toMs),
      ...opt("cursor", req.query.cursor),
    });
  });

  app.get<{ Params: Params; Querystring: PageQuery & { period?: "day" | "week" } }>("/v1/devices/:id/reports", { schema: schemas.reports, onRequest: owner }, async (req) => {
    const { fromMs, toMs } = window(req.query);
    return history.reports(req.params.id, {
      period: req.query.period ?? "day",
      registeredAt: registeredAt(req.params.id),
      limit: req.query.limit ?? 1000,
      ...opt("fromMs", fromMs),
      ...opt("toMs", toMs),
      ...opt("cursor", req.query.cursor),
    });
  });

  app.get<{ Params: Params; Querystring: PageQuery }>("/v1/devices/:id/readings", { schema: schemas.readings, onRequest: owner }, async (req, reply) => {
    const { fromMs, toMs } = window(req.query);
    const page = await history.readings(req.params.id, { limit: req.query.limit ?? 1000, ...opt("fromMs", fromMs), ...opt("toMs", toMs), ...opt("cursor", req.query.cursor) });
    if (!wantsCsv(req.headers.accept)) return page;
    if (page.next !== undefined) reply.header("airtwin-next-cursor", page.next);
    reply.type("text/csv; charset=utf-8");
    return `${READINGS_CSV_COLUMNS.join(",")}\n${page.readings.map((r) => readingCsvLine(r)).join("")}`;
  });

  app.get("/v1/ops/archive", { schema: schemas.opsArchive, onRequest: auth.admin }, async () => history.status());
}

/** True when the client prefers CSV (Accept names text/csv before any JSON). */
function wantsCsv(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const csv = accept.indexOf("text/csv");
  if (csv < 0) return false;
  const json = accept.indexOf("application/json");
  return json < 0 || csv < json;
}
