// Forecast alerts (docs/design.md §4): when a rule that is `normal` is forecast to cross its `enter`
// within FORECAST_ALERT_HORIZON_MS, one alert of kind `forecast` — ventilation can start before the
// air is bad. "Crossed" means by a margin of FORECAST_MARGIN of the rule's hysteresis band (enter −
// exit): forecasts that only graze `enter` were mostly wrong (docs/ml.md). Once per forming event: a
// channel that fired stays quiet until its forecast no longer crosses any of its rules and none of
// them is in an event (the episode is over).

import { CHANNELS } from "../types.ts";
import type { Alert, Channel, Rule } from "../types.ts";
import { forecastChannel } from "./channel-model.ts";
import { C_LEARNED_MIN, C_MASK, C_TREND, channelBase, f32, FORECAST_FIRED, setU32, u32 } from "./layout.ts";

/** How far ahead a crossing raises a forecast alert (ms). */
export const FORECAST_ALERT_HORIZON_MS = 30 * 60_000;
/** Share of the rule's band (enter − exit) the forecast must pass `enter` by. */
export const FORECAST_MARGIN = 0.1;
/** Learned minutes a channel needs before it may raise forecast alerts (its trend must mean something). */
export const FORECAST_WARM_MIN = 60;
/** Steps at which the forecast is checked for the first crossing (ms). */
const STEP_MS = 5 * 60_000;

/** Rules and their open events as forecast alerts need them (they fire only for rules in `normal`). */
export interface RuleContext {
  rules: readonly Rule[];
  /** Ids of the rules whose event machine is not `normal`. */
  busy: readonly string[];
}

const crosses = (rule: Rule, y: number): boolean => (rule.direction === "above" ? y >= rule.enter : y <= rule.enter);

// Channels that have rules, per rule list (rule lists are immutable values, so identity is enough).
let maskOf: readonly Rule[] | undefined;
let channelsWithRules = 0;

/** Checks the rules of channel `ch` after its model took a reading at `t`; returns an alert or undefined. */
export function forecastAlert(v: DataView, ci: number, deviceId: string, ch: Channel, x: number, t: number, ctx: RuleContext): Alert | undefined {
  if (ctx.rules !== maskOf) {
    channelsWithRules = 0;
    for (const rule of ctx.rules) channelsWithRules |= 1 << CHANNELS.indexOf(rule.channel);
    maskOf = ctx.rules;
  }
  const b = channelBase(ci);
  // most channels of most twins: no rule to forecast for (and no episode to close)
  if ((channelsWithRules & (1 << ci)) === 0 && (u32(v, b + C_MASK) & FORECAST_FIRED) === 0) return undefined;
  if (v.getUint16(b + C_LEARNED_MIN, true) < FORECAST_WARM_MIN) return undefined;
  const mask = u32(v, b + C_MASK);
  const fired = (mask & FORECAST_FIRED) !== 0;
  const trend = f32(v, b + C_TREND);
  let anyCrossing = false;
  let far = NaN;
  let anyBusy = false;
  for (const rule of ctx.rules) {
    if (rule.channel !== ch) continue;
    if (ctx.busy.length > 0 && ctx.busy.includes(rule.id)) {
      anyBusy = true;
      continue;
    }
    if (crosses(rule, x)) continue; // at/over enter already: the rule's own machine takes it from here
    // a trend away from enter cannot forecast a crossing (the forecast is the last value plus the damped trend)
    if (rule.direction === "above" ? trend <= 0 : trend >= 0) continue;
    if (Number.isNaN(far)) far = forecastChannel(v, ci, t + FORECAST_ALERT_HORIZON_MS) as number;
    if (!crosses(rule, far - FORECAST_MARGIN * (rule.enter - rule.exit))) continue;
    anyCrossing = true;
    if (fired) continue;
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
    setU32(v, b + C_MASK, mask | FORECAST_FIRED);
    return {
      id: `${deviceId}:${rule.id}:forecast:${t}`, deviceId, ruleId: rule.id, channel: ch, kind: "forecast", at: t,
      value: Math.round(value * 1000) / 1000, threshold: rule.enter, expectedAt,
    };
  }
  if (fired && !anyCrossing && !anyBusy) setU32(v, b + C_MASK, mask & ~FORECAST_FIRED);
  return undefined;
}
