// A running shard's periodic work, each on a timer of its own: commits (commit.ts) at the shard's own phase
// of the interval, rounds of due wake-ups (the schedule is timers.ts), and compaction sweeps
// (compaction.ts). Rounds and sweeps run within the turns of the shard loops (turns.ts), so timers, I/O and
// the other shards run between their steps; one still running makes the next wait.
import { sliceUsed, yieldTurn } from "../turns.ts";
import { commitPhaseMs, type Committer } from "./commit.ts";
import { compactSweepMs, sweepIdle } from "./compaction.ts";
import type { EntityTable } from "./entities.ts";
import type { ShardRunnerDeps } from "./options.ts";
import type { WakeUps } from "./timers.ts";

/** Wake-ups fired between two looks at the turn's slice (a tick with an offline alert to publish is ~40 µs quiet). */
export const WAKE_STEP = 16;

/** What the timers work on, and when they must not (the runner's phase). */
export interface ShardTimersEnv {
  shard: number;
  deps: ShardRunnerDeps;
  table: EntityTable;
  wakeUps: WakeUps;
  committer: Committer;
  /** Lease lost or storage failed: nothing more is applied or written. */
  isAborted: () => boolean;
  /** No new input is taken (planned stop or abort). */
  isStopped: () => boolean;
  /** The time due wake-ups fire by: the wall clock, or behind it while input stored earlier waits (ShardInput.wakeClock). */
  wakeClock: () => number;
  fail: (err: Error) => void;
}

/** The timers of one running shard: started once the shard runs, cleared when it stops or aborts. */
export class ShardTimers {
  private commitTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private compactTimer: NodeJS.Timeout | undefined;
  /** A round of wake-ups is firing (it yields between steps; the next round waits for it). */
  private firing = false;
  /** A compaction sweep is under way (it yields between steps; the next waits for it). */
  private sweeping = false;

  constructor(private readonly env: ShardTimersEnv) {}

  start(): void {
    const { shard, deps, committer, table } = this.env;
    const { commitIntervalMs, wakeIntervalMs, compactAfterMs } = deps.options;
    // each shard commits at its own phase of the interval, not every shard of the node at once
    this.commitTimer = setTimeout(() => {
      if (this.env.isStopped()) return;
      this.commitTimer = setInterval(() => committer.commitIfDue(), commitIntervalMs);
      committer.commitIfDue();
    }, commitPhaseMs(shard, commitIntervalMs));
    this.wakeTimer = setInterval(() => void this.fireWakes().catch((err: unknown) => this.env.fail(err as Error)), wakeIntervalMs);
    if (compactAfterMs > 0) {
      this.compactTimer = setInterval(() => {
        if (this.sweeping) return;
        this.sweeping = true;
        void sweepIdle(table, compactAfterMs).finally(() => (this.sweeping = false));
      }, compactSweepMs(compactAfterMs));
    }
  }

  clear(): void {
    // clearInterval clears a timeout too: the commit timer is one until its phase comes
    clearInterval(this.commitTimer);
    clearInterval(this.wakeTimer);
    clearInterval(this.compactTimer);
  }

  /** Fires due wake-ups, at most `wakeBatch` per round; each entity once, however many it missed. */
  private async fireWakes(): Promise<void> {
    if (this.env.committer.capturing !== undefined || this.firing) return; // a commit is capturing its cut, or a round still firing; the next round fires them
    this.firing = true;
    try {
      await this.fireDueWakes();
    } finally {
      this.firing = false;
    }
  }

  private async fireDueWakes(): Promise<void> {
    const { deps, table, wakeUps, committer } = this.env;
    const { wakeBatch } = deps.options;
    const now = this.env.wakeClock();
    // WAKE_STEP at a time within the turns of the shard loops (turns.ts), the first step too: every
    // shard's round of 2,000 wake-ups in one go (a fleet going offline together) held the event loop for
    // seconds, and the leases with it; and the shards' rounds fall due in the same timers phase, so even
    // one slice each in the timer callback itself added up. Each step is taken only as it fires: a wake-up
    // taken is off its entity until its tick, and a commit capturing meanwhile would write the entity
    // without it.
    for (let fired = 0; fired < wakeBatch; ) {
      if (sliceUsed()) await yieldTurn();
      if (committer.capturing !== undefined || this.env.isStopped()) return; // the next round fires the rest
      const due = wakeUps.takeDue(now, Math.min(WAKE_STEP, wakeBatch - fired));
      if (due.length === 0) return;
      await table.fetchMissing(due);
      if (committer.capturing !== undefined) await committer.capturing;
      if (this.env.isAborted()) return;
      const wall = Date.now(); // what the twins were last used at (compaction), whatever time the wake-ups fire by
      for (const slot of due) {
        table.activate(slot, wall);
        const applied = slot.behavior.tick(slot.state, now, { prefix: deps.names.prefix });
        slot.state = applied.state;
        table.markDirty(slot);
        committer.publishOutputs(applied.outputs);
        wakeUps.schedule(slot, slot.behavior.nextWakeAt(slot.state));
      }
      deps.metrics.timersFired.inc(due.length);
      fired += due.length;
    }
  }
}
