// Per-channel statistics of one device (docs/design.md §4) on the packed layout of stats-layout.ts: exact running
// statistics (Welford, time-aware EWMA), hourly and daily rings with per-day top-5 means, closed-bucket
// outputs, and the co2/voc calibration of calibration.ts. Pure: time comes from the readings.

import * as calibration from "./calibration.ts";
import * as snapshot from "./snapshot.ts";
import { releaseLayout } from "./stats-layout.ts";
import { CHANNELS, type AggregateBucket, type CalibrationChange, type Channel, type ClosedAggregate, type Reading } from "./types.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use; a module-local const folds to
// an immediate (learned/channel-model.ts has the measurement).
const { onDayClosed, readCalibration, recalibrateChannel } = calibration;
const { DAY_MS, DAY_RING, DAYS_KEPT, DAY_SLOT, D_COUNT, D_MAX, D_MEAN, D_MIN, D_TOP_HIGH_SUM, D_TOP_LOW_SUM, HOURS_KEPT, HOUR_MS, HOUR_RING, HOUR_SLOT, H_MAX, H_MEAN, H_MIN, LATEST_T, MAX_Q, QUANTUM, S_COUNT, S_DAY_SUM, S_EWMA, S_HOUR_SUM, S_LAST, S_LAST_AT, S_M2, S_MAX, S_MAX_AT, S_MEAN, S_MIN, S_MIN_AT, STATS_BYTES, TOP_HIGH, TOP_LOW, TOP_N, channelBase, clearLayout, daySlot, decodeStatsSection, emptyLayout, encodeStatsSection, encodeStatsSectionTransient, getF64, getU16, getU24, hourSlot, ringIndex, setF64, setU16, setU24 } = snapshot;

export { DAY_MS, HOUR_MS, QUANTUM, STATS_BYTES } from "./snapshot.ts";

/** Time constant τ of the time-aware EWMA, in ms (1 h). */
export const EWMA_TAU_MS = 3_600_000;

declare const statsBrand: unique symbol;
/** The statistics of one twin: a DataView whose first STATS_BYTES bytes are theirs (layout in stats-layout.ts). Opaque. */
export interface TwinStats {
  readonly [statsBrand]: true;
}

/** One bucket as shown to users; top-5 means only on daily buckets. Values in channel units, start in epoch ms. */
export interface BucketView {
  start: number;
  count: number;
  mean: number;
  min: number;
  max: number;
  topMaxMean?: number;
  topMinMean?: number;
}

/** Statistics of one channel; times in epoch ms, values in channel units; buckets oldest first. */
export interface ChannelView {
  count: number;
  mean: number;
  stddev: number;
  min: number;
  minAt: number;
  max: number;
  maxAt: number;
  last: number;
  lastAt: number;
  ewma: number;
  hourly: BucketView[];
  daily: BucketView[];
}

/** What applying one reading produced: closed buckets (hour first, then day) and calibration changes (co2, voc). */
export interface StatsOutputs {
  aggregates: ClosedAggregate[];
  calibration: CalibrationChange[];
}

const SCALE = CHANNELS.map((ch) => QUANTUM[ch].scale);
const QOFF = CHANNELS.map((ch) => QUANTUM[ch].offset);
const view = (s: TwinStats): DataView => s as unknown as DataView;
const wrap = (v: DataView): TwinStats => v as unknown as TwinStats;

/** Empty statistics (one buffer of STATS_BYTES, plus `roomAfter` bytes for the twin's learned state). */
export function createStats(roomAfter = 0): TwinStats {
  return wrap(emptyLayout(roomAfter));
}

/** Back to empty, calibration included. */
export function resetStats(stats: TwinStats): void {
  clearLayout(view(stats));
}

/**
 * Gives the statistics' buffer (the learned state's too: it is the same) back for the next twin created or
 * decoded (stats-layout.ts, releaseLayout). Nothing may use them afterwards.
 */
export function releaseStats(stats: TwinStats): void {
  releaseLayout(view(stats));
}

/** What a released twin holds instead of its statistics: empty, so any use throws at once (RangeError). */
export const RELEASED_STATS: TwinStats = wrap(new DataView(new ArrayBuffer(0)));

