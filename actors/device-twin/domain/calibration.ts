// Calibration of co2 and voc from daily lows (docs/design.md §4), on the packed layout of stats-layout.ts.
// stats.ts calls onDayClosed when a reading opens a later UTC day and recalibrateChannel on command.
//
// A day's low is its topMinMean at the channel's resolution (mean of its ≤ 5 lowest quantized values),
// kept exactly as (sum, n). Decision: the baseline window is the CALENDAR window of the 7 UTC days
// before the current day, not "the last 7 days that had readings", so after a long silence a stale low
// (say from a month ago, before the device moved) never counts; with no low in the window the baseline
// is undefined and the offset stays where it was.

import { CHANNELS, type CalibrationChange } from "./types.ts";
import {
  CO2_BASELINE,
  CO2_OFFSET,
  DAYS_KEPT,
  D_COUNT,
  LOW_BYTES,
  LOWS,
  QUANTUM,
  TOP_LOW,
  TOP_N,
  VOC_BASELINE,
  channelBase,
  daySlot,
  getF64,
  getU16,
  getU24,
  setF64,
  setU24,
} from "./snapshot.ts";

/** co2 target of the outdoor-air assumption, in ppm. */
export const CO2_TARGET_PPM = 400;
/** Largest change of the co2 offset per closed day, in ppm. */
export const MAX_OFFSET_STEP_PPM = 30;
/** Length of the calendar window of lows, in UTC days before the current day. */
export const BASELINE_WINDOW_DAYS = DAYS_KEPT;

export type CalibratedChannel = "co2" | "voc";
const CALIBRATED: ReadonlyArray<{ ch: CalibratedChannel; ci: number; ring: number; baseline: number }> = [
  { ch: "co2", ci: CHANNELS.indexOf("co2"), ring: 0, baseline: CO2_BASELINE },
  { ch: "voc", ci: CHANNELS.indexOf("voc"), ring: 1, baseline: VOC_BASELINE },
];

/** The co2 offset after one closed day: toward 400 − baseline, by at most 30 ppm. */
export function stepOffset(offset: number, baseline: number): number {
  const target = CO2_TARGET_PPM - baseline;
  return Math.min(offset + MAX_OFFSET_STEP_PPM, Math.max(offset - MAX_OFFSET_STEP_PPM, target));
}

/** Current calibration of both channels; `baseline` is absent until a low is in the window. */
export function readCalibration(v: DataView): { co2: { baseline?: number; offset: number }; voc: { baseline?: number; offset: number } } {
  return { co2: withBaseline(getF64(v, CO2_BASELINE), getF64(v, CO2_OFFSET)), voc: withBaseline(getF64(v, VOC_BASELINE), 0) };
}

/**
 * Day `closedDay` has just closed because a reading at `at` (ms) falls on the later day `newDay` (both in
 * days since the epoch). Records the closed day's lows, drops lows that left the window, recomputes the
 * baselines, steps the co2 offset, and returns a change per channel whose baseline or offset moved.
 */
export function onDayClosed(v: DataView, deviceId: string, closedDay: number, newDay: number, at: number): CalibrationChange[] {
  const changes: CalibrationChange[] = [];
  for (const c of CALIBRATED) {
    const ring = LOWS + c.ring * DAYS_KEPT * LOW_BYTES;
    if (closedDay >= newDay - BASELINE_WINDOW_DAYS) setU24(v, ring + (closedDay % DAYS_KEPT) * LOW_BYTES, lowCode(v, c.ci, closedDay));
    // Days between had no readings: their slots still hold lows from a week earlier, now outside the window.
    for (let d = closedDay + 1; d < newDay && d <= closedDay + DAYS_KEPT; d++) setU24(v, ring + (d % DAYS_KEPT) * LOW_BYTES, 0);
    let baseline = NaN;
    for (let i = 0; i < DAYS_KEPT; i++) {
      const low = lowValue(getU24(v, ring + i * LOW_BYTES), c.ch);
      if (low !== undefined && !(low >= baseline)) baseline = low;
    }
    const oldBaseline = getF64(v, c.baseline);
    const oldOffset = c.ch === "co2" ? getF64(v, CO2_OFFSET) : 0;
    const offset = c.ch === "co2" && !Number.isNaN(baseline) ? stepOffset(oldOffset, baseline) : oldOffset;
    if (Object.is(baseline, oldBaseline) && offset === oldOffset) continue;
    setF64(v, c.baseline, baseline);
    if (c.ch === "co2") setF64(v, CO2_OFFSET, offset);
    changes.push(change(deviceId, c.ch, at, baseline, offset));
  }
  return changes;
}

/** Forgets the lows of the closed days of `ch`: baseline undefined, offset 0. Always returns the change. */
export function recalibrateChannel(v: DataView, deviceId: string, ch: CalibratedChannel, at: number): CalibrationChange {
  const c = CALIBRATED.find((x) => x.ch === ch) as (typeof CALIBRATED)[number];
  const ring = LOWS + c.ring * DAYS_KEPT * LOW_BYTES;
  for (let i = 0; i < DAYS_KEPT; i++) setU24(v, ring + i * LOW_BYTES, 0);
  setF64(v, c.baseline, NaN);
  if (ch === "co2") setF64(v, CO2_OFFSET, 0);
  return change(deviceId, ch, at, NaN, 0);
}

/** sum·8 + n of the n ≤ 5 lowest quantized values of `day` (the open day in the top arrays), 0 if none. */
function lowCode(v: DataView, ci: number, day: number): number {
  const n = Math.min(TOP_N, v.getUint32(daySlot(ci, day) + D_COUNT, true));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += getU16(v, channelBase(ci) + TOP_LOW + i * 2);
  return n === 0 ? 0 : sum * 8 + n;
}

function lowValue(code: number, ch: CalibratedChannel): number | undefined {
  if (code === 0) return undefined;
  const n = code % 8;
  const q = QUANTUM[ch];
  return ((code - n) / 8 - n * q.offset) / (n * q.scale);
}

function withBaseline(baseline: number, offset: number): { baseline?: number; offset: number } {
  return Number.isNaN(baseline) ? { offset } : { baseline, offset };
}

function change(deviceId: string, ch: CalibratedChannel, at: number, baseline: number, offset: number): CalibrationChange {
  const out: CalibrationChange = { id: `${deviceId}:calibration:${ch}:${at}`, deviceId, channel: ch, at, offset };
  if (!Number.isNaN(baseline)) out.baseline = baseline;
  return out;
}
