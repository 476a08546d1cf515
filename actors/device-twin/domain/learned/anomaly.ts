// Anomalies of one channel, judged against the device's own learned behaviour (channel-model.ts):
//   spike  the reading is SPIKE_Z residual scales away from what the model expected for this hour
//   stuck  the value has not changed for STUCK_MIN_S on a channel that normally moves between
//          readings (its mean |Δ| ≥ STUCK_MOVE sensor floors); one alert per flat stretch
//   drift  the level over the last day has left the level of the last week by more than DRIFT_K
//          times the channel's daily amplitude (or its floor), i.e. a slow departure that no daily
//          pattern explains
// A channel alerts at most once per hour (docs/design.md §4), and only after WARM_READINGS readings.

import type { Alert, Channel } from "../types.ts";
import type { StepResult } from "./channel-model.ts";
import { ANOMALY_SENT, C_ANCHOR, C_ANOMALY_S, C_MASK, C_MOVE, C_N, C_SEASON, C_SLOW, C_STUCK_SINCE_S, channelBase, elapsedS, f32, SCALE_FLOOR, SEASON_SCALE, SEASON_SLOTS, setU32, u32 } from "./layout.ts";

/** Residual scales (mean |one-step residual|) that make a spike. */
export const SPIKE_Z = 8;
/** A flat line this long (s) on a moving channel is stuck. */
export const STUCK_MIN_S = 2 * 3600;
/** "Normally moves": mean |Δ| between readings of at least this many scale floors. */
export const STUCK_MOVE = 0.5;
/** Drift: |day level − week level| over this many daily amplitudes. */
export const DRIFT_K = 1.5;
/** Readings a channel needs before it may alert (a day at Foobot's 5-minute cadence). */
export const WARM_READINGS = 288;
/** At most one anomaly alert per channel per this many seconds. */
export const ANOMALY_GAP_S = 3600;

/** Checks the reading just fed to channel `ci` (`step` from updateChannel); returns an alert or undefined. */
export function detectAnomaly(v: DataView, ci: number, deviceId: string, ch: Channel, x: number, t: number, tS: number, step: StepResult): Alert | undefined {
  const b = channelBase(ci);
  if (v.getUint16(b + C_N, true) < WARM_READINGS) return undefined;
  const mask = u32(v, b + C_MASK);
  if ((mask & ANOMALY_SENT) !== 0 && elapsedS(tS, u32(v, b + C_ANOMALY_S)) < ANOMALY_GAP_S) return undefined;
  const floor = SCALE_FLOOR[ch];
  let reason: Alert["reason"];
  let score = 0;
  let expected = step.expected;
  const z = Math.abs(step.residual) / step.scale;
  const run = elapsedS(tS, u32(v, b + C_STUCK_SINCE_S));
  if (z >= SPIKE_Z) {
    reason = "spike";
    score = z;
  } else if (run >= STUCK_MIN_S && run - step.dtS < STUCK_MIN_S && f32(v, b + C_MOVE) >= STUCK_MOVE * floor) {
    reason = "stuck";
    score = (run / step.dtS) * (f32(v, b + C_MOVE) / floor);
  } else {
    const gap = f32(v, b + C_SLOW) - f32(v, b + C_ANCHOR);
    const absGap = gap < 0 ? -gap : gap;
    // cheap gate first: the amplitude scan reads 24 slots
    if (absGap < DRIFT_K * 2 * floor) return undefined;
    const amplitude = Math.max(seasonAmplitude(v, b, SEASON_SCALE[ch], mask), 2 * floor);
    if (absGap < DRIFT_K * amplitude) return undefined;
    reason = "drift";
    score = absGap / amplitude;
    expected = x - gap;
  }
  setU32(v, b + C_ANOMALY_S, tS);
  setU32(v, b + C_MASK, u32(v, b + C_MASK) | ANOMALY_SENT);
  const round = (n: number): number => Math.round(n * 1000) / 1000;
  return { id: `${deviceId}:${ch}:anomaly:${t}`, deviceId, channel: ch, kind: "anomaly", at: t, value: x, expected: round(expected), score: round(score), reason };
}

/** max − min of the learned season slots (the daily amplitude). */
function seasonAmplitude(v: DataView, b: number, scale: number, mask: number): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let s = 0; s < SEASON_SLOTS; s++) {
    if ((mask & (1 << s)) === 0) continue;
    const q = v.getInt16(b + C_SEASON + s * 2, true);
    if (q < lo) lo = q;
    if (q > hi) hi = q;
  }
  return hi > lo ? (hi - lo) / scale : 0;
}
