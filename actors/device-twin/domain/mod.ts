// Public entry of the device-twin domain: what the runtime binding and the gateways may use.
// Everything else in this folder is internal (siblings and tests import files directly).

export * from "./types.ts";
export { DomainError, DomainErrors, problem } from "./errors.ts";
export type { DomainErrorName } from "./errors.ts";
export { validateDeviceId, MAX_DEVICE_ID_LENGTH } from "./ids.ts";
export { fromFoobotDatapoints, MAX_READINGS_PER_REQUEST, parseReadingsBody, validateReadings } from "./readings.ts";
export { loggedReadingsProblem, packReadings, readLoggedReadings, type LoggedReading } from "./logged-readings.ts";
export type { ReadingsOptions } from "./readings.ts";

export { DEFAULT_RULES, MAX_RULES, MAX_RULE_DURATION_MS, validateRule } from "./rules.ts";
export {
  ALERT_KINDS, isWebhookSecret, MAX_SUBSCRIPTIONS, PROVIDERS, REPORT_KINDS, SUBSCRIPTION_KINDS, matches, subscriptionView, validateSubscription,
} from "./subscriptions.ts";
export { MAX_REPORT_EVENTS, weekStartOf, WORST_CHANNELS } from "./reports.ts";
export { COMMAND_TYPES, validateCommand } from "./commands.ts";
export type { CommandResult } from "./commands.ts";
export { DEFAULT_OFFLINE_AFTER_MS } from "./presence.ts";
export type { EventPhase, EventView } from "./events.ts";
export type { BucketView, ChannelView, TwinStats } from "./stats.ts";

export { applyInput, createTwin, nextWakeAt } from "./twin.ts";
export type { TwinInput, TwinOptions, TwinState, TwinStep } from "./twin.ts";
export { twinView } from "./view.ts";
export type { ChannelWithModelView, TwinView, TwinViewOptions } from "./view.ts";
export { isOccupied } from "./learned/learned-state.ts";
export { decodeTwin, encodeTwin, releaseTwin, TWIN_SNAPSHOT_VERSION, twinEqual } from "./twin-snapshot.ts";
