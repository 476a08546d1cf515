// The device twin: its whole state and the single entry point `applyInput` (docs/design.md §4).
//
// `(state, input) => { state, outputs, result? }`, deterministic (time comes in with the input). For
// speed the state is owned by its actor and mutated in place, and the same object is returned. A
// rejected command changes nothing: everything that can fail is checked before anything is written
// (rule sets and subscription lists are immutable values that are swapped only on success).

import { validateCommand } from "./commands.ts";
import type { CommandResult } from "./commands.ts";
import { applyReadingToEvents, createEventStates, retireRuleEvents } from "./events.ts";
import type { EventStates } from "./events.ts";
import { createPresence, DEFAULT_OFFLINE_AFTER_MS, presenceOnReadings, presenceOnTick, presenceWakeAt } from "./presence.ts";
import type { Presence } from "./presence.ts";
import { createReportState, reportOccupied, reportOnAlert, reportOnDayClosed, reportOnHourClosed } from "./reports.ts";
import type { ReportState } from "./reports.ts";
import { applyReadingToLearned, createLearnedIn, isOccupied, LEARNED_BYTES, resetLearned } from "./learned/learned-state.ts";
import type { LearnedState, RuleContext } from "./learned/learned-state.ts";
import { DEFAULT_RULE_SET, deleteRule, putRule } from "./rules.ts";
import type { RuleSet } from "./rules.ts";
import { applyReadingToStats, createStats, recalibrate, resetStats } from "./stats.ts";
import type { TwinStats } from "./stats.ts";
import { integrationOutputs, NO_SUBSCRIPTIONS, putSubscription, removeSubscription, reportIntegrationOutputs, subscriptionView } from "./subscriptions.ts";
import type { Alert, Command, OccupancyChange, Reading, Result, Subscription, TwinOutput } from "./types.ts";

/** Everything one device's twin knows. Owned by its actor; mutated in place by {@link applyInput}. */
export interface TwinState {
  deviceId: string;
  /** Statistics and calibration (stats.ts). */
  stats: TwinStats;
  /** Rules as deviations from the defaults; `DEFAULT_RULE_SET` (shared) until the user changes one. */
  rules: RuleSet;
  /** Event machines of the rules not in `normal`. */
  events: EventStates;
  /** Integration subscriptions (an immutable list, replaced on change). */
  subscriptions: readonly Subscription[];
  /** Wall-clock liveness. */
  presence: Presence;
  /** Accumulators of the daily and weekly reports (reports.ts). */
  reports: ReportState;
  /** Occupancy and the per-channel models (learned/). */
  learned: LearnedState;
  /** Event time `t` of the last applied reading; kept across `reset`. */
  lastT?: number;
  /** Applied readings (duplicates and late ones excluded). */
  readings: number;
  /** Readings with `t` equal to `lastT`. */
  duplicates: number;
  /** Readings with `t` older than `lastT`. */
  late: number;
}

/** Options of a twin. */
export interface TwinOptions {
  /** Wall-clock silence after which the device is offline, in ms. Default 15 min. */
  offlineAfterMs: number;
}

/** One input of a twin, in its log order. Times: `t`/`at` event time, `receivedAt`/`now` wall clock (ms). */
export type TwinInput =
  | { type: "readings"; readings: Reading[]; receivedAt: number }
  | { type: "command"; command: Command; at: number }
  | { type: "tick"; now: number };

/** What {@link applyInput} returns; `result` only for commands. */
export interface TwinStep {
  state: TwinState;
  outputs: TwinOutput[];
  result?: Result<CommandResult>;
}

/** A fresh twin: default rules, no subscriptions, never seen. */
export function createTwin(deviceId: string): TwinState {
  // one buffer per twin: the learned state lives after the statistics (learned/layout.ts)
  const stats = createStats(LEARNED_BYTES);
  return {
    deviceId,
    stats,
    rules: DEFAULT_RULE_SET,
    events: createEventStates(),
    subscriptions: NO_SUBSCRIPTIONS,
    presence: createPresence(),
    reports: createReportState(),
    learned: createLearnedIn(stats),
    readings: 0,
    duplicates: 0,
    late: 0,
  };
}

function offlineAfter(options?: Partial<TwinOptions>): number {
  return options?.offlineAfterMs ?? DEFAULT_OFFLINE_AFTER_MS;
}

/** Appends each alert as an `alert` output followed by its `integration` outputs. */
function emitAlerts(state: TwinState, alerts: readonly Alert[], outputs: TwinOutput[]): void {
  for (const alert of alerts) {
    outputs.push({ type: "alert", alert });
    reportOnAlert(state.reports, alert);
    if (state.subscriptions.length > 0) integrationOutputs(state.subscriptions, alert, outputs);
  }
}

/** Applies one input; see {@link TwinInput}. */
export function applyInput(state: TwinState, input: TwinInput, options?: Partial<TwinOptions>): TwinStep {
  const outputs: TwinOutput[] = [];
  switch (input.type) {
    case "readings":
      applyReadings(state, input.readings, input.receivedAt, offlineAfter(options), outputs);
      return { state, outputs };
    case "tick":
      emitAlerts(state, presenceOnTick(state.presence, state.deviceId, input.now, offlineAfter(options)), outputs);
      return { state, outputs };
    case "command":
      return { state, outputs, result: applyCommand(state, input.command, input.at, outputs) };
  }
}

