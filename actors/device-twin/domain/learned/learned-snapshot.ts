// The learned state's snapshot section (bytes inside the twin snapshot, key `l`):
//   u8 version (2; 1: the same without the move directions in the flags) · u8 flags (occupied, decided, has baseline) · [f64 since, f32 probability] ·
//   [f32 baseline] · u8 channel set · when any: varuint reference time (s, the latest channel's) and
//   f32 rates of co2/tmp/hum · per channel: zigzag (lastS − reference), f32 last, level, trend, scale,
//   move, slow, anchor, drift scale, varuint mask, varuint (lastS − stuckSinceS), [varuint (lastS − anomalyS) when
//   mask has ANOMALY_SENT], varuint learned minutes, zigzag deltas of the learned season slots. Times are layout.ts's
//   u32 seconds; the reference is the first channel's lastS and differences are taken modulo 2^32. The
//   mask is bit h: season slot h learned, and the channel's flags (layout.ts C_FLAGS) from bit 24 — the
//   layout of the first in-memory state, kept so that the section's bytes did not change with it.
// Every number is written at the width the model holds it, so decode∘encode is the identity and a
// restored twin continues exactly as the original would have.

import { ByteFormatError, ByteReader, ByteWriter, unzigzag, zigzag } from "../bytes.ts";
import { DomainError } from "../errors.ts";
import { CHANNELS } from "../types.ts";
import { createStats } from "../stats.ts";
import type { TwinStats } from "../stats.ts";
import {
  ANOMALY_SENT, C_ANCHOR, C_DRIFT_SCALE, DRIFTING, C_ANOMALY_S, C_FLAGS, C_LAST, C_LAST_S, C_LEVEL, C_MOVE, C_LEARNED_MIN, C_SCALE, C_SEASON, C_SLOW, C_STUCK_SINCE_S, C_TREND,
  channelBase, createLearnedIn, DECIDED, elapsedS, f32, LEARNED_AT, LEARNED_BYTES, O_BASELINE, O_CO2_RATE, O_FLAGS, O_HUM_RATE,
  O_PROBABILITY, O_SCORE, O_SINCE, O_TMP_RATE, OCCUPIED, SCORED, SEASON_SLOTS, setF32, setU32, u32, UNLEARNED, view, wrap,
} from "./layout.ts";
import type { LearnedState } from "./layout.ts";
import { storedProbability } from "./learned-state.ts";

/** 2: the channel flags gained the last two moves' directions (layout.ts ROSE…FELL_BEFORE); 1 still decodes (no directions yet). */
const SECTION_VERSION = 2;
const HAS_BASELINE = 4;
const FLOATS = [C_LAST, C_LEVEL, C_TREND, C_SCALE, C_MOVE, C_SLOW, C_ANCHOR, C_DRIFT_SCALE] as const;
/** Where the channel flags sit in the section's mask (above the 24 season bits). */
const FLAGS_SHIFT = 24;
const MAX_MASK = 0xffffffff;
const MAX_MASK_V1 = DRIFTING * 2 ** FLAGS_SHIFT * 2 - 1;
const SENT_IN_MASK = ANOMALY_SENT << FLAGS_SHIFT;
const WRITER = new ByteWriter(1024);

/** Encodes the learned state (a fresh Uint8Array). */
export function encodeLearned(learned: LearnedState): Uint8Array {
  return encodeLearnedInto(WRITER.reset(), learned).finish();
}

/**
 * As {@link encodeLearned}, but the bytes are a view of a shared buffer, valid only until the next encode:
 * for a caller that copies them at once (the twin snapshot), saving an ArrayBuffer and a copy per encode.
 */
export function encodeLearnedTransient(learned: LearnedState): Uint8Array {
  return encodeLearnedInto(WRITER.reset(), learned).written();
}

function encodeLearnedInto(w: ByteWriter, learned: LearnedState): ByteWriter {
  const v = view(learned);
  w.u8(SECTION_VERSION);
  const baseline = f32(v, O_BASELINE);
  const occ = v.getUint8(O_FLAGS) & (OCCUPIED | DECIDED);
  w.u8(occ | (Number.isNaN(baseline) ? 0 : HAS_BASELINE));
  if (occ & DECIDED) {
    w.f64(v.getFloat64(O_SINCE, true));
    w.f32(storedProbability(v));
  }
  if (!Number.isNaN(baseline)) w.f32(baseline);
  let present = 0;
  let reference = -1;
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    if (v.getUint16(channelBase(ci) + C_LEARNED_MIN, true) === 0) continue;
    present |= 1 << ci;
    if (reference < 0) reference = u32(v, channelBase(ci) + C_LAST_S);
  }
  w.u8(present);
  if (present === 0) return w;
  w.varuint(reference);
  w.f32(f32(v, O_CO2_RATE));
  w.f32(f32(v, O_TMP_RATE));
  w.f32(f32(v, O_HUM_RATE));
  for (let ci = 0; ci < CHANNELS.length; ci++) {
    if (!(present & (1 << ci))) continue;
    const b = channelBase(ci);
    const lastS = u32(v, b + C_LAST_S);
    w.varuint(zigzag((lastS - reference) | 0));
    for (const at of FLOATS) w.f32(f32(v, b + at));
    let mask = v.getUint8(b + C_FLAGS) << FLAGS_SHIFT;
    for (let s = 0; s < SEASON_SLOTS; s++) if (v.getInt16(b + C_SEASON + s * 2, true) !== UNLEARNED) mask |= 1 << s;
    mask >>>= 0; // the top flag bit makes the int32 negative
    w.varuint(mask);
    w.varuint(elapsedS(lastS, u32(v, b + C_STUCK_SINCE_S)));
    if (mask & SENT_IN_MASK) w.varuint(elapsedS(lastS, u32(v, b + C_ANOMALY_S)));
    w.varuint(v.getUint16(b + C_LEARNED_MIN, true));
    let prev = 0;
    for (let s = 0; s < SEASON_SLOTS; s++) {
      if (!(mask & (1 << s))) continue;
      const q = v.getInt16(b + C_SEASON + s * 2, true);
      w.varuint(zigzag(q - prev));
      prev = q;
    }
  }
  return w;
}

