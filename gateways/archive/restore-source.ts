// What `airtwin archive restore` reads from the archive: registry entries, and per shard the latest
// snapshot records and checkpoint with the input stream generation they refer to. Plus the bookkeeping
// that makes a restore resumable: a run per set of arguments, and the shards it has finished.
import type { Queryable } from "./db/mod.ts";

/** An archived snapshot record (the runtime's encoding) and the input stream generation it refers to. */
export interface ArchivedSnapshot {
  key: string;
  record: Uint8Array;
  inGen: number;
}

export async function archivedRegistry(db: Queryable, keys?: readonly string[]): Promise<{ key: string; value: Uint8Array }[]> {
  const { rows } = await db.query<{ key: string; value: Uint8Array }>(
    "select key, value from registry where value is not null and ($1::text[] is null or key = any($1::text[])) order by key",
    [keys ?? null],
  );
  return rows.map((r) => ({ key: r.key, value: new Uint8Array(r.value) }));
}

/** Shards that have archived snapshots, ascending. */
export async function archivedShards(db: Queryable): Promise<number[]> {
  const { rows } = await db.query<{ shard: number }>("select distinct shard from snapshots where record is not null order by shard");
  return rows.map((r) => r.shard);
}

/** The latest records of a shard (or of the given keys only). */
export async function archivedSnapshots(db: Queryable, shard: number, keys?: readonly string[]): Promise<ArchivedSnapshot[]> {
  const { rows } = await db.query<{ key: string; record: Uint8Array; in_gen: number }>(
    "select key, record, in_gen from snapshots where shard = $1 and record is not null and ($2::text[] is null or key = any($2::text[])) order by key",
    [shard, keys ?? null],
  );
  return rows.map((r) => ({ key: r.key, record: new Uint8Array(r.record), inGen: r.in_gen }));
}

export async function archivedCheckpoint(db: Queryable, shard: number): Promise<{ seq: number; inGen: number } | undefined> {
  const { rows } = await db.query<{ seq: number; in_gen: number }>("select seq, in_gen from checkpoints where shard = $1", [shard]);
  return rows[0] === undefined ? undefined : { seq: rows[0].seq, inGen: rows[0].in_gen };
}

/** Every shard's archived checkpoint. */
export async function archivedCheckpoints(db: Queryable): Promise<Map<number, { seq: number; inGen: number }>> {
  const { rows } = await db.query<{ shard: number; seq: number; in_gen: number }>("select shard, seq, in_gen from checkpoints");
  return new Map(rows.map((r) => [r.shard, { seq: r.seq, inGen: r.in_gen }]));
}

/** Counts the records a restore of these shards will write (for the progress bar). */
export async function countSnapshots(db: Queryable, shards: readonly number[], keys?: readonly string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "select count(*)::int as n from snapshots where shard = any($1::int[]) and record is not null and ($2::text[] is null or key = any($2::text[]))",
    [shards, keys ?? null],
  );
  return rows[0]?.n ?? 0;
}

/** The unfinished run with these arguments, or a new one; with the shards it has done. */
export async function openRestoreRun(db: Queryable, id: string, args: string, now: number): Promise<{ resumed: boolean; done: Set<number> }> {
  const existing = await db.query<{ finished_at: number | null }>("select finished_at from restore_runs where id = $1", [id]);
  if (existing.rows[0] !== undefined && existing.rows[0].finished_at === null) {
    const { rows } = await db.query<{ shard: number }>("select shard from restore_progress where run_id = $1", [id]);
    return { resumed: true, done: new Set(rows.map((r) => r.shard)) };
  }
  await db.query("delete from restore_progress where run_id = $1", [id]);
  await db.query(
    "insert into restore_runs (id, args, started_at, finished_at) values ($1, $2, $3, null) on conflict (id) do update set started_at = excluded.started_at, finished_at = null",
    [id, args, now],
  );
  return { resumed: false, done: new Set() };
}

export async function shardRestored(db: Queryable, id: string, shard: number, records: number, now: number): Promise<void> {
  await db.query("insert into restore_progress (run_id, shard, records, done_at) values ($1, $2, $3, $4) on conflict do nothing", [id, shard, records, now]);
}

export async function finishRestoreRun(db: Queryable, id: string, now: number): Promise<void> {
  await db.query("update restore_runs set finished_at = $2 where id = $1", [id, now]);
}
