// Periodic reports (docs/design.md §5 "Reports"): a daily report when a UTC day closes, a weekly summary built
// from the week's dailies when an ISO week (Monday 00:00 UTC) closes. The twin feeds this module its
// closed hourly/daily aggregates and its alerts; the accumulators are plain data kept in the snapshot.
//
// Minutes in event: an event counts from its start (t0) to its end (t1 of event.end). A day that closes
// while an event is open counts it up to midnight; the end then adds only what falls after that day's
// start, so an event whose clearing began before midnight and was confirmed after it counts its clearing
// minutes in the closed day (the report cannot be changed once published).

import type { AggregateBucket, Alert, Channel, ClosedAggregate, Report, ReportChannel, ReportEvent, ReportRule, ReportWorst } from "./types.ts";
import { CHANNELS } from "./types.ts";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Most events a daily report lists (the rest are counted in `eventsOmitted`). */
export const MAX_REPORT_EVENTS = 12;

/** Channels that rank the worst hour/day, in priority: the first with data in the period is used. */
export const WORST_CHANNELS: readonly Channel[] = ["allpollu", "pm", "co2", "voc"];

/** [start, mean] of the worst period so far, per WORST_CHANNELS entry (null: no data). */
type WorstCandidates = Array<[number, number] | null>;
/** [ruleId, channel index, events started, ms in event]. */
type RuleTally = [string, number, number, number];
/** [count, sum, min, max] per CHANNELS index (null: no data). */
type ChannelTally = Array<[number, number, number, number] | null>;

interface DayAccumulator {
  worst: WorstCandidates;
  rules: RuleTally[];
  events: ReportEvent[];
  omitted: number;
  /** Occupied time in hours (fractional). */
  occupiedHours: number;
}

interface WeekAccumulator {
  start: number;
  days: number;
  channels: ChannelTally;
  rules: RuleTally[];
  worstHour: WorstCandidates;
  worstDay: WorstCandidates;
  occupiedHours: number;
}

/** Per-channel means of the previous report of a kind, for comparison. */
interface Previous {
  start: number;
  means: Partial<Record<Channel, number>>;
}

/** The report accumulators of one twin (plain data: encoded into the snapshot as is). */
export interface ReportState {
  day: DayAccumulator;
  /** Open events: [ruleId, startedAt, channel index]. */
  open: Array<[string, number, number]>;
  week?: WeekAccumulator;
  lastDay?: Previous;
  lastWeek?: Previous;
}

const noWorst = (): WorstCandidates => WORST_CHANNELS.map(() => null);
const freshDay = (): DayAccumulator => ({ worst: noWorst(), rules: [], events: [], omitted: 0, occupiedHours: 0 });

/** Empty accumulators. */
export function createReportState(): ReportState {
  return { day: freshDay(), open: [] };
}

/** True when the accumulators hold nothing (the snapshot then leaves them out). */
export function isReportStateEmpty(rs: ReportState): boolean {
  const d = rs.day;
  return d.worst.every((w) => w === null) && d.rules.length === 0 && d.events.length === 0 && d.omitted === 0 && d.occupiedHours === 0
    && rs.open.length === 0 && rs.week === undefined && rs.lastDay === undefined && rs.lastWeek === undefined;
}

/** Monday 00:00 UTC of the ISO week holding `t` (1970-01-01 was a Thursday). */
export function weekStartOf(t: number): number {
  const day = Math.floor(t / DAY_MS);
  return (Math.floor((day + 3) / 7) * 7 - 3) * DAY_MS;
}

function tally(rules: RuleTally[], ruleId: string, channel: Channel): RuleTally {
  let r = rules.find((x) => x[0] === ruleId);
  if (r === undefined) {
    r = [ruleId, CHANNELS.indexOf(channel), 0, 0];
    rules.push(r);
  }
  return r;
}

function consider(worst: WorstCandidates, start: number, buckets: Partial<Record<Channel, { mean: number }>>): void {
  WORST_CHANNELS.forEach((ch, i) => {
    const b = buckets[ch];
    if (b === undefined) return;
    const cur = worst[i];
    if (cur === null || cur === undefined || b.mean > cur[1]) worst[i] = [start, b.mean];
  });
}

