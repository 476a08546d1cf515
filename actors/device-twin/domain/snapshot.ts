// The snapshot-section codec of a twin's packed statistics (layout in stats-layout.ts, re-exported here
// for the files that read it through this module).
//
// The snapshot section drops what is implied (empty slots, the open day's top-5 head = its max/min),
// writes sensor values as short decimals, times as deltas from latestT, and bucket series delta- and
// frame-of-reference coded and bit-packed (bucket means move slowly; counts of regular data are flat).

import { ByteFormatError, ByteReader, ByteWriter, unzigzag, zigzag } from "./bytes.ts";
import { DomainError } from "./errors.ts";
import { CHANNELS } from "./types.ts";
import { CO2_BASELINE, CO2_OFFSET, DAYS_KEPT, DAY_MS, DAY_RING, DAY_SLOT, D_MAX, D_MEAN, D_MIN, D_TOP_HIGH_SUM, D_TOP_LOW_SUM, HOURS_KEPT, HOUR_MS, HOUR_RING, HOUR_SLOT, H_MAX, H_MEAN, H_MIN, LATEST_T, LOWS, LOW_BYTES, MAX_Q, S_COUNT, S_DAY_SUM, S_EWMA, S_HOUR_SUM, S_LAST, S_LAST_AT, S_M2, S_MAX, S_MAX_AT, S_MEAN, S_MIN, S_MIN_AT, TOP_HIGH, TOP_LOW, TOP_N, VOC_BASELINE, channelBase, emptyLayout, getF64, getU24, ringIndex, setF64, setU24 } from "./stats-layout.ts";

export * from "./stats-layout.ts";

const SECTION_VERSION = 1;
const HAS_LATEST = 1;
const HAS_CO2_BASELINE = 2;
const HAS_VOC_BASELINE = 4;

/** Encodes the packed state as a compact snapshot section. */
export function encodeStatsSection(v: DataView): Uint8Array {
  return encodeStatsSectionInto(STATS_WRITER.reset(), v).finish(); // finish() copies out, so one writer serves every encode
}

/**
 * As {@link encodeStatsSection}, but the bytes are a view of a shared buffer, valid only until the next
 * encode: for a caller that copies them at once (the twin snapshot), saving an allocation and a copy.
 */
export function encodeStatsSectionTransient(v: DataView): Uint8Array {
  return encodeStatsSectionInto(STATS_WRITER.reset(), v).written();
}

function encodeStatsSectionInto(w: ByteWriter, v: DataView): ByteWriter {

  w.u8(SECTION_VERSION);
  const latest = getF64(v, LATEST_T);
  const co2Base = getF64(v, CO2_BASELINE);
  const vocBase = getF64(v, VOC_BASELINE);
  const flags = (Number.isNaN(latest) ? 0 : HAS_LATEST) | (Number.isNaN(co2Base) ? 0 : HAS_CO2_BASELINE) | (Number.isNaN(vocBase) ? 0 : HAS_VOC_BASELINE);
  w.u8(flags);
  if (flags & HAS_CO2_BASELINE) w.num(co2Base);
  w.num(getF64(v, CO2_OFFSET));
  if (flags & HAS_VOC_BASELINE) w.num(vocBase);
  writeSparse(w, v, LOWS, 2 * DAYS_KEPT);
  if (!(flags & HAS_LATEST)) return w;
  w.ms(latest);
  const hour = Math.floor(latest / HOUR_MS);
  const day = Math.floor(latest / DAY_MS);
  let present = 0;
  for (let ci = 0; ci < CHANNELS.length; ci++) if (getF64(v, channelBase(ci) + S_COUNT) > 0) present |= 1 << ci;
  w.u8(present);
  for (let ci = 0; ci < CHANNELS.length; ci++) if (present & (1 << ci)) encodeChannel(w, v, ci, latest, hour, day);
  return w;
}

