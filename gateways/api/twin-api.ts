// What the gateway does with a twin, independent of the transport: ingest readings, read the twin (live
// from its owner, or from the last committed snapshot), derive aggregates/events/alerts, run commands.
// The HTTP routes and the NATS services (`<prefix>.api.cmd|get.<deviceId>`) both call this, so they
// give the same answers. Authentication and the registry are the transports' business.
import { TWIN_TYPE, TwinInputKinds } from "../../actors/device-twin/behavior.ts";
import {
  CHANNELS,
  createTwin,
  decodeTwin,
  packReadings,
  parseReadingsBody,
  twinView,
  validateCommand,
  type Alert,
  type BucketView,
  type Channel,
  type CommandResult,
  type EventView,
  type Problem,
  type Reading,
  type Result,
  type TwinView,
} from "../../actors/device-twin/domain/mod.ts";
import { isStreamNotFound, RuntimeError, type CommandOptions, type EntityReply, type PubAck, type SendOptions, type SnapshotRecord } from "../../runtime/mod.ts";
import { ProblemError, statusOf } from "../errors.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { AlertSource } from "./alerts.ts";
import type { LiveFeed } from "./live.ts";

/** The part of the runtime client the gateway uses (RuntimeClient implements it). */
export interface TwinBackend {
  send(type: string, entityId: string, kind: string, payload: unknown, options?: SendOptions): Promise<PubAck>;
  command(type: string, entityId: string, kind: string, payload: unknown, options?: CommandOptions): Promise<EntityReply>;
  get(type: string, entityId: string, query: unknown, options?: { timeoutMs?: number }): Promise<EntityReply>;
  getSnapshot(type: string, entityId: string): Promise<SnapshotRecord | undefined>;
}

/** Options of {@link TwinApi}. */
export interface TwinApiOptions {
  /** Most readings in one ingest request (more → 413 AIRTWIN_ERR_READINGS_TOO_MANY). Default 1000. */
  maxReadings?: number;
  /** Deadline of a live read, retries while the shard moves included (ms). Default 5000. */
  getTimeoutMs?: number;
  /** How long a command waits for the twin's result (ms); it is applied anyway afterwards. Default 10 000. */
  commandTimeoutMs?: number;
}

export interface TwinApiDeps {
  backend: TwinBackend;
  alerts: AlertSource;
  live: LiveFeed;
  metrics: GatewayMetrics;
  /** False while the NATS connection is down: requests then fail fast with 503. */
  connected: () => boolean;
}

/** A command's answer: the twin's result, and whether it came from an earlier application under the same idempotency key. */
export interface CommandAnswer {
  result: CommandResult;
  /** True when the command was not applied now: `result` is that of the command applied earlier under its key. */
  replayed: boolean;
}

/** Where a read is answered from. */
export type Consistency = "live" | "snapshot";

/** Which alerts: `fromMs <= at < toMs`, at most `limit`, stored since the device was registered (`registeredAt`, ms). */
export interface AlertsQuery {
  fromMs: number;
  toMs?: number;
  limit: number;
  registeredAt?: number;
}

/** An event as the events route lists it, assembled from its event.start / event.end alerts. */
export interface EventRecord {
  eventId: string;
  ruleId?: string;
  channel: Alert["channel"];
  startedAt?: number;
  endedAt?: number;
  durationMs?: number;
  peak?: number;
  mean?: number;
  /** The rule's `enter` threshold, from the start alert. */
  threshold?: number;
}

/** The body of GET …/events. */
export interface EventsAnswer {
  deviceId: string;
  from: number;
  to?: number;
  /** Event-machine state per rule id, from the twin. */
  current: Record<string, EventView>;
  /** Events seen in the window, from the output stream, oldest first. */
  recent: EventRecord[];
  /** True when the alert limit cut the window short. */
  truncated: boolean;
}

export class TwinApi {
  private readonly maxReadings: number;
  private readonly getTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(
    private readonly deps: TwinApiDeps,
    options: TwinApiOptions = {},
  ) {
    this.maxReadings = options.maxReadings ?? 1000;
    this.getTimeoutMs = options.getTimeoutMs ?? 5000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
  }

