// Forecast alerts (docs/design.md §4): when a rule that is `normal` is forecast to cross its `enter`
// within FORECAST_ALERT_HORIZON_MS, one alert of kind `forecast` — ventilation can start before the
// air is bad. "Crossed" means by a margin of FORECAST_MARGIN of the rule's hysteresis band (enter −
// exit): forecasts that only graze `enter` were mostly wrong (docs/ml.md). Once per forming event: a
// channel that fired stays quiet until its forecast no longer crosses any of its rules and none of
// them is in an event (the episode is over).

import { CHANNELS } from "../types.ts";
import type { Alert, Channel, Rule } from "../types.ts";
import * as channelModel from "./channel-model.ts";
import type { StepResult } from "./channel-model.ts";
import * as layout from "./layout.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use (a load, a compare and a branch
// per constant); a module-local const folds to an immediate. (Bit-identical either way.)
const { dampedHours, forecastAfter, forecastChannel } = channelModel;
const { C_FLAGS, C_LEARNED_MIN, C_SCALE, channelBase, f32, FELL, FELL_BEFORE, FORECAST_FIRED, ROSE, ROSE_BEFORE } = layout;

const SUSTAINED_RISE = ROSE | ROSE_BEFORE;
const SUSTAINED_FALL = FELL | FELL_BEFORE;

/** How far ahead a crossing raises a forecast alert (ms). */
export const FORECAST_ALERT_HORIZON_MS = 30 * 60_000;
/** Share of the rule's band (enter − exit) the forecast must pass `enter` by. */
export const FORECAST_MARGIN = 0.1;
/** Learned minutes a channel needs before it may raise forecast alerts (its trend must mean something). */
const FORECAST_WARM_MIN = 60;
/** Steps at which the forecast is checked for the first crossing (ms). */
const STEP_MS = 5 * 60_000;

/** Rules and their open events as forecast alerts need them (they fire only for rules in `normal`). */
export interface RuleContext {
  rules: readonly Rule[];
  /** Ids of the rules whose event machine is not `normal`. */
  busy: readonly string[];
}

const crosses = (rule: Rule, y: number): boolean => (rule.direction === "above" ? y >= rule.enter : y <= rule.enter);
const HORIZON_S = FORECAST_ALERT_HORIZON_MS / 1000;
const DAMPED_HOURS_30 = dampedHours(HORIZON_S);

// Per rule list (rule lists are immutable values, so identity is enough), per channel: the lowest
// forecast that could fire an "above" rule and the highest that could fire a "below" one (±∞: none), a
// hair wider than the rules' own test so that the quick rejection never differs from it.
let thresholdsOf: readonly Rule[] | undefined;
const RISE_AT = new Float64Array(CHANNELS.length);
const FALL_AT = new Float64Array(CHANNELS.length);
const SLACK = 1e-9;

function thresholds(rules: readonly Rule[]): void {
  RISE_AT.fill(Infinity);
  FALL_AT.fill(-Infinity);
  for (const rule of rules) {
    const ci = CHANNELS.indexOf(rule.channel);
    const at = rule.enter + FORECAST_MARGIN * (rule.enter - rule.exit);
    const slack = SLACK * (1 + Math.abs(at));
    if (rule.direction === "above") RISE_AT[ci] = Math.min(RISE_AT[ci] as number, at - slack);
    else FALL_AT[ci] = Math.max(FALL_AT[ci] as number, at + slack);
  }
  thresholdsOf = rules;
}

/** Makes {@link mayForecast}'s thresholds those of `rules` (once per rule list: call before each reading's channels). */
export function prepareForecastRules(rules: readonly Rule[]): void {
  if (rules !== thresholdsOf) thresholds(rules);
}

/**
 * The quick test after channel `ci`'s model took a reading (`step`, from updateChannel), with the
 * thresholds of {@link prepareForecastRules}: false when no forecast alert can fire or end — no
 * episode open, and the trend pointing away from every rule of the channel or the 30-minute forecast
 * short of them all (the forecast is the last value plus the damped trend). Most readings end here.
 */
export function mayForecast(ci: number, step: StepResult): boolean {
  if ((step.flags & FORECAST_FIRED) !== 0) return true;
  const trend = step.trend;
  if (trend > 0 ? RISE_AT[ci] === Infinity : trend < 0 ? FALL_AT[ci] === -Infinity : true) return false;
  if (step.learnedMin < FORECAST_WARM_MIN) return false;
  const far = Math.fround(step.value) + trend * DAMPED_HOURS_30;
  return !(far < (RISE_AT[ci] as number) && far > (FALL_AT[ci] as number));
}

/**
 * Checks the rules of channel `ci` after its model took a reading (`step`, which {@link mayForecast}
 * let through); returns an alert or undefined.
 */
export function forecastAlert(v: DataView, ci: number, deviceId: string, step: StepResult, ctx: RuleContext): Alert | undefined {
  const b = channelBase(ci);
  const flags = v.getUint8(b + C_FLAGS); // the anomaly check may have changed them since the step
  const fired = (flags & FORECAST_FIRED) !== 0;
  const trend = step.trend;
  if (v.getUint16(b + C_LEARNED_MIN, true) < FORECAST_WARM_MIN) return undefined;
  const far = forecastAfter(v, ci, HORIZON_S);
  const scale = f32(v, b + C_SCALE);
  const ch = CHANNELS[ci] as Channel;
  const x = step.value;
  const t = step.t;
  const rules = ctx.rules;
  let anyCrossing = false;
  let anyBusy = false;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as Rule;
    if (rule.channel !== ch) continue;
    if (ctx.busy.length > 0 && ctx.busy.includes(rule.id)) {
      anyBusy = true;
      continue;
    }
    if (crosses(rule, x)) continue; // at/over enter already: the rule's own machine takes it from here
    if (rule.direction === "above" ? trend <= 0 : trend >= 0) continue;
    if (!crosses(rule, far - FORECAST_MARGIN * (rule.enter - rule.exit))) continue;
    anyCrossing = true;
    if (fired) continue;
    // a sustained move: the value rose (fell) on each of the last two readings, the last time by at
    // least a residual scale (beyond noise); one-reading jumps were mostly over before the rule's
    // minimum duration (docs/ml.md, chosen on training scenarios)
    if (rule.direction === "above" ? (flags & SUSTAINED_RISE) !== SUSTAINED_RISE || x - step.previous < scale : (flags & SUSTAINED_FALL) !== SUSTAINED_FALL || step.previous - x < scale) continue;
    let expectedAt = t + FORECAST_ALERT_HORIZON_MS;
    let value = far;
    for (let at = t + STEP_MS; at < t + FORECAST_ALERT_HORIZON_MS; at += STEP_MS) {
      const y = forecastChannel(v, ci, at) as number;
      if (crosses(rule, y)) {
        expectedAt = at;
        value = y;
        break;
      }
    }
    v.setUint8(b + C_FLAGS, flags | FORECAST_FIRED);
    return {
      id: `${deviceId}:${rule.id}:forecast:${t}`, deviceId, ruleId: rule.id, channel: ch, kind: "forecast", at: t,
      value: Math.round(value * 1000) / 1000, threshold: rule.enter, expectedAt,
    };
  }
  if (fired && !anyCrossing && !anyBusy) v.setUint8(b + C_FLAGS, flags & ~FORECAST_FIRED);
  return undefined;
}