/**
 * Decodes a section written by encodeStatsSection (into a layout with `roomAfter` bytes after it, see
 * emptyLayout); throws DomainError SNAPSHOT_VERSION / SNAPSHOT_CORRUPT.
 */
export function decodeStatsSection(bytes: Uint8Array, roomAfter = 0): DataView {
  if (bytes.length > 0 && bytes[0] !== SECTION_VERSION) {
    throw new DomainError("SNAPSHOT_VERSION", `stats section version ${bytes[0]} is not ${SECTION_VERSION}`);
  }
  try {
    const r = new ByteReader(bytes);
    r.u8();
    const v = emptyLayout(roomAfter);
    const flags = r.u8();
    if (flags > 7) throw new ByteFormatError(`bad flags ${flags}`);
    if (flags & HAS_CO2_BASELINE) setF64(v, CO2_BASELINE, r.num());
    setF64(v, CO2_OFFSET, r.num());
    if (flags & HAS_VOC_BASELINE) setF64(v, VOC_BASELINE, r.num());
    readSparse(r, v, LOWS, 2 * DAYS_KEPT);
    if (flags & HAS_LATEST) {
      const latest = r.ms();
      setF64(v, LATEST_T, latest);
      const hour = Math.floor(latest / HOUR_MS);
      const day = Math.floor(latest / DAY_MS);
      const present = r.u8();
      if (present >= 1 << CHANNELS.length) throw new ByteFormatError(`bad channel set ${present}`);
      for (let ci = 0; ci < CHANNELS.length; ci++) if (present & (1 << ci)) decodeChannel(r, v, ci, latest, hour, day);
    }
    r.end();
    return v;
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw new DomainError("SNAPSHOT_CORRUPT", `stats section cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}

/** Lows ring: a presence bitmap (14 bits) then the present u24 values. */
function writeSparse(w: ByteWriter, v: DataView, at: number, slots: number): void {
  let mask = 0;
  for (let i = 0; i < slots; i++) if (getU24(v, at + i * LOW_BYTES) !== 0) mask |= 1 << i;
  w.varuint(mask);
  for (let i = 0; i < slots; i++) if (mask & (1 << i)) w.varuint(getU24(v, at + i * LOW_BYTES));
}

function readSparse(r: ByteReader, v: DataView, at: number, slots: number): void {
  const mask = r.varuint();
  if (mask >= 2 ** slots) throw new ByteFormatError("bad lows mask");
  for (let i = 0; i < slots; i++) if (mask & (1 << i)) setU24(v, at + i * LOW_BYTES, checked(r.varuint(), 1, 0xffffff));
}

function checked(n: number, min: number, max: number): number {
  // Math.floor(n) === n with the bounds is Number.isInteger(n) here (NaN and ±Infinity fail the bounds)
  if (!(n >= min && n <= max && Math.floor(n) === n)) throw new ByteFormatError(`value ${n} outside ${min}..${max}`);
  return n;
}

function encodeChannel(w: ByteWriter, v: DataView, ci: number, latest: number, hour: number, day: number): void {
  const b = channelBase(ci);
  w.varuint(getF64(v, b + S_COUNT));
  w.f64(getF64(v, b + S_MEAN));
  w.f64(getF64(v, b + S_M2));
  w.f64(getF64(v, b + S_EWMA));
  w.num(getF64(v, b + S_MIN));
  w.num(getF64(v, b + S_MAX));
  w.num(getF64(v, b + S_LAST));
  w.ms(latest - getF64(v, b + S_MIN_AT));
  w.ms(latest - getF64(v, b + S_MAX_AT));
  w.ms(latest - getF64(v, b + S_LAST_AT));
  w.num(getF64(v, b + S_HOUR_SUM));
  w.num(getF64(v, b + S_DAY_SUM));
  encodeRing(w, v, ci, hour, HOURS_KEPT, false);
  encodeRing(w, v, ci, day, DAYS_KEPT, true);
}

function decodeChannel(r: ByteReader, v: DataView, ci: number, latest: number, hour: number, day: number): void {
  const b = channelBase(ci);
  setF64(v, b + S_COUNT, checked(r.varuint(), 1, Number.MAX_SAFE_INTEGER));
  setF64(v, b + S_MEAN, r.f64());
  setF64(v, b + S_M2, r.f64());
  setF64(v, b + S_EWMA, r.f64());
  setF64(v, b + S_MIN, r.num());
  setF64(v, b + S_MAX, r.num());
  setF64(v, b + S_LAST, r.num());
  setF64(v, b + S_MIN_AT, latest - r.ms());
  setF64(v, b + S_MAX_AT, latest - r.ms());
  setF64(v, b + S_LAST_AT, latest - r.ms());
  setF64(v, b + S_HOUR_SUM, r.num());
  setF64(v, b + S_DAY_SUM, r.num());
  decodeRing(r, v, ci, hour, HOURS_KEPT, false);
  decodeRing(r, v, ci, day, DAYS_KEPT, true);
}

/**
 * One ring, oldest bucket first: an occupancy bitmap, then the open (current) bucket on its own (its
 * mean lives in the exact running sum), then the closed buckets as series: counts (frame of
 * reference), means (first, then zigzag deltas), mean − min, max − mean and, for days, n·max − topHighSum
 * and topLowSum − n·min (all ≥ 0 because quantization is monotone).
 */
function encodeRing(w: ByteWriter, v: DataView, ci: number, current: number, kept: number, isDay: boolean): void {
  // direct offsets (no SlotShape indirection): hour slots have a u24 count, day slots a u32
  const ring = channelBase(ci) + (isDay ? DAY_RING : HOUR_RING);
  const slotBytes = isDay ? DAY_SLOT : HOUR_SLOT;
  const meanAt = isDay ? D_MEAN : H_MEAN;
  const minAt = isDay ? D_MIN : H_MIN;
  const maxAt = isDay ? D_MAX : H_MAX;
  let mask = 0;
  let n = 0;
  let minCount = Infinity;
  const first = current - (kept - 1);
  for (let k = 0; k < kept - 1; k++) {
    const bucket = first + k;
    if (bucket < 0) continue;
    const slot = ring + ringIndex(bucket, kept) * slotBytes;
    const count = isDay ? v.getUint32(slot, true) : v.getUint16(slot, true) + v.getUint8(slot + 2) * 65536;
    if (count === 0) continue;
    mask |= 1 << k;
    S_SLOT[n] = slot;
    S_COUNTS[n] = count;
    S_MEANS[n] = v.getUint16(slot + meanAt, true);
    if (count < minCount) minCount = count;
    n++;
  }
  const at = ring + ringIndex(current, kept) * slotBytes;
  const openCount = isDay ? v.getUint32(at, true) : v.getUint16(at, true) + v.getUint8(at + 2) * 65536;
  if (openCount > 0) mask |= 1 << (kept - 1);
  w.varuint(mask);
  if (openCount > 0) {
    const min = v.getUint16(at + minAt, true);
    w.varuint(openCount);
    w.varuint(min);
    w.varuint(v.getUint16(at + maxAt, true) - min);
    if (isDay) {
      const top = Math.min(TOP_N, openCount);
      const base = channelBase(ci);
      let loA = 0, hiA = 0, loB = 0, hiB = 0;
      for (let i = 1; i < top; i++) {
        const a = v.getUint16(base + TOP_HIGH + (i - 1) * 2, true) - v.getUint16(base + TOP_HIGH + i * 2, true);
        const b = v.getUint16(base + TOP_LOW + i * 2, true) - v.getUint16(base + TOP_LOW + (i - 1) * 2, true);
        S_A[i - 1] = a;
        S_B[i - 1] = b;
        if (a < loA) loA = a;
        if (a > hiA) hiA = a;
        if (b < loB) loB = b;
        if (b > hiB) hiB = b;
      }
      putSeries(w, S_A, Math.max(0, top - 1), loA, hiA);
      putSeries(w, S_B, Math.max(0, top - 1), loB, hiB);
    }
  }
  if (n === 0) return;
  w.varuint(minCount);
  // every series value below is an integer (differences of stored integers), so only its sign is checked
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const c = (S_COUNTS[i] as number) - minCount;
    S_A[i] = c;
    if (c > hi) hi = c;
  }
  w.seriesUpTo(S_A, n, hi);
  let prev = S_MEANS[0] as number;
  w.varuint(prev);
  hi = 0;
  for (let i = 1; i < n; i++) {
    const mean = S_MEANS[i] as number;
    const z = zigzag(mean - prev);
    S_A[i - 1] = z;
    if (z > hi) hi = z;
    prev = mean;
  }
  w.seriesUpTo(S_A, n - 1, hi);
  let loA = 0, hiA = 0, loB = 0, hiB = 0;
  for (let i = 0; i < n; i++) {
    const slot = S_SLOT[i] as number;
    const mean = S_MEANS[i] as number;
    const a = mean - v.getUint16(slot + minAt, true);
    const b = v.getUint16(slot + maxAt, true) - mean;
    S_A[i] = a;
    S_B[i] = b;
    if (a < loA) loA = a;
    if (a > hiA) hiA = a;
    if (b < loB) loB = b;
    if (b > hiB) hiB = b;
  }
  putSeries(w, S_A, n, loA, hiA);
  putSeries(w, S_B, n, loB, hiB);
  if (!isDay) return;
  loA = hiA = loB = hiB = 0;
  for (let i = 0; i < n; i++) {
    const slot = S_SLOT[i] as number;
    const count = S_COUNTS[i] as number;
    const top = count < TOP_N ? count : TOP_N;
    const a = top * v.getUint16(slot + D_MAX, true) - getU24(v, slot + D_TOP_HIGH_SUM);
    const b = getU24(v, slot + D_TOP_LOW_SUM) - top * v.getUint16(slot + D_MIN, true);
    S_A[i] = a;
    S_B[i] = b;
    if (a < loA) loA = a;
    if (a > hiA) hiA = a;
    if (b < loB) loB = b;
    if (b > hiB) hiB = b;
  }
  putSeries(w, S_A, n, loA, hiA);
  putSeries(w, S_B, n, loB, hiB);
}

/** A series of integers whose least (≤ 0) and largest (≥ 0) values the caller tracked; a negative one throws as series() does. */
function putSeries(w: ByteWriter, values: Float64Array, n: number, lo: number, hi: number): void {
  if (lo < 0) w.series(values, n);
  else w.seriesUpTo(values, n, hi);
}

// Scratch for the encoders and decoders (all synchronous, never re-entered).
const STATS_WRITER = new ByteWriter(4096);
const S_SLOT = new Float64Array(HOURS_KEPT);
const S_COUNTS = new Float64Array(HOURS_KEPT);
const S_MEANS = new Float64Array(HOURS_KEPT);
const S_A = new Float64Array(HOURS_KEPT);
const S_B = new Float64Array(HOURS_KEPT);
const S_C = new Float64Array(DAYS_KEPT);
const S_D = new Float64Array(DAYS_KEPT);

function decodeRing(r: ByteReader, v: DataView, ci: number, current: number, kept: number, isDay: boolean): void {
  // direct offsets as in encodeRing; reads and checks in the same order as ever (same error for bad input)
  const ring = channelBase(ci) + (isDay ? DAY_RING : HOUR_RING);
  const slotBytes = isDay ? DAY_SLOT : HOUR_SLOT;
  const meanAt = isDay ? D_MEAN : H_MEAN;
  const minAt = isDay ? D_MIN : H_MIN;
  const maxAt = isDay ? D_MAX : H_MAX;
  const maxCount = isDay ? 0xffffffff : 0xffffff;
  const mask = r.varuint();
  if (mask >= (isDay ? 2 ** DAYS_KEPT : 2 ** HOURS_KEPT)) throw new ByteFormatError("bad bucket mask");
  let n = 0;
  for (let k = 0; k < kept - 1; k++) {
    if (!(mask & (1 << k))) continue;
    const bucket = current - (kept - 1) + k;
    if (bucket < 0) throw new ByteFormatError("bucket before epoch");
    S_SLOT[n++] = ring + ringIndex(bucket, kept) * slotBytes;
  }
  if (mask & (1 << (kept - 1))) {
    const at = ring + ringIndex(current, kept) * slotBytes;
    const count = checked(r.varuint(), 1, maxCount);
    const min = checked(r.varuint(), 0, MAX_Q);
    const max = checked(min + r.varuint(), 0, MAX_Q);
    setCount(v, at, count, isDay);
    v.setUint16(at + minAt, min, true);
    v.setUint16(at + maxAt, max, true);
    if (isDay) {
      const top = Math.min(TOP_N, count);
      const base = channelBase(ci);
      r.seriesInto(S_A, Math.max(0, top - 1));
      r.seriesInto(S_B, Math.max(0, top - 1));
      let hi = max;
      let lo = min;
      v.setUint16(base + TOP_HIGH, hi, true);
      v.setUint16(base + TOP_LOW, lo, true);
      for (let i = 1; i < top; i++) {
        hi = checked(hi - (S_A[i - 1] as number), 0, MAX_Q);
        lo = checked(lo + (S_B[i - 1] as number), 0, MAX_Q);
        v.setUint16(base + TOP_HIGH + i * 2, hi, true);
        v.setUint16(base + TOP_LOW + i * 2, lo, true);
      }
    }
  }
  if (n === 0) return;
  const minCount = r.varuint();
  r.seriesInto(S_A, n);
  for (let i = 0; i < n; i++) {
    const count = checked((S_A[i] as number) + minCount, 1, maxCount);
    S_COUNTS[i] = count;
    setCount(v, S_SLOT[i] as number, count, isDay);
  }
  let mean = checked(r.varuint(), 0, MAX_Q);
  S_MEANS[0] = mean;
  v.setUint16((S_SLOT[0] as number) + meanAt, mean, true);
  r.seriesInto(S_A, n - 1);
  for (let i = 1; i < n; i++) {
    mean = checked(mean + unzigzag(S_A[i - 1] as number), 0, MAX_Q);
    S_MEANS[i] = mean;
    v.setUint16((S_SLOT[i] as number) + meanAt, mean, true);
  }
  r.seriesInto(S_A, n);
  r.seriesInto(S_B, n);
  for (let i = 0; i < n; i++) {
    const slot = S_SLOT[i] as number;
    const m = S_MEANS[i] as number;
    const min = checked(m - (S_A[i] as number), 0, MAX_Q);
    v.setUint16(slot + minAt, min, true);
    S_A[i] = min;
    const max = checked(m + (S_B[i] as number), 0, MAX_Q);
    v.setUint16(slot + maxAt, max, true);
    S_B[i] = max;
  }
  if (!isDay) return;
  // S_A / S_B now hold the mins and maxes; the top sums' series go to S_C / S_D
  r.seriesInto(S_C, n);
  r.seriesInto(S_D, n);
  for (let i = 0; i < n; i++) {
    const slot = S_SLOT[i] as number;
    const count = S_COUNTS[i] as number;
    const top = count < TOP_N ? count : TOP_N;
    setU24(v, slot + D_TOP_HIGH_SUM, checked(top * (S_B[i] as number) - (S_C[i] as number), 0, 0xffffff));
    setU24(v, slot + D_TOP_LOW_SUM, checked(top * (S_A[i] as number) + (S_D[i] as number), 0, 0xffffff));
  }
}

function setCount(v: DataView, at: number, n: number, isDay: boolean): void {
  if (isDay) v.setUint32(at, n, true);
  else setU24(v, at, n);
}
