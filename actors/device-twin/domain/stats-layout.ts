// The packed statistics layout of one twin: one ArrayBuffer behind a DataView, shared by stats.ts,
// calibration.ts and the learned state after it; snapshot.ts encodes it as a snapshot section.
//
// In memory (little-endian, 2,768 bytes, all zero except the NaN markers when empty):
//   header   latestT f64 (NaN: no reading) · co2 baseline f64 (NaN: none) · co2 offset f64 ·
//            voc baseline f64 · daily lows ring of co2 and voc (7 × u24 each, see calibration.ts)
//   channel  ×6 (CHANNELS order), CHANNEL_BYTES each:
//            12 exact f64 scalars (count, Welford mean and M2, min/minAt, max/maxAt, last/lastAt, ewma,
//              running sums of the OPEN hour and OPEN day bucket)
//            hour ring, slot = hour mod 24: count u24, mean/min/max u16 (quantized; mean written on close)
//            day ring, slot = day mod 7: count u32, mean/min/max u16, top-5 high/low sums u24 (on close)
//            the open day's 5 highest (descending) and 5 lowest (ascending) values, u16 quantized
// Ring slots outside the window are zeroed when the window moves, so equal states are equal bytes.

import { CHANNELS, type Channel } from "./types.ts";

/** One UTC hour / day, in ms (epoch ms have no leap seconds, so UTC buckets are plain divisions). */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
/** Hour buckets kept in the twin (the latest reading's hour and the 23 before), and day buckets (7). */
export const HOURS_KEPT = 24;
export const DAYS_KEPT = 7;
/** How many of a day's highest and lowest values are kept for topMaxMean / topMinMean. */
export const TOP_N = 5;

/**
 * Resolution of stored bucket values: value = (q − offset) / scale with q a uint16. Closed-bucket
 * mean/min/max, the top-5 values and hence topMaxMean/topMinMean and the daily lows are kept at this
 * resolution (error ≤ 1/(2·scale)); whole-channel statistics and the open buckets' means are exact.
 */
export const QUANTUM: Readonly<Record<Channel, { readonly scale: number; readonly offset: number }>> = {
  pm: { scale: 10, offset: 0 }, // 0.1 µg/m³, 0–1000 → 0–10000
  co2: { scale: 1, offset: 0 }, // 1 ppm, 0–40000
  voc: { scale: 1, offset: 0 }, // 1 ppb, 0–60000
  tmp: { scale: 100, offset: 4000 }, // 0.01 °C, −40–85 → 0–12500
  hum: { scale: 100, offset: 0 }, // 0.01 %, 0–100 → 0–10000
  allpollu: { scale: 10, offset: 0 }, // 0.1 %, 0–1000 → 0–10000
};

/** Largest quantized value (any channel); 5 of them fit a u24 sum. */
export const MAX_Q = 60000;

// Byte offsets of the layout, for stats.ts and calibration.ts (not a public API).
// Header:
export const LATEST_T = 0;
export const CO2_BASELINE = 8;
export const CO2_OFFSET = 16;
export const VOC_BASELINE = 24;
/** Lows ring of co2 (slots 0–6) then voc (slots 7–13), u24 each: sum·8 + n of the day's n lowest, 0 = none. */
export const LOWS = 32;
export const LOW_BYTES = 3;
export const HEADER_BYTES = 80;

// Channel block offsets (relative to channelBase)
export const S_COUNT = 0;
export const S_MEAN = 8;
export const S_M2 = 16;
export const S_MIN = 24;
export const S_MIN_AT = 32;
export const S_MAX = 40;
export const S_MAX_AT = 48;
export const S_LAST = 56;
export const S_LAST_AT = 64;
export const S_EWMA = 72;
export const S_HOUR_SUM = 80;
export const S_DAY_SUM = 88;
export const HOUR_RING = 96;
/** Hour slot: count u24, then u16 mean (written on close), min, max. */
export const HOUR_SLOT = 9;
export const H_COUNT = 0;
export const H_MEAN = 3;
export const H_MIN = 5;
export const H_MAX = 7;
export const DAY_RING = HOUR_RING + HOURS_KEPT * HOUR_SLOT;
/** Day slot: count u32, u16 mean/min/max, u24 sums of the top-5 high and low values (written on close). */
export const DAY_SLOT = 16;
export const D_COUNT = 0;
export const D_MEAN = 4;
export const D_MIN = 6;
export const D_MAX = 8;
export const D_TOP_HIGH_SUM = 10;
export const D_TOP_LOW_SUM = 13;
export const TOP_HIGH = DAY_RING + DAYS_KEPT * DAY_SLOT;
export const TOP_LOW = TOP_HIGH + TOP_N * 2;
/** Bytes per channel block, padded to keep the f64 scalars 8-byte aligned. */
export const CHANNEL_BYTES = 448;
/** Total bytes of one twin's packed statistics. */
export const STATS_BYTES = HEADER_BYTES + CHANNELS.length * CHANNEL_BYTES;

