// The pollution-event state machine of each rule (docs/design.md §4), in event time.
//
// Layout: a rule in `normal` has no storage at all (twins with no open machine share two frozen empty
// arrays). Every other rule owns one slot of STRIDE (9) doubles in a single packed number array per twin,
// found by its rule id in a parallel `ids` array — about 100 heap bytes per open machine. The state is owned
// by the twin's actor and is mutated in place for speed; callers that must not change it (a rejected
// command) simply do not call in here.
//
// Accumulators: `main` holds the values with t0 <= t < t1 (pending and active phases); while clearing,
// the values seen since t1 go to a side accumulator, merged into `main` if the rule returns to active and
// dropped when the event ends, so an ended event's peak/mean cover exactly t0 <= t < t1. The side needs
// no peak: clearing values are <= exit <= enter <= the value at t0 (mirrored for below), so they can
// never be the event's peak.

import type { Alert, Channel, Reading, Rule } from "./types.ts";

/** Per-rule machine phase as shown by {@link eventsView}. */
export type EventPhase = "normal" | "pending" | "active" | "clearing";

const PENDING = 1;
const ACTIVE = 2;
const CLEARING = 3;
const PHASE_NAMES: readonly EventPhase[] = ["normal", "pending", "active", "clearing"];

// Slot field offsets.
const PHASE = 0; // PENDING | ACTIVE | CLEARING
const SINCE = 1; // t at which the current phase began (t1 while clearing)
const T0 = 2; // pending since = startedAt of the event
const LAST = 3; // t of the last reading this rule saw
const N = 4; // main accumulator: count, sum, peak
const SUM = 5;
const PEAK = 6;
const CN = 7; // clearing-side accumulator: count, sum
const CSUM = 8;
const STRIDE = 9;

/** The event machines of one twin: rule ids of non-normal rules and their slots (STRIDE doubles each). */
export interface EventStates {
  ids: string[];
  d: number[];
}

/** Per-rule view for the HTTP API; event fields only while an event is active or clearing. */
export interface EventView {
  state: EventPhase;
  /** When the current phase began (event time). */
  since?: number;
  eventId?: string;
  startedAt?: number;
  /** Peak and mean of the event's values so far (clearing values included). */
  peak?: number;
  mean?: number;
}

/** Fresh machines: every rule in `normal`. */
export function createEventStates(): EventStates {
  return { ids: NO_IDS as string[], d: NO_DATA as number[] };
}

// Shared by every twin whose rules are all normal; frozen so that a stray write fails loudly.
const NO_IDS: readonly string[] = Object.freeze([]);
const NO_DATA: readonly number[] = Object.freeze([]);

/** The event id of docs/design.md §4. */
export function eventId(deviceId: string, ruleId: string, startedAt: number): string {
  return `${deviceId}:${ruleId}:${startedAt}`;
}

const entered = (r: Rule, v: number): boolean => (r.direction === "above" ? v >= r.enter : v <= r.enter);
const cleared = (r: Rule, v: number): boolean => (r.direction === "above" ? v <= r.exit : v >= r.exit);
const peakOf = (r: Rule, a: number, b: number): number => (r.direction === "above" ? Math.max(a, b) : Math.min(a, b));
const at = (d: number[], i: number): number => d[i] as number;

/**
 * Feeds one applied reading to every rule whose channel it carries; appends the resulting
 * `event.start` / `event.end` alerts to `out` (returned). Readings must come in increasing `t`.
 */
