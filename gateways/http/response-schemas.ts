// The exact JSON schemas of the success answers (OpenAPI at /docs). They are not only documentation:
// fastify serialises every answer with fast-json-stringify from these schemas, which drops any field a
// schema does not list, truncates an `integer` that is not one and fails on a missing `required` field.
// So each schema lists every field its producer can return (the twin view, history answers, the ops
// coordinator's results, the archive's status), `required` only what is always there, `integer` only
// for what is always whole (times in ms, counts), and closes the shapes that are closed; keyed maps
// (by rule id, table, shard) say what their values are. test/gateway/openapi-responses.test.ts checks
// real answers against them and that no field is lost.
import {
  ALERT_KINDS,
  CHANNELS,
  MAX_RULE_DURATION_MS,
  REPORT_KINDS,
  SUBSCRIPTION_KINDS,
  type AnomalyReason,
  type EventPhase,
} from "../../actors/device-twin/domain/mod.ts";
import type { RoundResult } from "../../runtime/mod.ts";

const EVENT_PHASES = ["normal", "pending", "active", "clearing"] as const satisfies readonly EventPhase[];
const ANOMALY_REASONS = ["spike", "stuck", "drift"] as const satisfies readonly AnomalyReason[];
const MOVE_REASONS = ["orphan", "drain", "rebalance", "stalled"] as const satisfies readonly RoundResult["moves"][number]["reason"][];

/** Device, user, rule and subscription ids. */
export const ID = { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } as const;
const str = { type: "string" } as const;
const num = { type: "number" } as const;
const int = { type: "integer" } as const;
const bool = { type: "boolean" } as const;
/** Epoch milliseconds. */
const ms = { type: "integer", description: "epoch ms" } as const;
const channel = { type: "string", enum: [...CHANNELS] } as const;
const nullable = <T extends Record<string, unknown> & { type: string }>(s: T) => ({ ...s, type: [s.type, "null"] }) as const;

/** A closed object: every field listed, `required` the ones always present. */
function closed<P extends Record<string, unknown>, R extends keyof P & string>(properties: P, required: readonly R[], description?: string) {
  return { type: "object", ...(description === undefined ? {} : { description }), properties, required: [...required], additionalProperties: false } as const;
}

/** An object keyed by channel (only channels that have data), each value `value`. */
function byChannel<V>(value: V, description?: string) {
  const properties = Object.fromEntries(CHANNELS.map((c) => [c, value])) as Record<(typeof CHANNELS)[number], V>;
  return { type: "object", ...(description === undefined ? {} : { description }), properties, additionalProperties: false } as const;
}

/** An object whose keys are ids (rule ids, table names, shard numbers), each value `value`. */
function keyedBy<V>(what: string, value: V) {
  return { type: "object", description: `keyed by ${what}`, additionalProperties: value } as const;
}