function pickWorst(worst: WorstCandidates): ReportWorst | undefined {
  for (let i = 0; i < WORST_CHANNELS.length; i++) {
    const w = worst[i];
    if (w) return { start: w[0], channel: WORST_CHANNELS[i] as Channel, mean: round(w[1]) };
  }
  return undefined;
}

/** Notes an alert: event starts and ends feed the day's rules, minutes and event list. */
export function reportOnAlert(rs: ReportState, alert: Alert): void {
  if (alert.ruleId === undefined || alert.channel === "device") return;
  const channel = alert.channel;
  const day = rs.day;
  if (alert.kind === "event.start" && alert.eventId !== undefined && alert.startedAt !== undefined) {
    tally(day.rules, alert.ruleId, channel)[2]++;
    rs.open = rs.open.filter((o) => o[0] !== alert.ruleId).concat([[alert.ruleId, alert.startedAt, CHANNELS.indexOf(channel)]]);
    if (day.events.length < MAX_REPORT_EVENTS) day.events.push({ eventId: alert.eventId, ruleId: alert.ruleId, channel, startedAt: alert.startedAt });
    else day.omitted++;
  } else if (alert.kind === "event.end" && alert.eventId !== undefined && alert.startedAt !== undefined && alert.endedAt !== undefined) {
    const dayStart = Math.floor(alert.at / DAY_MS) * DAY_MS;
    tally(day.rules, alert.ruleId, channel)[3] += Math.max(0, alert.endedAt - Math.max(alert.startedAt, dayStart));
    rs.open = rs.open.filter((o) => o[0] !== alert.ruleId);
    const listed = day.events.find((e) => e.eventId === alert.eventId);
    const ended: ReportEvent = listed ?? { eventId: alert.eventId, ruleId: alert.ruleId, channel, startedAt: alert.startedAt };
    ended.endedAt = alert.endedAt;
    if (alert.peak !== undefined) ended.peak = alert.peak;
    if (alert.mean !== undefined) ended.mean = alert.mean;
    if (listed === undefined) {
      if (day.events.length < MAX_REPORT_EVENTS) day.events.push(ended);
      else day.omitted++;
    }
  }
}

/** Longest gap between two readings counted as occupied time (a silence is not evidence of anyone). */
export const MAX_OCCUPIED_GAP_MS = 15 * 60_000;

/**
 * Notes that the room was occupied from the reading at `fromT` until the next at `toT` (at most
 * MAX_OCCUPIED_GAP_MS): the part before `toT`'s UTC midnight goes to the day being accumulated; the part
 * after it is returned, for the next day once the closing one has been reported.
 */
export function reportOccupied(rs: ReportState, fromT: number, toT: number): number {
  const until = Math.min(toT, fromT + MAX_OCCUPIED_GAP_MS);
  const midnight = (Math.floor(fromT / DAY_MS) + 1) * DAY_MS;
  rs.day.occupiedHours += Math.max(0, Math.min(until, midnight) - fromT) / HOUR_MS;
  return Math.max(0, until - midnight);
}

const HOUR_MS = 3_600_000;
const hoursOf = (hours: number): number => Math.round(hours * 10) / 10;

/** Notes a closed hour (candidate worst hour of the day and week). */
export function reportOnHourClosed(rs: ReportState, hour: ClosedAggregate): void {
  consider(rs.day.worst, hour.start, hour.channels);
}

function reportChannel(b: AggregateBucket): ReportChannel {
  const c: ReportChannel = { count: b.count, mean: round(b.mean), min: b.min, max: b.max };
  if (b.topMaxMean !== undefined) c.topMaxMean = round(b.topMaxMean);
  if (b.topMinMean !== undefined) c.topMinMean = round(b.topMinMean);
  return c;
}

function rulesOf(tallies: readonly RuleTally[]): Record<string, ReportRule> {
  const rules: Record<string, ReportRule> = Object.create(null) as Record<string, ReportRule>;
  for (const [ruleId, ci, events, ms] of tallies) {
    if (events > 0 || ms > 0) rules[ruleId] = { channel: CHANNELS[ci] as Channel, events, minutes: Math.round(ms / MINUTE_MS) };
  }
  return rules;
}