/** n % k (as `%` computes it, sign included), as an int32 remainder rather than a float fmod when n is a uint31. */
export function ringIndex(n: number, k: number): number {
  return n >= 0 && n <= 0x7fffffff ? (n | 0) % k : n % k;
}
// module-local copies for channelBase (an exported binding is read through its cell, with a TDZ
// check at each use, even in its own module; a module-local const folds to an immediate)
const CHANNELS_AT = HEADER_BYTES;
const CHANNEL_STRIDE = CHANNEL_BYTES;
export function channelBase(ci: number): number {
  return CHANNELS_AT + ci * CHANNEL_STRIDE;
}
export function hourSlot(ci: number, hour: number): number {
  return channelBase(ci) + HOUR_RING + (hour % HOURS_KEPT) * HOUR_SLOT;
}
export function daySlot(ci: number, day: number): number {
  return channelBase(ci) + DAY_RING + (day % DAYS_KEPT) * DAY_SLOT;
}

export function getU24(v: DataView, at: number): number {
  return v.getUint16(at, true) + v.getUint8(at + 2) * 65536;
}
export function setU24(v: DataView, at: number, n: number): void {
  v.setUint16(at, n & 0xffff, true);
  v.setUint8(at + 2, n >>> 16);
}
export function getF64(v: DataView, at: number): number {
  return v.getFloat64(at, true);
}
export function setF64(v: DataView, at: number, n: number): void {
  v.setFloat64(at, n, true);
}
export function getU16(v: DataView, at: number): number {
  return v.getUint16(at, true);
}
export function setU16(v: DataView, at: number, n: number): void {
  v.setUint16(at, n, true);
}

/** At most this many released layouts of each size are kept for reuse (~3.5 MB of twins' layouts). */
export const SPARE_LAYOUTS = 1024;

/**
 * Layouts whose twin is gone (releaseLayout), by byte length, for emptyLayout to hand out again. A compact
 * twin is decoded by each reading and compacted again 30 s later (runtime/shard/compaction.ts): a fresh
 * 3.4 KB buffer per decode lived long enough to reach V8's old space, where only a full mark-compact
 * frees it, and at a thousand readings a second those buffers drove a mark-compact every ~18 s
 * (docs/BENCHMARKS.md, "Statistics buffers reused"). The pool changes no result of the domain: a layout
 * handed out again is zeroed first, so nothing it held before can show.
 */
const spares = new Map<number, DataView[]>();

/**
 * A fresh, empty packed state; `roomAfter` bytes after STATS_BYTES belong to someone else (the twin's
 * learned state lives there: one buffer and one DataView per twin, not two of each). Zeroed all through,
 * the room after included.
 */
export function emptyLayout(roomAfter = 0): DataView {
  const spare = spares.get(STATS_BYTES + roomAfter)?.pop();
  if (spare === undefined) {
    const v = new DataView(new ArrayBuffer(STATS_BYTES + roomAfter));
    clearLayout(v);
    return v;
  }
  new Uint8Array(spare.buffer, spare.byteOffset + STATS_BYTES, roomAfter).fill(0);
  clearLayout(spare);
  return spare;
}

/**
 * Gives a layout back for emptyLayout to hand out again. The caller guarantees nothing reads or writes it
 * afterwards (the runtime has dropped the twin that held it): released twice, or used after, two twins
 * would share their statistics.
 */
export function releaseLayout(v: DataView): void {
  if (v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength) return; // a view into something larger: not ours to reuse
  let list = spares.get(v.byteLength);
  if (list === undefined) spares.set(v.byteLength, (list = []));
  if (list.length < SPARE_LAYOUTS) list.push(v);
}

/** Zeroes the state and sets the "none" markers (the statistics' bytes only, not the room after them). */
export function clearLayout(v: DataView): void {
  new Uint8Array(v.buffer, v.byteOffset, STATS_BYTES).fill(0);
  setF64(v, LATEST_T, NaN);
  setF64(v, CO2_BASELINE, NaN);
  setF64(v, VOC_BASELINE, NaN);
}