/** An independent copy. */
export function cloneStats(stats: TwinStats): TwinStats {
  const v = view(stats);
  return wrap(new DataView(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
}

/** t (epoch ms) of the latest applied reading, undefined when empty. */
export function statsLatestT(stats: TwinStats): number | undefined {
  const t = getF64(view(stats), LATEST_T);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Applies one accepted reading (all channels it carries). The caller applies readings in increasing `t`
 * (it drops duplicates and late ones); a reading with t ≤ the latest applied is ignored here.
 * Returns the buckets it closed (the previous hour, and the previous day when the UTC day changed,
 * each listing every channel that had readings in it; mean exact, min/max/top means at QUANTUM
 * resolution) and the calibration changes caused by a day closing.
 */
export function applyReadingToStats(stats: TwinStats, deviceId: string, r: Reading): StatsOutputs {
  const v = view(stats);
  const t = r.t;
  const latest = v.getFloat64(LATEST_T, true);
  // most readings close nothing: they share one empty (frozen) result instead of allocating their own
  let out = NOTHING_CLOSED;
  if (t <= latest) return out;
  const hour = Math.floor(t / HOUR_MS);
  const day = Math.floor(t / DAY_MS);
  if (!Number.isNaN(latest)) {
    const curHour = Math.floor(latest / HOUR_MS);
    if (hour > curHour) {
      out = { aggregates: [], calibration: [] };
      const curDay = Math.floor(latest / DAY_MS);
      const closedHour = closeHour(v, deviceId, curHour);
      if (closedHour) out.aggregates.push(closedHour);
      if (day > curDay) {
        const closedDay = closeDay(v, deviceId, curDay);
        if (closedDay) out.aggregates.push(closedDay);
        out.calibration = onDayClosed(v, deviceId, curDay, day, t);
        advanceDays(v, curDay, day);
      }
      advanceHours(v, curHour, hour);
    }
  }
  v.setFloat64(LATEST_T, t, true);
  // Per reading, not per channel: the ring slots (relative to a channel block) and the EWMA weight.
  const hourAt = HOUR_RING + ringIndex(hour, HOURS_KEPT) * HOUR_SLOT;
  const dayAt = DAY_RING + ringIndex(day, DAYS_KEPT) * DAY_SLOT;
  ewmaDt = NaN;
  // named loads (one per channel) instead of r[CHANNELS[ci]], whose varying key makes the load megamorphic;
  // + 0 turns −0 into 0, so equal states stay equal bytes
  const pm = r.pm;
  if (pm !== undefined) addValue(v, CI_PM, pm + 0, t, hourAt, dayAt);
  const co2 = r.co2;
  if (co2 !== undefined) addValue(v, CI_CO2, co2 + 0, t, hourAt, dayAt);
  const voc = r.voc;
  if (voc !== undefined) addValue(v, CI_VOC, voc + 0, t, hourAt, dayAt);
  const tmp = r.tmp;
  if (tmp !== undefined) addValue(v, CI_TMP, tmp + 0, t, hourAt, dayAt);
  const hum = r.hum;
  if (hum !== undefined) addValue(v, CI_HUM, hum + 0, t, hourAt, dayAt);
  const allpollu = r.allpollu;
  if (allpollu !== undefined) addValue(v, CI_ALLPOLLU, allpollu + 0, t, hourAt, dayAt);
  return out;
}

// Channel indexes (CHANNELS positions, i.e. channel blocks of the layout) for the named loads above.
const CI_PM = CHANNELS.indexOf("pm");
const CI_CO2 = CHANNELS.indexOf("co2");
const CI_VOC = CHANNELS.indexOf("voc");
const CI_TMP = CHANNELS.indexOf("tmp");
const CI_HUM = CHANNELS.indexOf("hum");
const CI_ALLPOLLU = CHANNELS.indexOf("allpollu");

const NOTHING_CLOSED: StatsOutputs = Object.freeze({ aggregates: Object.freeze([]) as unknown as ClosedAggregate[], calibration: Object.freeze([]) as unknown as CalibrationChange[] });

// The EWMA weight of the last Δt: channels of one reading usually share their Δt, so it is computed once.
let ewmaDt = NaN;
let ewmaW = 0;

/** Statistics of one channel; undefined when the channel never had a reading. */
export function channelView(stats: TwinStats, ch: Channel): ChannelView | undefined {
  const v = view(stats);
  const ci = CHANNELS.indexOf(ch);
  const b = channelBase(ci);
  const count = getF64(v, b + S_COUNT);
  if (count === 0) return undefined;
  const latest = getF64(v, LATEST_T);
  const curHour = Math.floor(latest / HOUR_MS);
  const curDay = Math.floor(latest / DAY_MS);
  const hourly: BucketView[] = [];
  for (let h = curHour - HOURS_KEPT + 1; h <= curHour; h++) {
    const bucket = h >= 0 ? hourBucket(v, ci, h, h === curHour) : undefined;
    if (bucket) hourly.push(bucket);
  }
  const daily: BucketView[] = [];
  for (let d = curDay - DAYS_KEPT + 1; d <= curDay; d++) {
    const bucket = d >= 0 ? dayBucket(v, ci, d, d === curDay) : undefined;
    if (bucket) daily.push(bucket);
  }
  return {
    count,
    mean: getF64(v, b + S_MEAN),
    stddev: Math.sqrt(getF64(v, b + S_M2) / count),
    min: getF64(v, b + S_MIN),
    minAt: getF64(v, b + S_MIN_AT),
    max: getF64(v, b + S_MAX),
    maxAt: getF64(v, b + S_MAX_AT),
    last: getF64(v, b + S_LAST),
    lastAt: getF64(v, b + S_LAST_AT),
    ewma: getF64(v, b + S_EWMA),
    hourly,
    daily,
  };
}

/** Current calibration; `baseline` absent while no low is in the window; voc offset is always 0. */
export function calibrationView(stats: TwinStats): { co2: { baseline?: number; offset: number }; voc: { baseline?: number; offset: number } } {
  return readCalibration(view(stats));
}

/** Forgets the lows of closed days of `ch` (baseline undefined, offset 0) and returns that change. */
export function recalibrate(stats: TwinStats, deviceId: string, ch: "co2" | "voc", at: number): CalibrationChange {
  return recalibrateChannel(view(stats), deviceId, ch, at);
}

/** The compact snapshot section of these statistics (about 1 KB for a week of 5-minute data). */
export function encodeStats(stats: TwinStats): Uint8Array {
  return encodeStatsSection(view(stats));
}

/** encodeStats into a shared buffer, valid until the next encode (for callers that copy it at once). */
export function encodeStatsTransient(stats: TwinStats): Uint8Array {
  return encodeStatsSectionTransient(view(stats));
}

/** Inverse of encodeStats (`roomAfter`: as createStats); throws DomainError (AIRTWIN_ERR_SNAPSHOT_CORRUPT / _VERSION). */
export function decodeStats(bytes: Uint8Array, roomAfter = 0): TwinStats {
  return wrap(decodeStatsSection(bytes, roomAfter));
}

/** True when both hold the identical state (byte for byte; the room after the statistics is not theirs). */
export function statsEqual(a: TwinStats, b: TwinStats): boolean {
  const x = view(a);
  const y = view(b);
  for (let i = 0; i < STATS_BYTES; i++) if (x.getUint8(i) !== y.getUint8(i)) return false;
  return true;
}

function quantize(ci: number, x: number): number {
  const q = Math.round(x * (SCALE[ci] as number)) + (QOFF[ci] as number);
  return q < 0 ? 0 : q > MAX_Q ? MAX_Q : q;
}

function dequantize(ci: number, q: number): number {
  return (q - (QOFF[ci] as number)) / (SCALE[ci] as number);
}

/** Mean of n quantized values given their sum, in channel units. */
function dequantizeMean(ci: number, sum: number, n: number): number {
  return (sum - n * (QOFF[ci] as number)) / (n * (SCALE[ci] as number));
}

/**
 * Adds value x (at time t) of channel ci; `hourAt` / `dayAt` are the open hour and day slots relative to
 * the channel block. Straight-line DataView accesses at constant offsets from the block base.
 */
function addValue(v: DataView, ci: number, x: number, t: number, hourAt: number, dayAt: number): void {
  const b = channelBase(ci);
  const count = v.getFloat64(b + S_COUNT, true) + 1;
  v.setFloat64(b + S_COUNT, count, true);
  if (count === 1) {
    v.setFloat64(b + S_MEAN, x, true);
    v.setFloat64(b + S_MIN, x, true);
    v.setFloat64(b + S_MIN_AT, t, true);
    v.setFloat64(b + S_MAX, x, true);
    v.setFloat64(b + S_MAX_AT, t, true);
    v.setFloat64(b + S_EWMA, x, true);
  } else {
    const mean = v.getFloat64(b + S_MEAN, true);
    const delta = x - mean;
    const next = mean + delta / count;
    v.setFloat64(b + S_MEAN, next, true);
    v.setFloat64(b + S_M2, v.getFloat64(b + S_M2, true) + delta * (x - next), true);
    if (x < v.getFloat64(b + S_MIN, true)) {
      v.setFloat64(b + S_MIN, x, true);
      v.setFloat64(b + S_MIN_AT, t, true);
    }
    if (x > v.getFloat64(b + S_MAX, true)) {
      v.setFloat64(b + S_MAX, x, true);
      v.setFloat64(b + S_MAX_AT, t, true);
    }
    const dt = t - v.getFloat64(b + S_LAST_AT, true);
    if (dt !== ewmaDt) {
      ewmaDt = dt;
      // 1 − exp(−Δt/τ) computed as −expm1(−Δt/τ): same value, no cancellation for small Δt
      ewmaW = -Math.expm1(-dt / EWMA_TAU_MS);
    }
    const ewma = v.getFloat64(b + S_EWMA, true);
    v.setFloat64(b + S_EWMA, ewma + ewmaW * (x - ewma), true);
  }
  v.setFloat64(b + S_LAST, x, true);
  v.setFloat64(b + S_LAST_AT, t, true);
  v.setFloat64(b + S_HOUR_SUM, v.getFloat64(b + S_HOUR_SUM, true) + x, true);
  v.setFloat64(b + S_DAY_SUM, v.getFloat64(b + S_DAY_SUM, true) + x, true);
  const q = quantize(ci, x);

  const hs = b + hourAt;
  const hc = v.getUint16(hs, true) + v.getUint8(hs + 2) * 65536;
  if (hc === 0) {
    v.setUint16(hs + H_MIN, q, true);
    v.setUint16(hs + H_MAX, q, true);
  } else if (q < v.getUint16(hs + H_MIN, true)) v.setUint16(hs + H_MIN, q, true);
  else if (q > v.getUint16(hs + H_MAX, true)) v.setUint16(hs + H_MAX, q, true);
  setU24(v, hs, hc + 1);

  const ds = b + dayAt;
  const dc = v.getUint32(ds + D_COUNT, true);
  if (dc === 0) {
    v.setUint16(ds + D_MIN, q, true);
    v.setUint16(ds + D_MAX, q, true);
  } else if (q < v.getUint16(ds + D_MIN, true)) v.setUint16(ds + D_MIN, q, true);
  else if (q > v.getUint16(ds + D_MAX, true)) v.setUint16(ds + D_MAX, q, true);
  v.setUint32(ds + D_COUNT, dc + 1, true);
  const n = dc < TOP_N ? dc : TOP_N;
  insertTop(v, b + TOP_HIGH, n, q, 1);
  insertTop(v, b + TOP_LOW, n, q, -1);
}

/** Inserts q into a sorted array of n ≤ 5 u16 (descending when sign = 1, ascending when −1), keeping 5. */
function insertTop(v: DataView, at: number, n: number, q: number, sign: 1 | -1): void {
  if (n === TOP_N && !((q - v.getUint16(at + (TOP_N - 1) * 2, true)) * sign > 0)) return;
  let i = n === TOP_N ? TOP_N - 1 : n;
  while (i > 0) {
    const prev = v.getUint16(at + (i - 1) * 2, true);
    if (!((q - prev) * sign > 0)) break;
    v.setUint16(at + i * 2, prev, true);
    i--;
  }
  v.setUint16(at + i * 2, q, true);
}

function topSum(v: DataView, at: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += getU16(v, at + i * 2);
  return sum;
}

function hourBucket(v: DataView, ci: number, h: number, open: boolean): BucketView | undefined {
  const at = hourSlot(ci, h);
  const count = getU24(v, at);
  if (count === 0) return undefined;
  return {
    start: h * HOUR_MS,
    count,
    mean: open ? getF64(v, channelBase(ci) + S_HOUR_SUM) / count : dequantize(ci, getU16(v, at + H_MEAN)),
    min: dequantize(ci, getU16(v, at + H_MIN)),
    max: dequantize(ci, getU16(v, at + H_MAX)),
  };
}

function dayBucket(v: DataView, ci: number, d: number, open: boolean): BucketView | undefined {
  const at = daySlot(ci, d);
  const count = v.getUint32(at + D_COUNT, true);
  if (count === 0) return undefined;
  const b = channelBase(ci);
  const n = Math.min(TOP_N, count);
  const highSum = open ? topSum(v, b + TOP_HIGH, n) : getU24(v, at + D_TOP_HIGH_SUM);
  const lowSum = open ? topSum(v, b + TOP_LOW, n) : getU24(v, at + D_TOP_LOW_SUM);
  return {
    start: d * DAY_MS,
    count,
    mean: open ? getF64(v, b + S_DAY_SUM) / count : dequantize(ci, getU16(v, at + D_MEAN)),
    min: dequantize(ci, getU16(v, at + D_MIN)),
    max: dequantize(ci, getU16(v, at + D_MAX)),
    topMaxMean: dequantizeMean(ci, highSum, n),
    topMinMean: dequantizeMean(ci, lowSum, n),
  };
}

/** Freezes the open hour: its quantized mean goes into the slot; returns its aggregate (exact means). */
function closeHour(v: DataView, deviceId: string, hour: number): ClosedAggregate | undefined {
  const channels: Partial<Record<Channel, AggregateBucket>> = {};
  let any = false;
  CHANNELS.forEach((ch, ci) => {
    const bucket = hourBucket(v, ci, hour, true);
    setF64(v, channelBase(ci) + S_HOUR_SUM, 0);
    if (!bucket) return;
    setU16(v, hourSlot(ci, hour) + H_MEAN, quantize(ci, bucket.mean));
    channels[ch] = bucket;
    any = true;
  });
  const start = hour * HOUR_MS;
  return any ? { id: `${deviceId}:hour:${start}`, deviceId, resolution: "hour", start, channels } : undefined;
}

/** Freezes the open day: quantized mean and top-5 sums go into the slot; returns its aggregate. */
function closeDay(v: DataView, deviceId: string, day: number): ClosedAggregate | undefined {
  const channels: Partial<Record<Channel, AggregateBucket>> = {};
  let any = false;
  CHANNELS.forEach((ch, ci) => {
    const bucket = dayBucket(v, ci, day, true);
    if (!bucket) return;
    const at = daySlot(ci, day);
    const b = channelBase(ci);
    const n = Math.min(TOP_N, bucket.count);
    setU16(v, at + D_MEAN, quantize(ci, bucket.mean));
    setU24(v, at + D_TOP_HIGH_SUM, topSum(v, b + TOP_HIGH, n));
    setU24(v, at + D_TOP_LOW_SUM, topSum(v, b + TOP_LOW, n));
    channels[ch] = bucket;
    any = true;
  });
  const start = day * DAY_MS;
  return any ? { id: `${deviceId}:day:${start}`, deviceId, resolution: "day", start, channels } : undefined;
}

/** Empties the hour slots the window moves onto (curHour, hour], at most the whole ring. */
function advanceHours(v: DataView, curHour: number, hour: number): void {
  const steps = Math.min(hour - curHour, HOURS_KEPT);
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    for (let k = 1; k <= steps; k++) {
      const at = hourSlot(ci, curHour + k);
      setU24(v, at, 0);
      setU16(v, at + H_MEAN, 0);
      setU16(v, at + H_MIN, 0);
      setU16(v, at + H_MAX, 0);
    }
  }
}

/** Empties the day slots the window moves onto (curDay, day], the top-5 arrays and the day sums. */
function advanceDays(v: DataView, curDay: number, day: number): void {
  const steps = Math.min(day - curDay, DAYS_KEPT);
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    const b = channelBase(ci);
    for (let k = 1; k <= steps; k++) {
      const at = daySlot(ci, curDay + k);
      for (let i = 0; i < DAY_SLOT; i += 4) v.setUint32(at + i, 0, true);
    }
    for (let i = 0; i < TOP_N * 2; i++) v.setUint16(b + TOP_HIGH + i * 2, 0, true);
    setF64(v, b + S_DAY_SUM, 0);
  }
}
