// Several sources' writes in one transaction: the archive's snapshot buckets (one per shard) each get
// a few snapshots a second in a fleet, so a transaction per batch meant a commit (and its WAL flush) and
// a connection checkout per handful of rows. Jobs handed in within `delayMs` of the first are written
// together — by one `writeAll` in one transaction, which may merge their rows into one statement per
// table; each caller's promise settles after that commit. Should it fail, each job is written again in
// a transaction of its own and settles by its own outcome, so one refused job never holds the others
// back (the archive's writes are idempotent: writing one again is harmless).
import type { Database, Queryable } from "./db/mod.ts";

interface Pending<J, R> {
  job: J;
  resolve: (v: R) => void;
  reject: (err: unknown) => void;
}

/** Writes jobs inside the caller's transaction; returns each job's result, in order. */
export type WriteAll<J, R> = (tx: Queryable, jobs: readonly J[]) => Promise<R[]>;

export class GroupCommit<J, R> {
  private queue: Pending<J, R>[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    /** How long the first job handed in waits for others to share its transaction (ms). */
    private readonly delayMs: number,
    private readonly writeAll: WriteAll<J, R>,
  ) {}

  /** Writes the job in a transaction shared with other jobs handed in about then; settles after its commit. */
  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
    });
  }

  private async flush(): Promise<void> {
    // one group at a time: jobs handed in meanwhile wait for the next
    await this.running;
    this.timer = undefined;
    const pending = this.queue.splice(0);
    if (pending.length === 0) return;
    this.running = this.write(pending);
    await this.running;
  }

  private async write(pending: Pending<J, R>[]): Promise<void> {
    if (pending.length > 1) {
      try {
        const results = await this.db.transaction((tx) => this.writeAll(tx, pending.map((p) => p.job)));
        pending.forEach((p, i) => p.resolve(results[i]!));
        return;
      } catch {
        // which job failed is not known: each alone below
      }
    }
    for (const p of pending) await this.db.transaction((tx) => this.writeAll(tx, [p.job])).then((r) => p.resolve(r[0]!), p.reject);
  }
}
