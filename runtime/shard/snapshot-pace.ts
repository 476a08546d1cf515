// The pace of a shard's deferred snapshots. A twin's snapshot waits about `snapshotIntervalMs` from its
// first unsaved input (commit.ts), but twins that start waiting together — a fleet's first readings, a
// restart, a moved shard's replay — would all come due together one interval later, and at a million
// twins that wave (about a snapshot a request for five minutes) took the machine past its cores and the
// 202s to seconds (docs/BENCHMARKS.md, "Snapshots paced"). Paced, a shard writes its waiting twins
// oldest first, none before half the interval and every one by one and a half, at the larger of two
// rates: waiting ÷ interval per second — Little's law: a queue of L drained at L/W waits W, so a fleet
// in service waits one interval on average, as unpaced — and the ones past half the interval ÷ the time
// the oldest has left, which spreads a group that started together evenly up to the longest wait (the
// first rate alone drains it exponentially and leaves a third of it for that last moment).

/** A paced snapshot waits at least this fraction of the interval… */
export const PACED_MIN_WAIT = 0.5;
/** …and at most this fraction (then it is written whatever the pace). */
export const PACED_MAX_WAIT = 1.5;

/** Where a shard's waiting snapshots stand at a commit. */
export interface WaitingSnapshots {
  /** Entities waiting. */
  waiting: number;
  /** Of them, those waiting at least {@link PACED_MIN_WAIT} of the interval. */
  eligible: number;
  /** How long the oldest has waited (ms; 0 when none waits). */
  oldestWaitedMs: number;
}

export class SnapshotPace {
  /** Snapshots the shard may write now (fractional: the rate accrues between commits). */
  private allowance = 0;
  private accruedAt: number | undefined;

  constructor(private readonly intervalMs: number) {}

  /** The rate (snapshots a ms) the waiting snapshots call for now. */
  ratePerMs({ waiting, eligible, oldestWaitedMs }: WaitingSnapshots): number {
    const left = Math.max(1, this.intervalMs * PACED_MAX_WAIT - oldestWaitedMs);
    return Math.max(waiting / this.intervalMs, eligible / left);
  }

  /**
   * Adds what the waiting snapshots earn from the last call to `now` (performance.now() of a commit).
   * At most one snapshot's allowance is carried from one commit to the next: while the waiting ones are
   * all younger than half the interval the rate still accrues, and saved up it came out as a burst.
   */
  accrue(now: number, state: WaitingSnapshots): void {
    if (this.accruedAt !== undefined) {
      const earned = this.ratePerMs(state) * (now - this.accruedAt);
      this.allowance = Math.min(this.allowance, 1) + earned;
    }
    this.accruedAt = now;
  }

  /** Takes one snapshot's allowance; false when there is none left. */
  take(): boolean {
    if (this.allowance < 1) return false;
    this.allowance -= 1;
    return true;
  }
}
