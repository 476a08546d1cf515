// The archive's history queries over NATS request/reply: `<prefix>.archive.query.<verb>` with verbs
// `readings`, `rollups`, `outputs` and `status`, served by every archive process in one queue group, so
// the gateway (history routes, GET /v1/ops/archive) never talks to the database itself. Bodies are
// MessagePack: the query in, `{ ok: true, value }` or `{ ok: false, error: { code, message } }` out.
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { decode, encode, msgpackHeaders, type Names } from "../../runtime/mod.ts";
import { GatewayErrors } from "../errors.ts";
import type { ArchiveLog } from "./consumer.ts";
import type { Database } from "./db/mod.ts";
import { queryOutputs, queryReadings, queryRollups, type OutputsQuery, type ReadingsQuery, type RollupsQuery } from "./queries.ts";

/** The request subject of one verb. */
export const archiveQuerySubject = (prefix: string, verb: ArchiveQueryVerb): string => `${prefix}.archive.query.${verb}`;

export type ArchiveQueryVerb = "readings" | "rollups" | "outputs" | "status";

/** Reply of the service. */
export type ArchiveReply<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

export interface ArchiveQueryServiceOptions {
  nc: NatsConnection;
  names: Names;
  db: Database;
  status: () => Promise<unknown>;
  log: ArchiveLog;
}

/** The routes' largest page (10 000) plus the one row that tells the gateway another page follows. */
const MAX_LIMIT = 10_001;

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

function valid(verb: ArchiveQueryVerb, q: Record<string, unknown>): string | undefined {
  if (verb === "status") return undefined;
  if (typeof q.deviceId !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(q.deviceId)) return "deviceId";
  if (!isInt(q.fromMs) || !isInt(q.toMs)) return "fromMs/toMs";
  if (!isInt(q.limit) || (q.limit as number) < 1 || (q.limit as number) > MAX_LIMIT) return "limit";
  if (verb === "rollups" && q.resolution !== "hour" && q.resolution !== "day") return "resolution";
  if (verb === "outputs" && (!Array.isArray(q.kinds) || !q.kinds.every((k) => typeof k === "string"))) return "kinds";
  return undefined;
}

export class ArchiveQueryService {
  private readonly sub: Subscription;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: ArchiveQueryServiceOptions) {
    this.sub = o.nc.subscribe(`${o.names.prefix}.archive.query.*`, {
      queue: `${o.names.prefix}-archive`,
      callback: (err, msg) => {
        if (err) return;
        const p = this.handle(msg).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      },
    });
  }

  private async handle(msg: Msg): Promise<void> {
    const verb = msg.subject.slice(msg.subject.lastIndexOf(".") + 1) as ArchiveQueryVerb;
    let reply: ArchiveReply<unknown>;
    try {
      const q = (msg.data.length > 0 ? decode(msg.data) : {}) as Record<string, unknown>;
      const bad = typeof q === "object" && q !== null ? valid(verb, q) : "body";
      if (bad !== undefined) {
        reply = { ok: false, error: { code: GatewayErrors.HTTP_QUERY_INVALID.code, message: `invalid archive query: ${bad}` } };
      } else {
        reply = { ok: true, value: await this.answer(verb, q) };
      }
    } catch (err) {
      this.o.log("warn", "archive query failed", { verb, error: (err as Error).message });
      reply = { ok: false, error: { code: GatewayErrors.ARCHIVE_UNAVAILABLE.code, message: `the archive database did not answer: ${(err as Error).message}` } };
    }
    if (msg.reply) msg.respond(encode(reply), { headers: msgpackHeaders() });
  }

  private answer(verb: ArchiveQueryVerb, q: Record<string, unknown>): Promise<unknown> {
    switch (verb) {
      case "readings":
        return queryReadings(this.o.db, q as unknown as ReadingsQuery);
      case "rollups":
        return queryRollups(this.o.db, q as unknown as RollupsQuery);
      case "outputs":
        return queryOutputs(this.o.db, q as unknown as OutputsQuery);
      case "status":
        return this.o.status();
      default:
        return Promise.reject(new Error(`unknown verb ${String(verb)}`));
    }
  }

  /** Stops taking queries and waits for those in flight. */
  async drain(): Promise<void> {
    this.sub.unsubscribe();
    await Promise.allSettled([...this.inFlight]);
  }
}