  /**
   * Validates a readings body (`{readings}` or Foobot datapoints, already decoded from JSON or msgpack),
   * appends the readings (sorted by t) to the device's input and resolves once JetStream stored them.
   * @throws ProblemError 400/413 on a bad body (nothing is sent); RuntimeError NATS_UNAVAILABLE (503)
   *   when disconnected; PublishError (→ 503 AIRTWIN_ERR_INPUT_NOT_STORED) when the store is not confirmed.
   */
  async ingest(deviceId: string, body: unknown): Promise<{ accepted: number }> {
    const parsed = parseReadingsBody(body, { maxReadings: this.maxReadings });
    if (!parsed.ok) {
      this.deps.metrics.readingsRejected.inc({ code: parsed.error.code }, countReadings(body));
      throw problemError(parsed.error);
    }
    const readings: Reading[] = parsed.value;
    if (readings.length === 0) return { accepted: 0 };
    this.ensureConnected(readings.length);
    const started = performance.now();
    try {
      // logged as arrays, not maps (docs/design.md §5.1): cheaper to encode here and to decode in the twin
      await this.deps.backend.send(TWIN_TYPE, deviceId, TwinInputKinds.readings, packReadings(readings), { weight: readings.length });
    } catch (err) {
      this.deps.metrics.readingsRejected.inc({ code: "AIRTWIN_ERR_INPUT_NOT_STORED" }, readings.length);
      throw err;
    }
    const m = this.deps.metrics;
    m.publishAckSeconds.observe((performance.now() - started) / 1000);
    m.readingsAccepted.inc(readings.length);
    m.ingestBatchReadings.observe(readings.length);
    this.deps.live.publishReadings(deviceId, readings, Date.now());
    return { accepted: readings.length };
  }

  /** The twin's view, live from its owner or from the last committed snapshot; `appliedSeq` of the answer. */
  async view(deviceId: string, consistency: Consistency = "live"): Promise<{ view: TwinView; appliedSeq: number | undefined }> {
    this.ensureConnected();
    if (consistency === "snapshot") {
      let record: SnapshotRecord | undefined;
      try {
        record = await this.deps.backend.getSnapshot(TWIN_TYPE, deviceId);
      } catch (err) {
        if (!isStreamNotFound(err)) throw new RuntimeError("NATS_UNAVAILABLE", `cannot read the snapshot: ${(err as Error).message}`, { cause: err });
        record = undefined; // the shard has never had an owner: nothing committed yet
      }
      const state = record === undefined ? createTwin(deviceId) : decodeTwin(record.state);
      return { view: twinView(state, { now: Date.now() }), appliedSeq: record?.appliedSeq ?? 0 };
    }
    const reply = await this.deps.backend.get(TWIN_TYPE, deviceId, null, { timeoutMs: this.getTimeoutMs });
    if (!reply.ok) throw replyError(reply.error);
    return { view: reply.value as TwinView, appliedSeq: reply.seq };
  }

  /** Hourly or daily buckets of every channel with `from <= start < to`. */
  async aggregates(
    deviceId: string,
    q: { resolution: "hour" | "day"; fromMs?: number; toMs?: number; consistency?: Consistency },
  ): Promise<{ deviceId: string; resolution: "hour" | "day"; from?: number; to?: number; channels: Partial<Record<Channel, BucketView[]>> }> {
    const { view } = await this.view(deviceId, q.consistency);
    const channels: Partial<Record<Channel, BucketView[]>> = {};
    for (const ch of CHANNELS) {
      const c = view.channels[ch];
      if (c === undefined) continue;
      const buckets = (q.resolution === "day" ? c.daily : c.hourly).filter((b) => inRange(b.start, q.fromMs, q.toMs));
      if (buckets.length > 0) channels[ch] = buckets;
    }
    return { deviceId, resolution: q.resolution, ...range(q.fromMs, q.toMs), channels };
  }

  /**
   * The current state of each rule's event machine (from the twin) and the recent events (from the
   * event.start/event.end alerts in the output stream) with `from <= startedAt|endedAt < to`.
   */
  async events(deviceId: string, q: AlertsQuery & { consistency?: Consistency }): Promise<EventsAnswer> {
    const [{ view }, { alerts, truncated }] = await Promise.all([this.view(deviceId, q.consistency), this.recentAlerts(deviceId, q)]);
    return { deviceId, from: q.fromMs, ...(q.toMs === undefined ? {} : { to: q.toMs }), current: view.events, recent: assembleEvents(alerts), truncated };
  }

