// The twin's shared vocabulary (docs/design.md §4/§5): channels, readings, rules, subscriptions, commands, outputs.
// Pure types and constants only; every other domain file builds on these names.

/** The six Foobot channels. */
export const CHANNELS = ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const;
export type Channel = (typeof CHANNELS)[number];

/** Inclusive valid range of each channel (docs/design.md §4). */
export const CHANNEL_RANGES: Readonly<Record<Channel, { readonly min: number; readonly max: number }>> = {
  pm: { min: 0, max: 1000 },
  co2: { min: 0, max: 40000 },
  voc: { min: 0, max: 60000 },
  tmp: { min: -40, max: 85 },
  hum: { min: 0, max: 100 },
  allpollu: { min: 0, max: 1000 },
};

/** One reading; `t` in epoch milliseconds; any subset of channels. */
export interface Reading {
  t: number;
  pm?: number;
  co2?: number;
  voc?: number;
  tmp?: number;
  hum?: number;
  allpollu?: number;
}

export type Direction = "above" | "below";

/** A pollution-event rule (docs/design.md §4). Durations in event-time milliseconds. */
export interface Rule {
  id: string;
  channel: Channel;
  direction: Direction;
  enter: number;
  exit: number;
  minDurationMs: number;
  clearDurationMs: number;
}

export type AlertKind = "event.start" | "event.end" | "offline" | "online" | "anomaly" | "forecast";

/** Why a reading was found anomalous: a sudden jump, a flat line where the channel moves, a slow departure. */
export type AnomalyReason = "spike" | "stuck" | "drift";
/** The built-in providers; a subscription may also name any other provider (1–32 of [a-z0-9-]) an integration serves. */
export type BuiltinProvider = "webhook" | "thermostat" | "push" | "email";
/** A provider name: built-in, or one a custom integration (defineIntegration) serves. */
export type Provider = BuiltinProvider | (string & {});

/** Kinds of the periodic reports (reports.ts). */
export type ReportKind = "report.day" | "report.week";

/** What a subscription's `match.kinds` may name: alert kinds and report kinds. */
export type SubscriptionKind = AlertKind | ReportKind;

/**
 * A subscription forwards matching alerts (and, when `match.kinds` names them, reports) to a partner
 * provider (docs/design.md §4). `secret` (webhook only): `whsec_` + base64 of 24–64 bytes, the Standard Webhooks
 * signing key; the twin keeps it, views and command results show `secret: true` instead.
 */
export interface Subscription {
  id: string;
  provider: Provider;
  match: { kinds?: SubscriptionKind[]; ruleIds?: string[]; channels?: Array<Channel | "device"> };
  target: string;
  secret?: string;
}

/** A subscription as views and command results show it: the secret replaced by whether there is one. */
export type SubscriptionView = Omit<Subscription, "secret"> & { secret?: true };

/** Alert payload published on `airtwin.out.alert.<deviceId>.<channel>.<kind>` (docs/design.md §5). */
export interface Alert {
  id: string;
  deviceId: string;
  ruleId?: string;
  channel: Channel | "device";
  kind: AlertKind;
  at: number;
  value?: number;
  threshold?: number;
  eventId?: string;
  startedAt?: number;
  endedAt?: number;
  durationMs?: number;
  peak?: number;
  mean?: number;
  /** anomaly: how unlikely the reading is (robust z-score, ≥ the detector's threshold). */
  score?: number;
  /** anomaly: the value the device's learned behaviour expected. */
  expected?: number;
  /** anomaly: which kind of anomaly. */
  reason?: AnomalyReason;
  /** forecast: event time (ms) at which the rule's `enter` is forecast to be crossed. */
  expectedAt?: number;
}

/** An occupancy change, published on `airtwin.out.occupancy.<deviceId>`; id `<deviceId>:occupancy:<at>`. */
export interface OccupancyChange {
  id: string;
  deviceId: string;
  /** Event time of the reading that changed it. */
  at: number;
  occupied: boolean;
  /** The model's probability of occupancy at that reading (0–1). */
  probability: number;
}