// The rules as the learned state sees them, refilled per reading (no allocation on the hot path).
const RULES: RuleContext = { rules: [], busy: [] };

function applyReadings(state: TwinState, readings: readonly Reading[], receivedAt: number, offlineAfterMs: number, outputs: TwinOutput[]): void {
  if (readings.length === 0) return;
  emitAlerts(state, presenceOnReadings(state.presence, state.deviceId, receivedAt, offlineAfterMs), outputs);
  const alerts: Alert[] = [];
  const occupancy: OccupancyChange[] = [];
  for (const r of readings) {
    if (state.lastT !== undefined && r.t <= state.lastT) {
      if (r.t === state.lastT) state.duplicates++;
      else state.late++;
      continue;
    }
    // the room's occupancy as decided by the previous reading holds until this one (reports' occupied hours)
    const occupiedNextDayMs = state.lastT !== undefined && isOccupied(state) ? reportOccupied(state.reports, state.lastT, r.t) : 0;
    state.lastT = r.t;
    state.readings++;
    const closed = applyReadingToStats(state.stats, state.deviceId, r);
    for (const aggregate of closed.aggregates) {
      outputs.push({ type: "aggregate", aggregate });
      if (aggregate.resolution === "hour") reportOnHourClosed(state.reports, aggregate);
      else {
        for (const report of reportOnDayClosed(state.reports, state.deviceId, aggregate, r.t)) {
          outputs.push({ type: "report", report });
          if (state.subscriptions.length > 0) reportIntegrationOutputs(state.subscriptions, report, outputs);
        }
      }
    }
    if (occupiedNextDayMs > 0) state.reports.day.occupiedHours += occupiedNextDayMs / 3_600_000;
    for (const c of closed.calibration) outputs.push({ type: "calibration", calibration: c });
    applyReadingToEvents(state.events, state.rules.effective, state.deviceId, r, alerts);
    RULES.rules = state.rules.effective;
    RULES.busy = state.events.ids;
    applyReadingToLearned(state.learned, state.deviceId, r, RULES, alerts, occupancy);
    if (occupancy.length > 0) {
      for (const o of occupancy) outputs.push({ type: "occupancy", occupancy: o });
      occupancy.length = 0;
    }
    if (alerts.length > 0) {
      emitAlerts(state, alerts, outputs);
      alerts.length = 0;
    }
  }
}

/**
 * Validates (again: commands cross a serialization boundary on their way here) and applies a command.
 * `at` is the command's time, used by `recalibrate` only.
 */
function applyCommand(state: TwinState, raw: Command, at: number, outputs: TwinOutput[]): Result<CommandResult> {
  const valid = validateCommand(raw);
  if (!valid.ok) return valid;
  const command = valid.value;
  const alerts: Alert[] = [];
  switch (command.type) {
    case "putRule": {
      const r = putRule(state.rules, command.rule);
      if (!r.ok) return r;
      if (r.value.previous !== undefined) retireRuleEvents(state.events, r.value.previous, state.deviceId, alerts);
      state.rules = r.value.set;
      emitAlerts(state, alerts, outputs);
      return { ok: true, value: { type: "putRule", rule: command.rule } };
    }
    case "deleteRule": {
      const r = deleteRule(state.rules, command.ruleId);
      if (!r.ok) return r;
      retireRuleEvents(state.events, r.value.previous, state.deviceId, alerts);
      state.rules = r.value.set;
      emitAlerts(state, alerts, outputs);
      return { ok: true, value: { type: "deleteRule", ruleId: command.ruleId } };
    }
    case "subscribe": {
      const r = putSubscription(state.subscriptions, command.subscription);
      if (!r.ok) return r;
      state.subscriptions = r.value;
      return { ok: true, value: { type: "subscribe", subscription: subscriptionView(command.subscription) } };
    }
    case "unsubscribe": {
      const r = removeSubscription(state.subscriptions, command.subscriptionId);
      if (!r.ok) return r;
      state.subscriptions = r.value;
      return { ok: true, value: { type: "unsubscribe", subscriptionId: command.subscriptionId } };
    }
    case "recalibrate": {
      const calibration = recalibrate(state.stats, state.deviceId, command.channel, at);
      outputs.push({ type: "calibration", calibration });
      return { ok: true, value: { type: "recalibrate", channel: command.channel, calibration } };
    }
    case "reset":
      // Open events are ended (not silently dropped) so every event.start downstream gets its end.
      for (const rule of state.rules.effective) retireRuleEvents(state.events, rule, state.deviceId, alerts);
      state.events = createEventStates();
      resetStats(state.stats);
      state.reports = createReportState();
      resetLearned(state.learned);
      state.readings = state.duplicates = state.late = 0;
      emitAlerts(state, alerts, outputs);
      return { ok: true, value: { type: "reset" } };
  }
}

/** Wall-clock ms at which the runtime should send a `tick` (offline detection); undefined: none needed. */
export function nextWakeAt(state: TwinState, options?: Partial<TwinOptions>): number | undefined {
  return presenceWakeAt(state.presence, offlineAfter(options));
}