function meansOf(channels: Report["channels"]): Partial<Record<Channel, number>> {
  const means: Partial<Record<Channel, number>> = {};
  for (const ch of CHANNELS) if (channels[ch] !== undefined) means[ch] = (channels[ch] as ReportChannel).mean;
  return means;
}

/**
 * A UTC day closed (its daily aggregate) while applying a reading at `nextT`: returns its daily report
 * and, when `nextT` is in a later ISO week, the weekly report of the day's week. Resets the day.
 */
export function reportOnDayClosed(rs: ReportState, deviceId: string, closed: ClosedAggregate, nextT: number): Report[] {
  const start = closed.start;
  const end = start + DAY_MS;
  const day = rs.day;
  // events still open count up to midnight
  for (const [ruleId, startedAt, ci] of rs.open) tally(day.rules, ruleId, CHANNELS[ci] as Channel)[3] += Math.max(0, end - Math.max(startedAt, start));
  const channels: Report["channels"] = {};
  for (const ch of CHANNELS) {
    const b = closed.channels[ch];
    if (b !== undefined) channels[ch] = reportChannel(b);
  }
  const daily: Report = {
    id: `${deviceId}:report.day:${start}`, deviceId, kind: "report.day", start, end, channels,
    rules: rulesOf(day.rules), events: day.events, eventsOmitted: day.omitted, occupiedHours: hoursOf(day.occupiedHours),
  };
  const worstHour = pickWorst(day.worst);
  if (worstHour !== undefined) daily.worstHour = worstHour;
  if (rs.lastDay !== undefined) daily.previous = rs.lastDay;
  rs.lastDay = { start, means: meansOf(channels) };

  // the week accumulates the day
  const weekStart = weekStartOf(start);
  if (rs.week === undefined || rs.week.start !== weekStart) {
    rs.week = { start: weekStart, days: 0, channels: CHANNELS.map(() => null), rules: [], worstHour: noWorst(), worstDay: noWorst(), occupiedHours: 0 };
  }
  const week = rs.week;
  week.days++;
  week.occupiedHours += day.occupiedHours;
  CHANNELS.forEach((ch, ci) => {
    const b = closed.channels[ch];
    if (b === undefined) return;
    const cur = week.channels[ci];
    if (cur === null || cur === undefined) week.channels[ci] = [b.count, b.mean * b.count, b.min, b.max];
    else week.channels[ci] = [cur[0] + b.count, cur[1] + b.mean * b.count, Math.min(cur[2], b.min), Math.max(cur[3], b.max)];
  });
  for (const [ruleId, ci, events, ms] of day.rules) {
    const t = tally(week.rules, ruleId, CHANNELS[ci] as Channel);
    t[2] += events;
    t[3] += ms;
  }
  WORST_CHANNELS.forEach((_, i) => {
    const h = day.worst[i];
    const w = week.worstHour[i];
    if (h && (!w || h[1] > w[1])) week.worstHour[i] = h;
  });
  consider(week.worstDay, start, closed.channels);

  rs.day = freshDay();
  const reports = [daily];
  if (weekStartOf(nextT) > weekStart) {
    reports.push(closeWeek(rs, deviceId, week));
    delete rs.week;
  }
  return reports;
}

function closeWeek(rs: ReportState, deviceId: string, week: WeekAccumulator): Report {
  const channels: Report["channels"] = {};
  CHANNELS.forEach((ch, ci) => {
    const t = week.channels[ci];
    if (t) channels[ch] = { count: t[0], mean: round(t[1] / t[0]), min: t[2], max: t[3] };
  });
  const report: Report = {
    id: `${deviceId}:report.week:${week.start}`, deviceId, kind: "report.week", start: week.start, end: week.start + 7 * DAY_MS,
    channels, rules: rulesOf(week.rules), events: [], eventsOmitted: 0, occupiedHours: hoursOf(week.occupiedHours), days: week.days,
  };
  const worstHour = pickWorst(week.worstHour);
  if (worstHour !== undefined) report.worstHour = worstHour;
  const worstDay = pickWorst(week.worstDay);
  if (worstDay !== undefined) report.worstDay = worstDay;
  if (rs.lastWeek !== undefined) report.previous = rs.lastWeek;
  rs.lastWeek = { start: week.start, means: meansOf(channels) };
  return report;
}