/** Shared response schemas, added with `app.addSchema` (components in the OpenAPI). */
export const responseSchemas = [
  {
    $id: "Rule",
    ...closed(
      {
        id: ID,
        channel,
        direction: { type: "string", enum: ["above", "below"] },
        enter: { ...num, description: "within the channel's range; an above rule's exit <= enter, a below rule's exit >= enter" },
        exit: num,
        minDurationMs: { type: "integer", minimum: 0, maximum: MAX_RULE_DURATION_MS },
        clearDurationMs: { type: "integer", minimum: 0, maximum: MAX_RULE_DURATION_MS },
      },
      ["id", "channel", "direction", "enter", "exit", "minDurationMs", "clearDurationMs"],
      "A pollution-event rule; durations in event-time ms.",
    ),
  },
  {
    $id: "Subscription",
    ...closed(
      {
        id: str,
        provider: { type: "string", description: "webhook, thermostat, push, email, or a custom integration's name" },
        match: closed(
          {
            kinds: { type: "array", items: { type: "string", enum: [...SUBSCRIPTION_KINDS] } },
            ruleIds: { type: "array", items: str },
            channels: { type: "array", items: { type: "string", enum: [...CHANNELS, "device"] } },
          },
          [],
        ),
        target: str,
        secret: { type: "boolean", enum: [true], description: "Present when the subscription has a signing secret (never shown)." },
      },
      ["id", "provider", "match", "target"],
    ),
  },
  {
    $id: "EventState",
    ...closed(
      {
        state: { type: "string", enum: [...EVENT_PHASES] },
        since: { ...ms, description: "event time the current phase began" },
        eventId: str,
        startedAt: ms,
        peak: num,
        mean: num,
      },
      ["state"],
      "A rule's event machine; eventId, startedAt, peak and mean while an event is active or clearing.",
    ),
  },
  {
    $id: "Bucket",
    ...closed(
      { start: ms, count: int, mean: num, min: num, max: num, topMaxMean: num, topMinMean: num },
      ["start", "count", "mean", "min", "max"],
      "One hourly or daily bucket of one channel; the top-5 means on daily buckets only.",
    ),
  },
  {
    $id: "Alert",
    ...closed(
      {
        id: str,
        deviceId: str,
        ruleId: str,
        channel: { type: "string", enum: [...CHANNELS, "device"] },
        kind: { type: "string", enum: [...ALERT_KINDS] },
        at: ms,
        value: num,
        threshold: num,
        eventId: str,
        startedAt: ms,
        endedAt: ms,
        durationMs: int,
        peak: num,
        mean: num,
        score: num,
        expected: num,
        reason: { type: "string", enum: [...ANOMALY_REASONS] },
        expectedAt: ms,
      },
      ["id", "deviceId", "channel", "kind", "at"],
    ),
  },
  {
    $id: "EventRecord",
    ...closed(
      { eventId: str, ruleId: str, channel: { type: "string", enum: [...CHANNELS, "device"] }, startedAt: ms, endedAt: ms, durationMs: int, peak: num, mean: num, threshold: num },
      ["eventId", "channel"],
      "An event assembled from its event.start / event.end alerts; threshold is the rule's enter.",
    ),
  },
  {
    $id: "Coverage",
    ...closed(
      {
        archive: { type: "string", enum: ["ok", "behind", "absent"] },
        archiveLag: int,
        twinFrom: ms,
        uncovered: { type: "array", items: closed({ from: ms, to: ms }, ["from", "to"]) },
      },
      ["archive"],
      "Which source answered, and the ranges no source could.",
    ),
  },
  {
    $id: "ArchivedReading",
    ...closed(
      {
        t: ms,
        ...Object.fromEntries(CHANNELS.map((c) => [c, num])),
        acceptedAt: ms,
        late: { type: "boolean", enum: [true] },
        repeats: { type: "integer", minimum: 1 },
      },
      ["t", "acceptedAt"],
    ),
  },
  {
    $id: "Report",
    ...closed(
      {
        id: str,
        deviceId: str,
        kind: { type: "string", enum: [...REPORT_KINDS] },
        start: ms,
        end: ms,
        channels: byChannel(closed({ count: int, mean: num, min: num, max: num, topMaxMean: num, topMinMean: num }, ["count", "mean", "min", "max"])),
        rules: keyedBy("rule id", closed({ channel, events: int, minutes: int }, ["channel", "events", "minutes"])),
        events: {
          type: "array",
          items: closed({ eventId: str, ruleId: str, channel, startedAt: ms, endedAt: ms, peak: num, mean: num }, ["eventId", "ruleId", "channel", "startedAt"]),
        },
        eventsOmitted: int,
        worstHour: closed({ start: ms, channel, mean: num }, ["start", "channel", "mean"]),
        worstDay: closed({ start: ms, channel, mean: num }, ["start", "channel", "mean"]),
        occupiedHours: num,
        days: int,
        previous: closed({ start: ms, means: byChannel(num) }, ["start", "means"]),
      },
      ["id", "deviceId", "kind", "start", "end", "channels", "rules", "events", "eventsOmitted", "occupiedHours"],
      "A daily (closed UTC day) or weekly (closed ISO week) report; worstDay and days on weekly reports only.",
    ),
  },
  {
    $id: "CalibrationChange",
    ...closed(
      { id: str, deviceId: str, channel: { type: "string", enum: ["co2", "voc"] }, at: ms, baseline: num, offset: num },
      ["id", "deviceId", "channel", "at", "offset"],
    ),
  },
  {
    $id: "ShardMove",
    ...closed({ shard: int, from: nullable(str), to: str, reason: { type: "string", enum: [...MOVE_REASONS] } }, ["shard", "from", "to", "reason"]),
  },
] as const;