/** A calibration change, published on `airtwin.out.calibration.<deviceId>`. */
export interface CalibrationChange {
  id: string;
  deviceId: string;
  channel: "co2" | "voc";
  at: number;
  /** Min of the lows of the last 7 closed days; undefined until a day has closed. */
  baseline?: number;
  /** Correction devices add to raw values (co2 only; 0 for voc). */
  offset: number;
}

/** One closed bucket of one channel. */
export interface AggregateBucket {
  start: number;
  count: number;
  mean: number;
  min: number;
  max: number;
  topMaxMean?: number;
  topMinMean?: number;
}

/** Closed hourly or daily aggregates of a device, published batched per shard and commit on `airtwin.out.aggregates.<shard>` (docs/design.md §5.1). */
export interface ClosedAggregate {
  id: string;
  deviceId: string;
  resolution: "hour" | "day";
  start: number;
  channels: Partial<Record<Channel, AggregateBucket>>;
}

/** Per channel of a report: the period's statistics (top-5 means on daily reports only). Channel units. */
export interface ReportChannel {
  count: number;
  mean: number;
  min: number;
  max: number;
  topMaxMean?: number;
  topMinMean?: number;
}

/** Per rule of a report: events started in the period and minutes the rule spent in an event. */
export interface ReportRule {
  channel: Channel;
  events: number;
  minutes: number;
}

/** An event a report lists: started or ended in the period; times in epoch ms. */
export interface ReportEvent {
  eventId: string;
  ruleId: string;
  channel: Channel;
  startedAt: number;
  endedAt?: number;
  peak?: number;
  mean?: number;
}

/** The hour (or day) of a period whose mean of `channel` was highest (the first of allpollu, pm, co2, voc present). */
export interface ReportWorst {
  start: number;
  channel: Channel;
  mean: number;
}

/**
 * A daily (`report.day`, a closed UTC day) or weekly (`report.week`, a closed ISO week, Monday 00:00
 * UTC) report, published on `airtwin.out.report.<deviceId>`; id `<deviceId>:<kind>:<start>`.
 */
export interface Report {
  id: string;
  deviceId: string;
  kind: ReportKind;
  /** Period start and end (exclusive), epoch ms UTC. */
  start: number;
  end: number;
  channels: Partial<Record<Channel, ReportChannel>>;
  /** Rules that had an event in the period, by rule id. */
  rules: Record<string, ReportRule>;
  /** Events of the period, oldest first (at most MAX_REPORT_EVENTS; `eventsOmitted` counts the rest). */
  events: ReportEvent[];
  eventsOmitted: number;
  worstHour?: ReportWorst;
  /** Weekly only: the day with the highest mean. */
  worstDay?: ReportWorst;
  /** Hours the room was occupied in the period (learned occupancy). */
  occupiedHours: number;
  /** Weekly only: days of the week that had readings. */
  days?: number;
  /** The period before (the previous report of this kind): its start and per-channel means, for comparison. */
  previous?: { start: number; means: Partial<Record<Channel, number>> };
}

/** Everything a twin emits; the binding maps each to its NATS subject. */
export type TwinOutput =
  | { type: "alert"; alert: Alert }
  | { type: "calibration"; calibration: CalibrationChange }
  | { type: "aggregate"; aggregate: ClosedAggregate }
  | { type: "occupancy"; occupancy: OccupancyChange }
  | { type: "report"; report: Report }
  | IntegrationOutput;

/** A matching alert or report for one subscription, on `airtwin.out.integration.<provider>.<deviceId>`. */
export type IntegrationOutput = { type: "integration"; id: string; provider: Provider; deviceId: string; subscriptionId: string; target: string } & (
  | { alert: Alert; report?: undefined }
  | { report: Report; alert?: undefined }
);

/** Commands (docs/design.md §5), validated before they touch state. */
export type Command =
  | { type: "putRule"; rule: Rule }
  | { type: "deleteRule"; ruleId: string }
  | { type: "subscribe"; subscription: Subscription }
  | { type: "unsubscribe"; subscriptionId: string }
  | { type: "recalibrate"; channel: "co2" | "voc" }
  | { type: "reset" };

/** A coded problem with an input; `details` names each offending field (and index). */
export interface Problem {
  code: string;
  message: string;
  details?: Array<{ index?: number; field: string; message: string }>;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: Problem };
