// Several sources' batches in one transaction: the archive's snapshot buckets (one per shard) each get
// a few snapshots a second in a fleet, so a transaction per batch meant a commit (and its WAL flush) and
// a connection checkout per handful of rows. Writes handed in within `delayMs` of the first are run one
// after the other in one transaction; each caller's promise settles after that commit. Should it fail,
// each write is run again in a transaction of its own and settles by its own outcome, so one refused
// write never holds the others back (the archive's writes are idempotent: running one again is harmless).
import type { Database, Queryable } from "./db/mod.ts";

interface Job {
  fn: (tx: Queryable) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  private queue: Job[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    /** How long the first write handed in waits for others to share its transaction (ms). */
    private readonly delayMs: number,
  ) {}

  /** Like `db.transaction(fn)`, in a transaction shared with other writes handed in about then. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
    });
  }

  private async flush(): Promise<void> {
    // one group at a time: writes handed in meanwhile wait for the next
    await this.running;
    this.timer = undefined;
    const jobs = this.queue.splice(0);
    if (jobs.length === 0) return;
    this.running = this.write(jobs);
    await this.running;
  }

  private async write(jobs: Job[]): Promise<void> {
    if (jobs.length > 1) {
      try {
        const results: unknown[] = [];
        await this.db.transaction(async (tx) => {
          for (const j of jobs) results.push(await j.fn(tx));
        });
        jobs.forEach((j, i) => j.resolve(results[i]));
        return;
      } catch {
        // which write failed is not known: each alone below
      }
    }
    for (const j of jobs) await this.db.transaction(j.fn).then(j.resolve, j.reject);
  }
}