function checked(n: number, min: number, max: number): number {
  if (!(n >= min && n <= max && Math.floor(n) === n)) throw new ByteFormatError(`value ${n} outside ${min}..${max}`);
  return n;
}

function finite(n: number): number {
  if (!Number.isFinite(n)) throw new ByteFormatError(`value ${n} is not finite`);
  return n;
}

/**
 * Decodes {@link encodeLearned}'s bytes into the room after `stats` (a twin's statistics, created or
 * decoded with room for it; by default statistics of its own); throws DomainError SNAPSHOT_VERSION /
 * SNAPSHOT_CORRUPT.
 */
export function decodeLearned(bytes: Uint8Array, stats: TwinStats = createStats(LEARNED_BYTES)): LearnedState {
  const version = bytes[0];
  if (bytes.length > 0 && version !== SECTION_VERSION && version !== 1) throw new DomainError("SNAPSHOT_VERSION", `learned section version ${version} is not 1 or ${SECTION_VERSION}`);
  const maxMask = version === 1 ? MAX_MASK_V1 : MAX_MASK;
  try {
    const r = new ByteReader(bytes);
    r.u8();
    const learned = createLearnedIn(stats);
    const v = view(learned);
    const flags = checked(r.u8(), 0, 7);
    const occ = flags & (OCCUPIED | DECIDED);
    if (occ === OCCUPIED) throw new ByteFormatError("occupied but never decided");
    v.setUint8(O_FLAGS, occ);
    if (occ & DECIDED) {
      v.setFloat64(O_SINCE, finite(r.f64()), true);
      const p = r.f32();
      if (!(p >= 0 && p <= 1)) throw new ByteFormatError(`bad probability ${p}`);
      setF32(v, O_PROBABILITY, p);
    }
    if (flags & HAS_BASELINE) setF32(v, O_BASELINE, finite(r.f32()));
    const present = checked(r.u8(), 0, (1 << CHANNELS.length) - 1);
    if (present !== 0) {
      const reference = checked(r.varuint(), 0, 0xffffffff);
      setF32(v, O_CO2_RATE, finite(r.f32()));
      setF32(v, O_TMP_RATE, finite(r.f32()));
      setF32(v, O_HUM_RATE, finite(r.f32()));
      for (let ci = 0; ci < CHANNELS.length; ci++) {
        if (!(present & (1 << ci))) continue;
        const b = channelBase(ci);
        const lastS = (reference + (unzigzag(checked(r.varuint(), 0, 0xffffffff)) | 0)) >>> 0;
        setU32(v, b + C_LAST_S, lastS);
        for (const at of FLOATS) setF32(v, b + at, finite(r.f32()));
        const mask = checked(r.varuint(), 0, maxMask);
        v.setUint8(b + C_FLAGS, mask >>> FLAGS_SHIFT);
        setU32(v, b + C_STUCK_SINCE_S, (lastS - checked(r.varuint(), 0, 0xffffffff)) >>> 0);
        if (mask & SENT_IN_MASK) setU32(v, b + C_ANOMALY_S, (lastS - checked(r.varuint(), 0, 0xffffffff)) >>> 0);
        v.setUint16(b + C_LEARNED_MIN, checked(r.varuint(), 1, 65535), true);
        let q = 0;
        for (let s = 0; s < SEASON_SLOTS; s++) {
          if (!(mask & (1 << s))) continue;
          q = checked(q + unzigzag(r.varuint()), -32767, 32767);
          v.setInt16(b + C_SEASON + s * 2, q, true);
        }
      }
    }
    r.end();
    return wrap(v);
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw new DomainError("SNAPSHOT_CORRUPT", `learned section cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * True when two learned states hold the same state: the same bytes, but for the last occupancy decision,
 * which may be held as its score or (restored from a snapshot) as its probability — equal when their
 * probabilities are.
 */
export function learnedEqual(a: LearnedState, b: LearnedState): boolean {
  const x = view(a);
  const y = view(b);
  for (let i = LEARNED_AT; i < LEARNED_AT + LEARNED_BYTES; i++) {
    if (i >= O_SCORE && i < O_SCORE + 8) continue;
    if (i === O_FLAGS ? (x.getUint8(i) & ~SCORED) !== (y.getUint8(i) & ~SCORED) : x.getUint8(i) !== y.getUint8(i)) return false;
  }
  return Object.is(storedProbability(x), storedProbability(y));
}
