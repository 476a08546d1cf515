// The entities of a shard whose snapshot a commit let wait (commit.ts), oldest first. A commit looks at
// the entities changed since its last cut and at the head of this queue, never at every waiting entity:
// at a million twins, each waiting up to 15 minutes (now 30 by default), a scan of all of them at every commit was most of an
// idle node's time (docs/BENCHMARKS.md, "The node at a million twins").
// The queue is kept in the order of each entity's first unsaved input as well as in the order it was
// deferred, so its oldest live entry is also the input the checkpoint must stay before; an entity that
// would break that order is not deferred (it is written at once). Entries are dropped lazily, as in
// timers.ts: an entity captured since (its `unsavedSince` cleared, or set by a later deferral) leaves a
// stale entry that is skipped when it reaches the head.
import type { Slot } from "./entities.ts";

/** Drop the consumed prefix of the arrays once it is this long and more than half of them. */
const COMPACT_AT = 1024;

export class DeferredSnapshots {
  private slots: Slot[] = [];
  /** The `unsavedSince` each entry was queued with: a slot whose own differs has left the queue. */
  private since: number[] = [];
  private firstSeqs: number[] = [];
  private head = 0;
  private live = 0;

  /** Entities waiting for their snapshot. */
  get count(): number {
    return this.live;
  }

  /**
   * Lets the entity's snapshot wait from `now` (performance.now() of the commit); true when it waits.
   * False when its first unsaved input is older than the newest entry's: it must be written now.
   */
  defer(slot: Slot, now: number): boolean {
    if (slot.unsavedSince !== 0) return true; // waiting already, in its place
    const n = this.slots.length;
    if (n > this.head && slot.unsavedSeq < this.firstSeqs[n - 1]!) return false;
    slot.unsavedSince = now;
    this.slots.push(slot);
    this.since.push(now);
    this.firstSeqs.push(slot.unsavedSeq);
    this.live++;
    return true;
  }

  /** The entity's snapshot was captured (called before its `unsavedSince` is cleared). */
  captured(slot: Slot): void {
    if (slot.unsavedSince !== 0) this.live--;
  }

  /**
   * Entries queued at or before `cutoff` (a performance.now() time): binary search, the queue being in
   * the order it was filled. Stale entries among them are counted too (few: an entity is written out of
   * turn only past its input limit, idle, or changed by a wake-up).
   */
  queuedBy(cutoff: number): number {
    let lo = this.head;
    let hi = this.since.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.since[mid]! <= cutoff) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }

  /** The entity that has waited longest, stale entries dropped on the way; undefined when none waits. */
  oldest(): Slot | undefined {
    while (this.head < this.slots.length) {
      const slot = this.slots[this.head]!;
      if (slot.dirty && slot.unsavedSince === this.since[this.head]) return slot;
      this.dropHead();
    }
    return undefined;
  }

  /** Empties the queue (the shard is released). */
  clear(): void {
    this.keepFrom(0, 0);
    this.live = 0;
  }

  private dropHead(): void {
    this.head++;
    if (this.head === this.slots.length) this.keepFrom(0, 0);
    else if (this.head >= COMPACT_AT && this.head * 2 > this.slots.length) this.keepFrom(this.head, this.slots.length);
  }

  /** Keeps entries [from, to) only. */
  private keepFrom(from: number, to: number): void {
    this.slots = this.slots.slice(from, to);
    this.since = this.since.slice(from, to);
    this.firstSeqs = this.firstSeqs.slice(from, to);
    this.head = 0;
  }
}
