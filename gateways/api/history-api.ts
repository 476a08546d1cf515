// History of a device across its two sources: the twin (and the output stream) for what is recent, the
// archive for what is older. Each answer is in time order without gaps or repeats at the boundary, in
// pages (`next` is the cursor of the following page), and says in `coverage` which source answered and
// what range no source could cover (archive behind or absent). The archive is asked over NATS
// (`<prefix>.archive.query.*`, served by every archive process), never by the gateway's own database.
import type { NatsConnection } from "@nats-io/nats-core";
import type { Alert, BucketView, Channel } from "../../actors/device-twin/domain/mod.ts";
import { decode, encode, msgpackHeaders } from "../../runtime/mod.ts";
import { GatewayError } from "../errors.ts";
import { assembleEvents, type Consistency, type EventRecord, type TwinApi } from "./twin-api.ts";

/** Verbs of the archive's query service (gateways/archive/query-service.ts). */
export type ArchiveVerb = "readings" | "rollups" | "outputs" | "status";

/** How the gateway reaches the archive; undefined answers mean "no archive answered". */
export interface ArchiveClient {
  request<T>(verb: ArchiveVerb, query: Record<string, unknown>): Promise<T | undefined>;
}

/** {@link ArchiveClient} over NATS request/reply. */
export class NatsArchiveClient implements ArchiveClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly timeoutMs = 5000,
  ) {}

  async request<T>(verb: ArchiveVerb, query: Record<string, unknown>): Promise<T | undefined> {
    let reply: { ok: true; value: T } | { ok: false; error: { code: string; message: string } };
    try {
      const m = await this.nc.request(`${this.prefix}.archive.query.${verb}`, encode(query), { timeout: this.timeoutMs, headers: msgpackHeaders() });
      reply = decode(m.data) as typeof reply;
    } catch {
      return undefined; // no responders (no archive running) or timed out
    }
    if (reply.ok) return reply.value;
    if (reply.error.code === "AIRTWIN_ERR_HTTP_QUERY_INVALID") throw new GatewayError("HTTP_QUERY_INVALID", reply.error.message);
    return undefined;
  }
}

/** What an answer says about its sources. */
export interface Coverage {
  /** "ok": the archive answered and is caught up; "behind": it answered with messages still to archive; "absent": no archive answered. */
  archive: "ok" | "behind" | "absent";
  /** Messages the archive has still to write (when it answered). */
  archiveLag?: number;
  /** Where the twin's part starts (aggregates): older buckets come from the archive. */
  twinFrom?: number;
  /** Ranges no source could answer for. */
  uncovered?: { from: number; to: number }[];
}

interface Cursor {
  r: string;
  d: string;
  a: unknown;
}

function encodeCursor(route: string, deviceId: string, after: unknown): string {
  return Buffer.from(JSON.stringify({ r: route, d: deviceId, a: after } satisfies Cursor)).toString("base64url");
}

function decodeCursor<T>(route: string, deviceId: string, cursor: string | undefined, check: (a: unknown) => a is T): T | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  let c: Cursor | undefined;
  try {
    c = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Cursor;
  } catch {
    c = undefined;
  }
  if (c === undefined || c === null || c.r !== route || c.d !== deviceId || !check(c.a)) {
    throw new GatewayError("ARCHIVE_CURSOR_INVALID", undefined, { details: [{ field: "cursor", message: "not a cursor this route returned for this device" }] });
  }
  return c.a;
}

const isInt = (a: unknown): a is number => Number.isSafeInteger(a);
const isAtId = (a: unknown): a is { at: number; id: string } => typeof a === "object" && a !== null && isInt((a as { at: unknown }).at) && typeof (a as { id: unknown }).id === "string";

const HOUR = 3_600_000;
const DAY = 86_400_000;
/** How long the output stream keeps alerts by default (runtime/cluster-setup.ts): older ones only the archive has. */
export const OUTPUT_RETENTION_MS = 7 * DAY;

interface ArchiveStatusLite {
  lag: number;
}

/** A page of a history route. */
export interface Page {
  next?: string;
  coverage: Coverage;
}

export class HistoryApi {
  constructor(
    private readonly twins: TwinApi,
    private readonly archive: ArchiveClient,
    private readonly now: () => number = Date.now,
  ) {}

  private async coverage(answered: boolean): Promise<Coverage> {
    if (!answered) return { archive: "absent" };
    const status = await this.archive.request<ArchiveStatusLite>("status", {});
    if (status === undefined) return { archive: "absent" };
    return { archive: status.lag > 0 ? "behind" : "ok", archiveLag: status.lag };
  }

