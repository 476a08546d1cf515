// Anomalies of one channel, judged against the device's own learned behaviour (channel-model.ts):
//   spike  one reading SPIKE_Z residual scales away from what the model expected for that hour, and
//          the next one back in line: a glitch, not an event (cooking or a window open stay out for
//          several readings). Reported with the next reading; `value` is the spike's.
//   stuck  the value has not changed for STUCK_MIN_S (channel-model.ts measures the run) on a channel that normally moves between
//          readings (its mean |Δ| ≥ STUCK_MOVE sensor floors); one alert per flat stretch. Not at the
//          channel's floor (0, or co2 at its learned empty-room baseline): clean air may read flat there
//          (eCO2 sensors clamp at their baseline)
//   drift  the deseasonalized level of the last day has left the week's by more than DRIFT_K times
//          their usual gap (learned per device) — a slow departure that no daily pattern explains;
//          once per episode (until the gap is back under half that), after DRIFT_WARM_MIN learned
//          minutes; judged hourly, when the drift statistics move (channel-model.ts)
// A channel alerts at most once per hour (docs/design.md §4), and only after ANOMALY_WARM_MIN learned minutes
// (a day); channel-model.ts lets through only the readings that may be an anomaly.

import { CHANNELS } from "../types.ts";
import type { Alert, Channel } from "../types.ts";
import type { StepResult } from "./channel-model.ts";
import * as layout from "./layout.ts";

// The per-reading path reads these through module-local consts: an imported binding is live, and V8's
// optimized code loads it from its cell with a TDZ check at every use (a load, a compare and a branch
// per constant); a module-local const folds to an immediate. (Bit-identical either way.)
const { ANOMALY_SENT, DRIFTING, C_ANCHOR, C_ANOMALY_S, C_DRIFT_SCALE, C_FLAGS, C_MOVE, C_SLOW, channelBase, elapsedS, f32, O_BASELINE, SCALE_FLOOR_AT, setU32, u32 } = layout;

/** Residual scales (mean |one-step residual|) that make a spike. */
export const SPIKE_Z = 8;
/** The reading after a spike is "back" within this many scales. */
export const SPIKE_BACK_Z = 3;
/** "Normally moves": mean |Δ| between readings of at least this many scale floors. */
export const STUCK_MOVE = 0.5;
/** Drift: |day level − week level| over this many times its usual value (or residual scales, floors). */
export const DRIFT_K = 4;
/** Learned minutes before drift is judged (3 days): the usual gap must be learned first. */
export const DRIFT_WARM_MIN = 3 * 1440;
/** At most one anomaly alert per channel per this many seconds. */
export const ANOMALY_GAP_S = 3600;

const abs = (x: number): number => (x < 0 ? -x : x);
const CI_CO2 = CHANNELS.indexOf("co2");

/** Values at or under this are the channel's floor, where a flat line is normal. */
function atFloor(v: DataView, ci: number, floor: number): number {
  if (ci !== CI_CO2) return 0;
  const base = f32(v, O_BASELINE);
  return Number.isNaN(base) ? 0 : base + floor;
}
const round = (n: number): number => Math.round(n * 1000) / 1000;

/** The usual gap between the day and week levels: their learned mean gap, at least the residual scale and two floors. */
function usualGap(v: DataView, b: number, scale: number, floor: number): number {
  return Math.max(f32(v, b + C_DRIFT_SCALE), scale, 2 * floor);
}

/**
 * Checks the reading just fed to channel `ci` (`step` from updateChannel, which found it may be
 * one: MAY_BE_ANOMALY); returns an alert or undefined.
 */
export function detectAnomaly(v: DataView, ci: number, deviceId: string, step: StepResult): Alert | undefined {
  const b = channelBase(ci);
  const tS = step.tS;
  let flags = step.flags;
  const floor = SCALE_FLOOR_AT[ci] as number;
  if (step.driftUpdated && (flags & DRIFTING) !== 0 && abs(f32(v, b + C_SLOW) - f32(v, b + C_ANCHOR)) < (DRIFT_K / 2) * usualGap(v, b, step.scale, floor)) v.setUint8(b + C_FLAGS, (flags &= ~DRIFTING));
  if ((flags & ANOMALY_SENT) !== 0 && elapsedS(tS, u32(v, b + C_ANOMALY_S)) < ANOMALY_GAP_S) return undefined;
  let reason: Alert["reason"];
  let score: number;
  const x = step.value;
  let value = x;
  let expected = step.expected;
  const run = step.stuckRunS;
  const spikeZ = step.previousOutlier ? abs(step.previous - step.expected) / step.scale : 0;
  if (spikeZ >= SPIKE_Z && abs(step.residual) <= SPIKE_BACK_Z * step.scale) {
    reason = "spike";
    score = spikeZ;
    value = step.previous;
  } else if (run !== 0 && f32(v, b + C_MOVE) >= STUCK_MOVE * floor && x > atFloor(v, ci, floor)) {
    reason = "stuck";
    // readings without the change the channel normally shows between two
    score = (run / step.dtS) * (f32(v, b + C_MOVE) / floor);
  } else {
    if (!step.driftUpdated || step.learnedMin < DRIFT_WARM_MIN || (flags & DRIFTING) !== 0) return undefined;
    const gap = f32(v, b + C_SLOW) - f32(v, b + C_ANCHOR);
    const usual = usualGap(v, b, step.scale, floor);
    if (abs(gap) < DRIFT_K * usual) return undefined;
    flags |= DRIFTING;
    reason = "drift";
    score = abs(gap) / usual;
    expected = x - gap;
  }
  setU32(v, b + C_ANOMALY_S, tS);
  v.setUint8(b + C_FLAGS, flags | ANOMALY_SENT);
  const ch = CHANNELS[ci] as Channel;
  const t = step.t;
  return { id: `${deviceId}:${ch}:anomaly:${t}`, deviceId, channel: ch, kind: "anomaly", at: t, value, expected: round(expected), score: round(score), reason };
}