export function applyReadingToEvents(
  states: EventStates,
  rules: readonly Rule[],
  deviceId: string,
  reading: Reading,
  out: Alert[] = [],
): Alert[] {
  const t = reading.t;
  for (const rule of rules) {
    const v = channelValue(reading, rule.channel);
    if (v === undefined) continue;
    const i = states.ids.length === 0 ? -1 : states.ids.indexOf(rule.id);
    if (i < 0) {
      if (!entered(rule, v)) continue;
      // concat allocates exactly what is needed (push would leave growth slack behind in every twin)
      states.ids = states.ids.concat(rule.id);
      states.d = states.d.concat(PENDING, t, t, t, 1, v, v, 0, 0);
      if (rule.minDurationMs === 0) activate(states.d, (states.ids.length - 1) * STRIDE, rule, deviceId, t, v, out);
      continue;
    }
    const d = states.d;
    const o = i * STRIDE;
    d[o + LAST] = t;
    switch (at(d, o + PHASE)) {
      case PENDING:
        if (!entered(rule, v)) {
          removeSlot(states, i);
          break;
        }
        accumulate(d, o, rule, v);
        if (t - at(d, o + T0) >= rule.minDurationMs) activate(d, o, rule, deviceId, t, v, out);
        break;
      case ACTIVE:
        if (!cleared(rule, v)) {
          accumulate(d, o, rule, v);
          break;
        }
        d[o + PHASE] = CLEARING;
        d[o + SINCE] = t;
        d[o + CN] = 1;
        d[o + CSUM] = v;
        if (rule.clearDurationMs === 0) finish(states, i, rule, deviceId, t, v, out);
        break;
      case CLEARING:
        if (!cleared(rule, v)) {
          d[o + PHASE] = ACTIVE;
          d[o + SINCE] = t;
          d[o + N] = at(d, o + N) + at(d, o + CN);
          d[o + SUM] = at(d, o + SUM) + at(d, o + CSUM);
          d[o + CN] = d[o + CSUM] = 0;
          accumulate(d, o, rule, v);
          break;
        }
        d[o + CN] = at(d, o + CN) + 1;
        d[o + CSUM] = at(d, o + CSUM) + v;
        if (t - at(d, o + SINCE) >= rule.clearDurationMs) finish(states, i, rule, deviceId, t, v, out);
        break;
    }
  }
  return out;
}

/** reading[ch] as named loads: the keyed load `reading[rule.channel]` sees every channel name and goes megamorphic. */
function channelValue(r: Reading, ch: Channel): number | undefined {
  switch (ch) {
    case "pm":
      return r.pm;
    case "co2":
      return r.co2;
    case "voc":
      return r.voc;
    case "tmp":
      return r.tmp;
    case "hum":
      return r.hum;
    case "allpollu":
      return r.allpollu;
  }
}

/** Adds a value to the main accumulator of the slot at `o`. */
function accumulate(d: number[], o: number, rule: Rule, v: number): void {
  d[o + N] = at(d, o + N) + 1;
  d[o + SUM] = at(d, o + SUM) + v;
  d[o + PEAK] = peakOf(rule, at(d, o + PEAK), v);
}

function removeSlot(states: EventStates, i: number): void {
  if (states.ids.length === 1) {
    states.ids = NO_IDS as string[];
    states.d = NO_DATA as number[];
    return;
  }
  states.ids.splice(i, 1);
  states.d.splice(i * STRIDE, STRIDE);
}

function activate(d: number[], o: number, rule: Rule, deviceId: string, t: number, v: number, out: Alert[]): void {
  d[o + PHASE] = ACTIVE;
  d[o + SINCE] = t;
  const t0 = at(d, o + T0);
  const id = eventId(deviceId, rule.id, t0);
  out.push({
    id: `${id}:start`, deviceId, ruleId: rule.id, channel: rule.channel, kind: "event.start", at: t,
    value: v, threshold: rule.enter, eventId: id, startedAt: t0,
  });
}

/** Regular end from clearing: endedAt t1, statistics over t0 <= t < t1 (the main accumulator). */
function finish(states: EventStates, i: number, rule: Rule, deviceId: string, t: number, v: number, out: Alert[]): void {
  const d = states.d;
  const o = i * STRIDE;
  const t0 = at(d, o + T0);
  const t1 = at(d, o + SINCE);
  const id = eventId(deviceId, rule.id, t0);
  out.push({
    id: `${id}:end`, deviceId, ruleId: rule.id, channel: rule.channel, kind: "event.end", at: t,
    value: v, threshold: rule.exit, eventId: id, startedAt: t0, endedAt: t1, durationMs: t1 - t0,
    peak: at(d, o + PEAK), mean: at(d, o + SUM) / at(d, o + N),
  });
  removeSlot(states, i);
}

