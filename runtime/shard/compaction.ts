// The compaction sweep: a decoded entity idle for `compactAfterMs` is kept as its encoded state only
// (EntityTable.compact), dirty or not, and decoded again by its next input, wake-up or query. A device
// twin reads once every 5 minutes; decoded between readings, a million of them were a large object graph
// that V8's GC marked over and over (most of an idle node's CPU) and ~3.6 KB each; compact, they are a
// byte array each (docs/BENCHMARKS.md, "Compact twins"). The price is a decode and an encode per
// reading — the encode a commit would otherwise do, since it writes a compact twin's bytes as they are.
import { yieldTurn } from "../turns.ts";
import type { EntityTable } from "./entities.ts";

/** At most this many entities compacted per shard per sweep: a million twins idle at once take a few sweeps, not one long pause. */
export const COMPACT_BATCH = 1000;
/** Entities compacted between two turns of the event loop in a sweep (~1.5 ms of encoding a twin each). */
export const SWEEP_SLICE = 64;

/** How often a shard sweeps (ms): often enough for the delay, at most every second. */
export function compactSweepMs(compactAfterMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(compactAfterMs / 4)));
}

/** Compacts the decoded entities last used `idleMs` or longer before `now`, least recently used first; returns how many. */
export function compactIdle(table: EntityTable, idleMs: number, now = Date.now(), max = COMPACT_BATCH): number {
  const cutoff = now - idleMs;
  let n = 0;
  for (const slot of table.leastRecentlyUsed()) {
    if (slot.lastUsed > cutoff || n >= max) break; // least recently used first: the rest are younger
    if (table.compact(slot)) n++;
  }
  return n;
}

/**
 * A shard's sweep: compactIdle up to COMPACT_BATCH, SWEEP_SLICE at a time, timers, I/O and the other
 * shards' turns in between — 64 shards compacting 1,000 twins each in one go held the event loop for over
 * a second when a wave of twins went idle together.
 */
export async function sweepIdle(table: EntityTable, idleMs: number): Promise<number> {
  let n = 0;
  for (;;) {
    const k = compactIdle(table, idleMs, Date.now(), SWEEP_SLICE);
    n += k;
    if (k < SWEEP_SLICE || n >= COMPACT_BATCH) return n;
    await yieldTurn();
  }
}