  /** Hourly or daily buckets per channel: the archive's rollups before the twin's window, the twin's from it. */
  async aggregates(
    deviceId: string,
    q: { resolution: "hour" | "day"; fromMs?: number; toMs?: number; limit: number; cursor?: string; consistency?: Consistency },
  ): Promise<Page & { deviceId: string; resolution: "hour" | "day"; from?: number; to?: number; channels: Partial<Record<Channel, BucketView[]>> }> {
    const route = `aggregates.${q.resolution}`;
    const after = decodeCursor(route, deviceId, q.cursor, isInt);
    const twin = await this.twins.aggregates(deviceId, { resolution: q.resolution, ...(q.consistency === undefined ? {} : { consistency: q.consistency }) });
    let newest = -Infinity;
    for (const buckets of Object.values(twin.channels)) for (const b of buckets ?? []) newest = Math.max(newest, b.start);
    // the twin holds the last 24 hours (7 days) up to its newest bucket; before that, the archive
    const twinFrom = newest === -Infinity ? Number.MAX_SAFE_INTEGER : newest - (q.resolution === "hour" ? 23 * HOUR : 6 * DAY);
    const from = Math.max(q.fromMs ?? 0, after === undefined ? 0 : after + 1);
    const to = q.toMs ?? Number.MAX_SAFE_INTEGER;
    const channels: Partial<Record<Channel, BucketView[]>> = {};
    let next: string | undefined;
    let answered = true;
    const uncovered: { from: number; to: number }[] = [];
    let starts = 0;
    const archiveTo = Math.min(to, twinFrom);
    if (from < archiveTo) {
      const r = await this.archive.request<{ buckets: (BucketView & { channel: Channel })[]; more: boolean }>("rollups", {
        deviceId,
        resolution: q.resolution,
        fromMs: from,
        toMs: archiveTo,
        limit: q.limit,
      });
      if (r === undefined) {
        answered = false;
        uncovered.push({ from, to: archiveTo });
      } else {
        for (const { channel, ...b } of r.buckets) (channels[channel] ??= []).push(b);
        starts = new Set(r.buckets.map((b) => b.start)).size;
        if (r.more) next = encodeCursor(route, deviceId, r.buckets.at(-1)!.start);
      }
    }
    if (next === undefined) {
      const twinStarts = new Set<number>();
      for (const [ch, buckets] of Object.entries(twin.channels) as [Channel, BucketView[]][]) {
        for (const b of buckets) {
          if (b.start < Math.max(from, twinFrom) || b.start >= to) continue;
          twinStarts.add(b.start);
          (channels[ch] ??= []).push(b);
        }
      }
      starts += twinStarts.size;
    }
    void starts;
    const coverage = { ...(await this.coverage(answered)), ...(twinFrom === Number.MAX_SAFE_INTEGER ? {} : { twinFrom }), ...(uncovered.length > 0 ? { uncovered } : {}) };
    return {
      deviceId,
      resolution: q.resolution,
      ...(q.fromMs === undefined ? {} : { from: q.fromMs }),
      ...(q.toMs === undefined ? {} : { to: q.toMs }),
      channels,
      ...(next === undefined ? {} : { next }),
      coverage,
    };
  }

  /** Alerts with from <= at < to, by (at, id): the output stream's and the archive's, merged by id. */
  async alerts(
    deviceId: string,
    q: { fromMs: number; toMs?: number; limit: number; cursor?: string; registeredAt?: number; route?: string },
  ): Promise<Page & { deviceId: string; from: number; to?: number; alerts: Alert[]; truncated: boolean }> {
    const route = q.route ?? "alerts";
    const after = decodeCursor(route, deviceId, q.cursor, isAtId);
    const from = after === undefined ? q.fromMs : Math.max(q.fromMs, after.at);
    const to = q.toMs ?? Number.MAX_SAFE_INTEGER;
    const [stream, archived] = await Promise.all([
      this.twins.alerts(deviceId, { fromMs: from, toMs: to, limit: q.limit + 1, ...(q.registeredAt === undefined ? {} : { registeredAt: q.registeredAt }) }),
      this.archive.request<{ outputs: Alert[]; more: boolean }>("outputs", {
        deviceId,
        kinds: ["alert"],
        fromMs: from,
        toMs: to,
        limit: q.limit + 1,
        ...(after === undefined ? {} : { after }),
        storedSinceMs: q.registeredAt ?? 0,
      }),
    ]);
    const byId = new Map<string, Alert>();
    for (const a of [...(archived?.outputs ?? []), ...stream.alerts]) byId.set(a.id, a);
    const merged = [...byId.values()]
      .filter((a) => after === undefined || a.at > after.at || (a.at === after.at && a.id > after.id))
      .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = merged.slice(0, q.limit);
    const more = merged.length > q.limit || stream.truncated || archived?.more === true;
    const last = page.at(-1);
    const next = more && last !== undefined ? encodeCursor(route, deviceId, { at: last.at, id: last.id }) : undefined;
    const coverage = await this.coverage(archived !== undefined);
    // without the archive, what the output stream no longer keeps is missing
    const streamFrom = this.now() - OUTPUT_RETENTION_MS;
    if (archived === undefined && from < Math.min(to, streamFrom)) coverage.uncovered = [{ from, to: Math.min(to, streamFrom) }];
    return { deviceId, from: q.fromMs, ...(q.toMs === undefined ? {} : { to: q.toMs }), alerts: page, truncated: more, ...(next === undefined ? {} : { next }), coverage };
  }

