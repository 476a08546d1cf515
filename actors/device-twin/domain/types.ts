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
export type Provider = "webhook" | "thermostat" | "push";

/** A subscription forwards matching alerts to a partner provider (docs/design.md §4). */
export interface Subscription {
  id: string;
  provider: Provider;
  match: { kinds?: AlertKind[]; ruleIds?: string[]; channels?: Array<Channel | "device"> };
  target: string;
}

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

/** Closed hourly or daily aggregates of a device, published on `airtwin.out.aggregate.<deviceId>`. */
export interface ClosedAggregate {
  id: string;
  deviceId: string;
  resolution: "hour" | "day";
  start: number;
  channels: Partial<Record<Channel, AggregateBucket>>;
}

/** Everything a twin emits; the binding maps each to its NATS subject. */
export type TwinOutput =
  | { type: "alert"; alert: Alert }
  | { type: "calibration"; calibration: CalibrationChange }
  | { type: "aggregate"; aggregate: ClosedAggregate }
  | { type: "occupancy"; occupancy: OccupancyChange }
  | { type: "integration"; id: string; provider: Provider; deviceId: string; subscriptionId: string; target: string; alert: Alert };

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
