// A min-heap of entity wake-ups. Entries are lazily invalidated: the runner keeps, per entity, which
// entry is live and skips the others when they come due, so re-scheduling never searches the heap.

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