/**
 * Retires the machine of `rule` (being replaced, deleted or reset): an active or clearing event ends
 * with `endedAt` = `at` = the t of the last reading the rule saw, and peak/mean over every value the event
 * saw (t0 <= t <= endedAt, clearing values included, since it was cut short rather than cleared); a
 * pending rule is dropped silently; a normal one has nothing to retire.
 */
export function retireRuleEvents(states: EventStates, rule: Rule, deviceId: string, out: Alert[] = []): Alert[] {
  const i = states.ids.indexOf(rule.id);
  if (i < 0) return out;
  const d = states.d;
  const o = i * STRIDE;
  const phase = at(d, o + PHASE);
  if (phase === ACTIVE || phase === CLEARING) {
    const t0 = at(d, o + T0);
    const last = at(d, o + LAST);
    const id = eventId(deviceId, rule.id, t0);
    const n = at(d, o + N) + at(d, o + CN);
    const sum = at(d, o + SUM) + at(d, o + CSUM);
    out.push({
      id: `${id}:end`, deviceId, ruleId: rule.id, channel: rule.channel, kind: "event.end", at: last,
      eventId: id, startedAt: t0, endedAt: last, durationMs: last - t0, peak: at(d, o + PEAK), mean: sum / n,
    });
  }
  removeSlot(states, i);
  return out;
}

/** The per-rule state of every given rule, keyed by rule id. */
export function eventsView(states: EventStates, rules: readonly Rule[], deviceId: string): Record<string, EventView> {
  const view: Record<string, EventView> = {};
  for (const rule of rules) {
    const i = states.ids.indexOf(rule.id);
    if (i < 0) {
      view[rule.id] = { state: "normal" };
      continue;
    }
    const d = states.d;
    const o = i * STRIDE;
    const phase = at(d, o + PHASE);
    const v: EventView = { state: PHASE_NAMES[phase] as EventPhase, since: at(d, o + SINCE) };
    if (phase !== PENDING) {
      const t0 = at(d, o + T0);
      v.eventId = eventId(deviceId, rule.id, t0);
      v.startedAt = t0;
      const clearing = phase === CLEARING;
      v.peak = at(d, o + PEAK);
      v.mean = (at(d, o + SUM) + (clearing ? at(d, o + CSUM) : 0)) / (at(d, o + N) + (clearing ? at(d, o + CN) : 0));
    }
    view[rule.id] = v;
  }
  return view;
}

/** Msgpack-friendly form: `[ruleIds, slots]` (copies). */
export type EncodedEventStates = [string[], number[]];

/** Encodes the machines for a snapshot. */
export function encodeEventStates(states: EventStates): EncodedEventStates {
  return [[...states.ids], [...states.d]];
}

/**
 * Decodes {@link encodeEventStates}'s output; undefined when malformed or when a slot names no rule of
 * `rules` (a snapshot whose parts disagree).
 */
export function decodeEventStates(x: unknown, rules: readonly Rule[]): EventStates | undefined {
  if (!Array.isArray(x) || x.length !== 2) return undefined;
  const [ids, d] = x as unknown[];
  if (!Array.isArray(ids) || !Array.isArray(d) || d.length !== ids.length * STRIDE) return undefined;
  if (!ids.every((id, i) => typeof id === "string" && ids.indexOf(id) === i && rules.some((r) => r.id === id))) return undefined;
  if (!d.every((n) => typeof n === "number" && Number.isFinite(n))) return undefined;
  for (let o = 0; o < d.length; o += STRIDE) {
    const phase = d[o + PHASE] as number;
    if (phase !== PENDING && phase !== ACTIVE && phase !== CLEARING) return undefined;
    if (!((d[o + N] as number) >= 1)) return undefined;
  }
  return ids.length === 0 ? createEventStates() : { ids: [...(ids as string[])], d: [...(d as number[])] };
}