  /** Events (from their start/end alerts in both sources) and the twin's current event state per rule. */
  async events(
    deviceId: string,
    q: { fromMs: number; toMs?: number; limit: number; cursor?: string; registeredAt?: number; consistency?: Consistency },
  ): Promise<Page & { deviceId: string; from: number; to?: number; current: unknown; recent: EventRecord[]; truncated: boolean }> {
    const [{ view }, page] = await Promise.all([this.twins.view(deviceId, q.consistency), this.alerts(deviceId, { ...q, route: "events" })]);
    const { alerts, ...rest } = page;
    return { ...rest, current: view.events, recent: assembleEvents(alerts) };
  }

  /** Daily or weekly reports with from <= start < to (from the archive). */
  async reports(deviceId: string, q: { period: "day" | "week"; fromMs?: number; toMs?: number; limit: number; cursor?: string; registeredAt?: number }) {
    const route = `reports.${q.period}`;
    const after = decodeCursor(route, deviceId, q.cursor, isAtId);
    const r = await this.archive.request<{ outputs: { id: string; start: number }[]; more: boolean }>("outputs", {
      deviceId,
      kinds: ["report"],
      payloadKinds: [`report.${q.period}`],
      fromMs: q.fromMs ?? 0,
      toMs: q.toMs ?? Number.MAX_SAFE_INTEGER,
      limit: q.limit,
      ...(after === undefined ? {} : { after }),
      storedSinceMs: q.registeredAt ?? 0,
    });
    const coverage = await this.coverage(r !== undefined);
    if (r === undefined) coverage.uncovered = [{ from: q.fromMs ?? 0, to: q.toMs ?? this.now() }];
    const last = r?.outputs.at(-1);
    const next = r?.more && last !== undefined ? encodeCursor(route, deviceId, { at: last.start, id: last.id }) : undefined;
    return { deviceId, period: q.period, ...(q.fromMs === undefined ? {} : { from: q.fromMs }), ...(q.toMs === undefined ? {} : { to: q.toMs }), reports: r?.outputs ?? [], ...(next === undefined ? {} : { next }), coverage };
  }

  /** Raw archived readings, oldest first (the archive only: 503 without one). */
  async readings(deviceId: string, q: { fromMs?: number; toMs?: number; limit: number; cursor?: string }) {
    const after = decodeCursor("readings", deviceId, q.cursor, isInt);
    const r = await this.archive.request<{ readings: { t: number }[]; more: boolean }>("readings", {
      deviceId,
      fromMs: q.fromMs ?? 0,
      toMs: q.toMs ?? Number.MAX_SAFE_INTEGER,
      limit: q.limit,
      ...(after === undefined ? {} : { afterT: after }),
    });
    if (r === undefined) throw new GatewayError("ARCHIVE_UNAVAILABLE", "no archive answered: raw readings are kept only by the archive; retry");
    const last = r.readings.at(-1);
    const next = r.more && last !== undefined ? encodeCursor("readings", deviceId, last.t) : undefined;
    return { deviceId, readings: r.readings, ...(next === undefined ? {} : { next }), coverage: await this.coverage(true) };
  }

  /** The archive's status for ops (503 without an archive). */
  async status(): Promise<unknown> {
    const s = await this.archive.request<unknown>("status", {});
    if (s === undefined) throw new GatewayError("ARCHIVE_UNAVAILABLE");
    return s;
  }
}