const ref = (id: (typeof responseSchemas)[number]["$id"]) => ({ $ref: `${id}#` }) as const;
const page = { next: { type: "string", description: "The cursor of the following page; absent on the last." }, coverage: ref("Coverage") } as const;

const channelStats = closed(
  {
    count: int,
    mean: num,
    stddev: num,
    min: num,
    minAt: ms,
    max: num,
    maxAt: ms,
    last: num,
    lastAt: ms,
    ewma: num,
    hourly: { type: "array", items: ref("Bucket"), description: "the last 24 hours, oldest first" },
    daily: { type: "array", items: ref("Bucket"), description: "the last 7 days, oldest first" },
    expected: { ...num, description: "what the learned behaviour expects at the last reading" },
    forecast: { type: "array", items: closed({ at: ms, value: num }, ["at", "value"]), description: "15, 30, 45 and 60 minutes after the last reading" },
  },
  ["count", "mean", "stddev", "min", "minAt", "max", "maxAt", "last", "lastAt", "ewma", "hourly", "daily"],
);
const calibration = closed({ baseline: num, offset: num }, ["offset"]);

/** The success answer of each route, by the route's key in `schemas`. */
export const successResponses = {
  twin: closed(
    {
      deviceId: str,
      channels: byChannel(channelStats, "Statistics of each channel that has readings."),
      occupancy: closed({ occupied: bool, probability: { type: "number", minimum: 0, maximum: 1 }, since: ms }, ["occupied", "probability", "since"], "Absent until the first co2 reading."),
      calibration: closed({ co2: calibration, voc: calibration }, ["co2", "voc"]),
      rules: { type: "array", items: ref("Rule"), description: "Effective rules, defaults included." },
      events: keyedBy("rule id", ref("EventState")),
      subscriptions: { type: "array", items: ref("Subscription") },
      lastSeen: { ...ms, description: "wall clock of the last reading's arrival" },
      lastT: { ...ms, description: "event time of the last applied reading" },
      readings: int,
      duplicates: int,
      late: int,
      online: bool,
    },
    ["deviceId", "channels", "calibration", "rules", "events", "subscriptions", "readings", "duplicates", "late", "online"],
  ),
  aggregates: closed(
    {
      deviceId: str,
      resolution: { type: "string", enum: ["hour", "day"] },
      from: ms,
      to: ms,
      channels: byChannel({ type: "array", items: ref("Bucket") }, "Buckets of each channel that has some, oldest first."),
      ...page,
    },
    ["deviceId", "resolution", "channels", "coverage"],
  ),
  events: closed(
    {
      deviceId: str,
      from: ms,
      to: ms,
      current: keyedBy("rule id", ref("EventState")),
      recent: { type: "array", items: ref("EventRecord") },
      truncated: { type: "boolean", description: "True when the limit cut the window short (see next)." },
      ...page,
    },
    ["deviceId", "from", "current", "recent", "truncated", "coverage"],
  ),
  alerts: closed(
    { deviceId: str, from: ms, to: ms, alerts: { type: "array", items: ref("Alert") }, truncated: bool, ...page },
    ["deviceId", "from", "alerts", "truncated", "coverage"],
  ),
  readings: closed({ deviceId: str, readings: { type: "array", items: ref("ArchivedReading") }, ...page }, ["deviceId", "readings", "coverage"]),
  reports: closed(
    { deviceId: str, period: { type: "string", enum: ["day", "week"] }, from: ms, to: ms, reports: { type: "array", items: ref("Report") }, ...page },
    ["deviceId", "period", "reports", "coverage"],
  ),
  command: {
    description: "The command's result, by its type.",
    oneOf: [
      closed({ type: { type: "string", enum: ["putRule"] }, rule: ref("Rule") }, ["type", "rule"]),
      closed({ type: { type: "string", enum: ["deleteRule"] }, ruleId: str }, ["type", "ruleId"]),
      closed({ type: { type: "string", enum: ["subscribe"] }, subscription: ref("Subscription") }, ["type", "subscription"]),
      closed({ type: { type: "string", enum: ["unsubscribe"] }, subscriptionId: str }, ["type", "subscriptionId"]),
      closed({ type: { type: "string", enum: ["recalibrate"] }, channel: { type: "string", enum: ["co2", "voc"] }, calibration: ref("CalibrationChange") }, ["type", "channel", "calibration"]),
      closed({ type: { type: "string", enum: ["reset"] } }, ["type"]),
    ],
  },
  opsCluster: closed(
    {
      at: ms,
      nodeId: { type: "string", description: "The node that answered (the coordinator)." },
      coordinator: nullable(closed({ nodeId: str, epoch: int, expiresAt: ms }, ["nodeId", "epoch", "expiresAt"])),
      nodes: {
        type: "array",
        items: closed(
          {
            nodeId: str,
            live: bool,
            draining: bool,
            leaving: bool,
            drainRequested: bool,
            owned: { type: "array", items: int },
            serving: { type: "array", items: int, description: "Of the shards it holds, those its host has started and serves (a node that cannot start a shard is passed over after stallMs)." },
            rates: keyedBy("shard", num),
            resident: int,
            entities: int,
            unitsPerSec: num,
            lag: keyedBy("shard", int),
            startedAt: ms,
            heartbeatAt: ms,
            expiresAt: ms,
          },
          ["nodeId", "live", "draining", "leaving", "drainRequested", "owned", "startedAt", "heartbeatAt", "expiresAt"],
        ),
      },
      shards: {
        type: "array",
        items: closed(
          { shard: int, assigned: nullable(str), pinned: bool, owner: nullable(str), epoch: int, leaseExpiresAt: nullable(ms), lag: int },
          ["shard", "assigned", "pinned", "owner", "epoch", "leaseExpiresAt"],
        ),
      },
    },
    ["at", "nodeId", "coordinator", "nodes", "shards"],
  ),
  opsMove: closed({ shard: int, from: nullable(str), to: str, moved: { type: "boolean", description: "False when the shard was already assigned there." } }, ["shard", "from", "to", "moved"]),
  opsDrain: closed({ nodeId: str, shards: { type: "integer", description: "Shards assigned to it when the drain was recorded." } }, ["nodeId", "shards"]),
  opsRebalance: closed({ moves: { type: "array", items: ref("ShardMove") }, inFlight: int, dryRun: bool, at: ms }, ["moves", "inFlight", "dryRun", "at"]),
  opsArchive: closed(
    {
      database: closed({ kind: { type: "string", enum: ["postgres", "pglite"] }, location: { type: "string", description: "password hidden" } }, ["kind", "location"]),
      sources: {
        type: "array",
        items: closed(
          {
            source: str,
            lag: int,
            missing: bool,
            standby: { type: "boolean", description: "Another archive process reads this source now (an input stream is read by one at a time)." },
            lastError: closed({ at: ms, message: str }, ["at", "message"]),
          },
          ["source", "lag", "missing"],
        ),
      },
      lag: { type: "integer", description: "The sum of the sources' lag." },
      rows: keyedBy("table", int),
      errors: { type: "integer", description: "Failed batch writes of this process (each retried)." },
      retentionMs: int,
    },
    ["database", "sources", "lag", "rows", "errors", "retentionMs"],
  ),
} as const;
