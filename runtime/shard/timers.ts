// Entity wake-ups of one shard: each entity's wanted wake-up time lives on its slot (`wakeAt`, persisted
// with its snapshot); a min-heap orders them. Heap entries are lazily invalidated: the slot records which
// entry is live (`queuedAt`) and the others are skipped when they come due, so re-scheduling never
// searches the heap.
import type { RuntimeMetrics } from "../metrics.ts";
import type { Slot } from "./entities.ts";

/** The entity wake-ups of one shard. */
export class WakeUps {
  private readonly queue = new WakeQueue<Slot>();

  constructor(private readonly metrics: RuntimeMetrics) {}

  /** Heap entries, live or superseded. */
  get size(): number {
    return this.queue.size;
  }

  /**
   * Sets the entity's wake-up. A later time than the one queued adds no entry: the queued one moves on
   * when it comes due. (The twin's offline timer moves later with every reading; an entry per reading
   * kept every reading of the last offline period in the heap.)
   */
  schedule(slot: Slot, at: number | undefined): void {
    if (at === slot.wakeAt) return;
    slot.wakeAt = at;
    if (at !== undefined && (slot.queuedAt === undefined || at < slot.queuedAt)) this.enqueue(slot, at);
  }

  /**
   * Takes the entities whose wake-up is due at `now`, at most `max`, each once however many it missed;
   * their `wakeAt` is cleared (the caller ticks them and schedules what they want next).
   */
  takeDue(now: number, max: number): Slot[] {
    const due: Slot[] = [];
    while (due.length < max) {
      const at = this.queue.peekTime();
      if (at === undefined || at > now) break;
      const slot = this.queue.pop()!.key;
      this.metrics.timersQueued.dec();
      if (slot.queuedAt !== at) continue; // superseded by an earlier entry
      slot.queuedAt = undefined;
      if (slot.wakeAt === undefined) continue; // cancelled
      if (slot.wakeAt > now) {
        this.enqueue(slot, slot.wakeAt); // moved later since: on to that time
        continue;
      }
      slot.wakeAt = undefined;
      due.push(slot);
    }
    return due;
  }

  /** Drops every entry (the shard is released). */
  clear(): void {
    this.metrics.timersQueued.dec(this.queue.size);
    this.queue.clear();
  }

  private enqueue(slot: Slot, at: number): void {
    slot.queuedAt = at;
    this.queue.push(at, slot);
    this.metrics.timersQueued.inc();
  }
}

/** A min-heap of (time, key) entries. */
export class WakeQueue<T> {
  private times: number[] = [];
  private keys: T[] = [];

  get size(): number {
    return this.times.length;
  }

  push(at: number, key: T): void {
    this.times.push(at);
    this.keys.push(key);
    this.up(this.times.length - 1);
  }

  /** Drops every entry. */
  clear(): void {
    this.times = [];
    this.keys = [];
  }

  /** Earliest time in the queue, or undefined. */
  peekTime(): number | undefined {
    return this.times[0];
  }

  /** Removes and returns the earliest entry. */
  pop(): { at: number; key: T } | undefined {
    const n = this.times.length;
    if (n === 0) return undefined;
    const at = this.times[0]!;
    const key = this.keys[0]!;
    const lastT = this.times.pop()!;
    const lastK = this.keys.pop()!;
    if (n > 1) {
      this.times[0] = lastT;
      this.keys[0] = lastK;
      this.down(0);
    }
    return { at, key };
  }

  private up(i: number): void {
    const t = this.times, k = this.keys;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (t[p]! <= t[i]!) break;
      [t[p], t[i]] = [t[i]!, t[p]!];
      [k[p], k[i]] = [k[i]!, k[p]!];
      i = p;
    }
  }

  private down(i: number): void {
    const t = this.times, k = this.keys, n = t.length;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && t[l]! < t[m]!) m = l;
      if (r < n && t[r]! < t[m]!) m = r;
      if (m === i) return;
      [t[m], t[i]] = [t[i]!, t[m]!];
      [k[m], k[i]] = [k[i]!, k[m]!];
      i = m;
    }
  }
}
