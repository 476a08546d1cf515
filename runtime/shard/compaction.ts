// The compaction sweep: a decoded entity idle for `compactAfterMs` is kept as its encoded state only
// (EntityTable.compact), dirty or not, and decoded again by its next input, wake-up or query. A device
// twin reads once every 5 minutes; decoded between readings, a million of them were a large object graph
// that V8's GC marked over and over (most of an idle node's CPU) and ~3.6 KB each; compact, they are a
// byte array each (docs/BENCHMARKS.md, "Compact twins"). The price is a decode and an encode per
// reading — the encode a commit would otherwise do, since it writes a compact twin's bytes as they are.
import { sliceUsed, yieldTurn } from "../turns.ts";
import type { EntityTable } from "./entities.ts";

/** At most this many entities compacted per shard per sweep: a million twins idle at once take a few sweeps, not one long pause. */
export const COMPACT_BATCH = 1000;
/** Entities compacted between two looks at the turn's slice (a twin's encode is ~25 µs quiet, ~0.5 ms on a loaded node). */
export const SWEEP_STEP = 8;

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
 * A shard's sweep: compactIdle up to COMPACT_BATCH, SWEEP_STEP at a time, within the turns of the shard
 * loops (turns.ts) — the first step too. The shards' sweep timers fall due together (they started
 * together), so a first slice run in the timer callback itself was one slice per shard in one timers
 * phase: 64 shards held the event loop for 2 s while three million twins were primed. And a step count
 * alone (64) does not bound the time: a twin's encode is 20× slower on a loaded node.
 */
export async function sweepIdle(table: EntityTable, idleMs: number): Promise<number> {
  let n = 0;
  while (n < COMPACT_BATCH) {
    if (sliceUsed()) await yieldTurn();
    const k = compactIdle(table, idleMs, Date.now(), Math.min(SWEEP_STEP, COMPACT_BATCH - n));
    n += k;
    if (k < SWEEP_STEP) break;
  }
  return n;
}
