// Time partitions of the readings table: one per UTC calendar month, named readings_pYYYYMM, created by
// the archive before it writes into them (and a few months ahead at start), and dropped — raw readings
// only, never rollups or outputs — once wholly older than the retention setting.
import type { Queryable } from "./db/mod.ts";

/** First millisecond of the UTC month holding `t`. */
export function monthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function nextMonth(start: number): number {
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export function partitionName(start: number): string {
  const d = new Date(start);
  return `readings_p${d.getUTCFullYear().toString().padStart(4, "0")}${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

const NAME = /^readings_p(\d{4})(\d{2})$/;

/** Postgres refused a row because no partition holds its time (SQLSTATE 23514, partition routing). */
export function isMissingPartition(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === "23514" && typeof e.message === "string" && e.message.includes("no partition of relation");
}

/**
 * Creates month partitions on demand; remembers those it knows exist. A partition is created inside the
 * writing transaction, so it is remembered before that transaction commits: one that then rolls back
 * (the database lost mid-batch) leaves a month remembered and not there. The writer forgets them all
 * when a row finds no partition ({@link forget}), and the batch is written again.
 */
export class Partitions {
  private readonly known = new Set<number>();

  /** Forgets every partition it remembers: the next batch checks (and creates) its months again. */
  forget(): void {
    this.known.clear();
  }

  /** Ensures a partition exists for every month of `times`. */
  async ensure(db: Queryable, times: Iterable<number>): Promise<void> {
    const missing = new Set<number>();
    // a batch's times mostly share a month: a Date per distinct month, not per reading
    let from = 1;
    let to = 0;
    for (const t of times) {
      if (t >= from && t < to) continue;
      from = monthStart(t);
      to = nextMonth(from);
      if (!this.known.has(from)) missing.add(from);
    }
    for (const m of [...missing].sort((a, b) => a - b)) {
      // concurrent archives: "if not exists" still races on the catalog, so serialize on a lock
      await db.query("select pg_advisory_xact_lock(hashtext(current_schema() || '.readings_partitions'))");
      await db.exec(`create table if not exists ${partitionName(m)} partition of readings for values from (${m}) to (${nextMonth(m)})`);
      this.known.add(m);
    }
  }

  /** Creates the current month's partition and `monthsAhead` more. */
  async ensureAhead(db: { transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> }, now: number, monthsAhead: number): Promise<void> {
    const times: number[] = [];
    for (let m = monthStart(now), i = 0; i <= monthsAhead; i++, m = nextMonth(m)) times.push(m);
    await db.transaction((tx) => this.ensure(tx, times));
  }

  /**
   * Drops the partitions whose whole month ended more than `retentionMs` before `now`; returns their
   * names. Rollups, outputs, snapshots are never touched.
   */
  async dropOlderThan(db: Queryable, now: number, retentionMs: number): Promise<string[]> {
    const { rows } = await db.query<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
       join pg_namespace n on n.oid = p.relnamespace where p.relname = 'readings' and n.nspname = current_schema()`,
    );
    const dropped: string[] = [];
    for (const { name } of rows) {
      const m = NAME.exec(name);
      if (!m) continue;
      const start = Date.UTC(Number(m[1]), Number(m[2]) - 1, 1);
      if (nextMonth(start) <= now - retentionMs) {
        await db.exec(`drop table if exists ${name}`);
        this.known.delete(start);
        dropped.push(name);
      }
    }
    return dropped.sort();
  }
}