  /** Alerts with `from <= at < to`, oldest first, at most `limit`. */
  async alerts(deviceId: string, q: AlertsQuery): Promise<{ deviceId: string; from: number; to?: number; alerts: Alert[]; truncated: boolean }> {
    const { alerts, truncated } = await this.recentAlerts(deviceId, q);
    return { deviceId, from: q.fromMs, ...(q.toMs === undefined ? {} : { to: q.toMs }), alerts, truncated };
  }

  /**
   * Validates a command, appends it to the device's input and resolves with the twin's result once it
   * was applied. With an idempotency key, a command the twin already applied under that key is not
   * applied again: its earlier result (or refusal) is the answer, `replayed`; one that differs from the
   * command first applied under the key is refused.
   * @throws ProblemError (400 invalid; 404/409 refused by the twin; 422 key reused for another command), PublishError (503),
   *   RuntimeError REQUEST_TIMEOUT (504: logged, will still be applied — retry with the same key).
   */
  async command(deviceId: string, body: unknown, options: { idempotencyKey?: string } = {}): Promise<CommandAnswer> {
    const command = validateCommand(body);
    if (!command.ok) throw problemError(command.error);
    this.ensureConnected();
    const reply = await this.deps.backend.command(TWIN_TYPE, deviceId, TwinInputKinds.command, command.value, {
      timeoutMs: this.commandTimeoutMs,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
    });
    if (!reply.ok) throw replyError(reply.error);
    const result = reply.value as Result<CommandResult>;
    if (!result.ok) throw problemError(result.error);
    return { result: result.value, replayed: reply.replayed === true };
  }

  private recentAlerts(deviceId: string, q: AlertsQuery): Promise<{ alerts: Alert[]; truncated: boolean }> {
    this.ensureConnected();
    return this.deps.alerts.recent(deviceId, q.fromMs, q.toMs ?? Number.MAX_SAFE_INTEGER, q.limit, q.registeredAt);
  }

  private ensureConnected(readings = 0): void {
    if (this.deps.connected()) return;
    if (readings > 0) this.deps.metrics.readingsRejected.inc({ code: "AIRTWIN_ERR_NATS_UNAVAILABLE" }, readings);
    throw new RuntimeError("NATS_UNAVAILABLE", "the gateway is not connected to NATS; retry");
  }
}

/** Events assembled from their event.start / event.end alerts, in the order their first alert came. */
export function assembleEvents(alerts: readonly Alert[]): EventRecord[] {
  const byId = new Map<string, EventRecord>();
  for (const a of alerts) {
    if ((a.kind !== "event.start" && a.kind !== "event.end") || a.eventId === undefined) continue;
    const e = byId.get(a.eventId) ?? { eventId: a.eventId, channel: a.channel };
    if (a.ruleId !== undefined) e.ruleId = a.ruleId;
    if (a.startedAt !== undefined) e.startedAt = a.startedAt;
    // the start alert's threshold is the rule's `enter` (the end alert's is its `exit`)
    if (a.kind === "event.start" && a.threshold !== undefined) e.threshold = a.threshold;
    if (a.kind === "event.end") {
      if (a.endedAt !== undefined) e.endedAt = a.endedAt;
      if (a.durationMs !== undefined) e.durationMs = a.durationMs;
      if (a.peak !== undefined) e.peak = a.peak;
      if (a.mean !== undefined) e.mean = a.mean;
    }
    byId.set(a.eventId, e);
  }
  return [...byId.values()];
}

/** A domain Problem as a throwable. */
export function problemError(p: Problem): ProblemError {
  return new ProblemError(p.code, p.message, p.details);
}

/** An error reply of the runtime: client errors keep their code; anything else is an internal error. */
function replyError(e: { code: string; message: string }): Error {
  if (statusOf(e.code) < 500) return new ProblemError(e.code, e.message);
  return new Error(`${e.code}: ${e.message}`);
}

function inRange(t: number, fromMs: number | undefined, toMs: number | undefined): boolean {
  return (fromMs === undefined || t >= fromMs) && (toMs === undefined || t < toMs);
}

function range(fromMs: number | undefined, toMs: number | undefined): { from?: number; to?: number } {
  return { ...(fromMs === undefined ? {} : { from: fromMs }), ...(toMs === undefined ? {} : { to: toMs }) };
}

/** Readings in a refused body, where countable. */
function countReadings(body: unknown): number {
  if (typeof body !== "object" || body === null) return 0;
  const b = body as { readings?: unknown; datapoints?: unknown };
  if (Array.isArray(b.readings)) return b.readings.length;
  if (Array.isArray(b.datapoints)) return b.datapoints.length;
  return 0;
}