// Snapshot section: the accumulators are plain data (arrays, numbers, strings) and are stored as they
// are; decoding checks every field so a decoded twin is always sound.

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isChannelIndex = (x: unknown): boolean => isCount(x) && (x as number) < CHANNELS.length;
const isRuleId = (x: unknown): x is string => typeof x === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(x);
const isPlain = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);

function isWorst(x: unknown): x is WorstCandidates {
  return Array.isArray(x) && x.length === WORST_CHANNELS.length && x.every((w) => w === null || (Array.isArray(w) && w.length === 2 && isNum(w[0]) && isNum(w[1])));
}
function isTallies(x: unknown): x is RuleTally[] {
  return Array.isArray(x) && x.every((t) => Array.isArray(t) && t.length === 4 && isRuleId(t[0]) && isChannelIndex(t[1]) && isCount(t[2]) && isNum(t[3]) && t[3] >= 0);
}
function isEvent(x: unknown): x is ReportEvent {
  if (!isPlain(x) || typeof x.eventId !== "string" || !isRuleId(x.ruleId) || !CHANNELS.includes(x.channel as Channel) || !isNum(x.startedAt)) return false;
  return (["endedAt", "peak", "mean"] as const).every((k) => x[k] === undefined || isNum(x[k]));
}
function isPrevious(x: unknown): x is Previous {
  return isPlain(x) && isNum(x.start) && isPlain(x.means) && Object.entries(x.means).every(([k, v]) => CHANNELS.includes(k as Channel) && isNum(v));
}
function isDay(x: unknown): x is DayAccumulator {
  return isPlain(x) && isWorst(x.worst) && isTallies(x.rules) && Array.isArray(x.events) && x.events.length <= MAX_REPORT_EVENTS && x.events.every(isEvent)
    && isCount(x.omitted) && isNum(x.occupiedHours) && x.occupiedHours >= 0;
}
function isWeek(x: unknown): x is WeekAccumulator {
  return isPlain(x) && isNum(x.start) && isCount(x.days) && Array.isArray(x.channels) && x.channels.length === CHANNELS.length
    && x.channels.every((c) => c === null || (Array.isArray(c) && c.length === 4 && c.every(isNum)))
    && isTallies(x.rules) && isWorst(x.worstHour) && isWorst(x.worstDay) && isNum(x.occupiedHours) && x.occupiedHours >= 0;
}

/** The snapshot form of the accumulators: the state's plain data, its optional parts in a fixed key order. */
export function encodeReportState(rs: ReportState): unknown {
  const out: Record<string, unknown> = { day: rs.day, open: rs.open };
  if (rs.week !== undefined) out.week = rs.week;
  if (rs.lastDay !== undefined) out.lastDay = rs.lastDay;
  if (rs.lastWeek !== undefined) out.lastWeek = rs.lastWeek;
  return out;
}

/** Restores accumulators from {@link encodeReportState}'s value; undefined when it is not sound. */
export function decodeReportState(x: unknown): ReportState | undefined {
  if (!isPlain(x) || !isDay(x.day)) return undefined;
  if (!Array.isArray(x.open) || !x.open.every((o) => Array.isArray(o) && o.length === 3 && isRuleId(o[0]) && isNum(o[1]) && isChannelIndex(o[2]))) return undefined;
  if (x.week !== undefined && !isWeek(x.week)) return undefined;
  if (x.lastDay !== undefined && !isPrevious(x.lastDay)) return undefined;
  if (x.lastWeek !== undefined && !isPrevious(x.lastWeek)) return undefined;
  for (const k of Object.keys(x)) if (!["day", "open", "week", "lastDay", "lastWeek"].includes(k)) return undefined;
  const rs: ReportState = { day: x.day, open: x.open as ReportState["open"] };
  if (x.week !== undefined) rs.week = x.week;
  if (x.lastDay !== undefined) rs.lastDay = x.lastDay;
  if (x.lastWeek !== undefined) rs.lastWeek = x.lastWeek;
  return rs;
}
