// The shards' snapshot records into `snapshots` and their checkpoints into `checkpoints`: one batch per
// shard's bucket, the batches of all shards handed in together merged into one upsert per table
// (group-commit.ts). The records go as they are, one binary parameter holding them end to end, each row
// cut from it by offset and length in the statement: as hex text in a text[] they cost the archive the
// hex and the array's escaping, the socket twice the bytes, and Postgres the array's parsing and the
// decode — more than the row itself (docs/BENCHMARKS.md, "Archive: a snapshot's cost").
import type { Queryable } from "./db/mod.ts";
import { noCounts, type KvMessage, type WriteCounts } from "./writer.ts";

/** What one shard's batch of its bucket writes: the newest of each key, the newest checkpoint. */
export interface SnapshotBatch {
  shard: number;
  /** Generation of the input stream the shard's sequences refer to (restore needs it). */
  inGen: number;
  /** When the batch was written (`stored_at`, ms). */
  now: number;
  records: SnapshotRow[];
  checkpoint: { gen: number; kvSeq: number; seq: number } | undefined;
}

export interface SnapshotRow {
  key: string;
  gen: number;
  kvSeq: number;
  appliedSeq: number;
  /** The record as the bucket holds it; null for a delete or purge. */
  record: Uint8Array | null;
}

/**
 * One shard's batch from its bucket's messages, newest write wins: a later generation of the bucket, or
 * a later revision within one (the bucket's revisions order an entity's writes; its applied sequence
 * would not survive a restore into a recreated input stream). `_checkpoint` is the checkpoint, `_fence`
 * is not archived. `appliedSeq`/`checkpointSeq` read the sequence a record or checkpoint holds.
 */
export function snapshotBatch(
  shard: number,
  inGen: number,
  now: number,
  messages: readonly KvMessage[],
  appliedSeq: (record: Uint8Array) => number,
  checkpointSeq: (record: Uint8Array) => number,
): SnapshotBatch {
  const latest = new Map<string, KvMessage>();
  for (const m of messages) latest.set(m.key, m); // in stream order: the last one wins
  const batch: SnapshotBatch = { shard, inGen, now, records: [], checkpoint: undefined };
  for (const m of latest.values()) {
    if (m.key === "_fence") continue;
    if (m.key === "_checkpoint") {
      if (m.value !== null) batch.checkpoint = { gen: m.gen, kvSeq: m.seq, seq: checkpointSeq(m.value) };
      continue;
    }
    batch.records.push({ key: m.key, gen: m.gen, kvSeq: m.seq, appliedSeq: m.value === null ? 0 : appliedSeq(m.value), record: m.value });
  }
  return batch;
}

/** Most record bytes in one statement: a backlog of 64 shards' batches goes in several. */
const STATEMENT_BYTES = 8 << 20;

/**
 * Writes the batches (one per shard, normally; several shards' handed in together) in the caller's
 * transaction: one upsert of all their records, one of their checkpoints. Returns each batch's counts
 * (a record counts for the batch it came from when it was written, not found older than the archived one).
 */
export async function writeSnapshotBatches(tx: Queryable, batches: readonly SnapshotBatch[]): Promise<WriteCounts[]> {
  const counts = batches.map(() => noCounts());
  // a key in two batches (redelivered, or moved between shards) is written once, its newest: an upsert
  // cannot touch one row twice
  const newest = new Map<string, { row: SnapshotRow; b: number }>();
  batches.forEach((batch, b) => {
    for (const row of batch.records) {
      const seen = newest.get(row.key);
      if (seen === undefined || row.gen > seen.row.gen || (row.gen === seen.row.gen && row.kvSeq > seen.row.kvSeq)) newest.set(row.key, { row, b });
    }
  });
  let part: { row: SnapshotRow; b: number }[] = [];
  let bytes = 0;
  for (const entry of newest.values()) {
    part.push(entry);
    bytes += entry.row.record?.length ?? 0;
    if (bytes >= STATEMENT_BYTES) {
      await upsertRecords(tx, batches, part, counts);
      part = [];
      bytes = 0;
    }
  }
  if (part.length > 0) await upsertRecords(tx, batches, part, counts);
  await upsertCheckpoints(tx, batches);
  return counts;
}

async function upsertRecords(tx: Queryable, batches: readonly SnapshotBatch[], part: readonly { row: SnapshotRow; b: number }[], counts: WriteCounts[]): Promise<void> {
  const c = { key: [] as string[], shard: [] as number[], gen: [] as number[], kvSeq: [] as number[], applied: [] as number[], inGen: [] as number[], at: [] as number[], start: [] as (number | null)[], length: [] as (number | null)[] };
  const records: Uint8Array[] = [];
  let offset = 1; // substring counts from 1
  for (const { row, b } of part) {
    const batch = batches[b]!;
    c.key.push(row.key);
    c.shard.push(batch.shard);
    c.gen.push(row.gen);
    c.kvSeq.push(row.kvSeq);
    c.applied.push(row.appliedSeq);
    c.inGen.push(batch.inGen);
    c.at.push(batch.now);
    c.start.push(row.record === null ? null : offset);
    c.length.push(row.record === null ? null : row.record.length);
    if (row.record !== null) {
      records.push(row.record);
      offset += row.record.length;
    }
  }
  const r = await tx.query<{ key: string }>(
    `insert into snapshots (key, shard, gen, kv_seq, applied_seq, record, stored_at, in_gen)
     select u.key, u.shard, u.gen, u.kv_seq, u.applied, case when u.start is null then null else substring($10::bytea from u.start for u.length) end, u.at, u.in_gen
     from unnest($1::text[], $2::int[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int[], $9::int[]) as u(key, shard, gen, kv_seq, applied, in_gen, at, start, length)
     on conflict (key) do update set shard = excluded.shard, gen = excluded.gen, kv_seq = excluded.kv_seq, applied_seq = excluded.applied_seq,
       record = excluded.record, stored_at = excluded.stored_at, in_gen = excluded.in_gen
     where (excluded.gen, excluded.kv_seq) > (snapshots.gen, snapshots.kv_seq)
     returning key`,
    [c.key, c.shard, c.gen, c.kvSeq, c.applied, c.inGen, c.at, c.start, c.length, Buffer.concat(records)],
  );
  const batchOf = new Map(part.map((e) => [e.row.key, e.b]));
  for (const { key } of r.rows) counts[batchOf.get(key)!]!.snapshots++;
}

async function upsertCheckpoints(tx: Queryable, batches: readonly SnapshotBatch[]): Promise<void> {
  const newest = new Map<number, SnapshotBatch>();
  for (const b of batches) {
    if (b.checkpoint === undefined) continue;
    const seen = newest.get(b.shard)?.checkpoint;
    if (seen === undefined || b.checkpoint.gen > seen.gen || (b.checkpoint.gen === seen.gen && b.checkpoint.kvSeq > seen.kvSeq)) newest.set(b.shard, b);
  }
  if (newest.size === 0) return;
  const c = { shard: [] as number[], gen: [] as number[], kvSeq: [] as number[], seq: [] as number[], at: [] as number[], inGen: [] as number[] };
  for (const b of newest.values()) {
    c.shard.push(b.shard);
    c.gen.push(b.checkpoint!.gen);
    c.kvSeq.push(b.checkpoint!.kvSeq);
    c.seq.push(b.checkpoint!.seq);
    c.at.push(b.now);
    c.inGen.push(b.inGen);
  }
  await tx.query(
    `insert into checkpoints (shard, gen, kv_seq, seq, stored_at, in_gen)
     select * from unnest($1::int[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::int8[])
     on conflict (shard) do update set gen = excluded.gen, kv_seq = excluded.kv_seq, seq = excluded.seq, stored_at = excluded.stored_at, in_gen = excluded.in_gen
     where (excluded.gen, excluded.kv_seq) > (checkpoints.gen, checkpoints.kv_seq)`,
    [c.shard, c.gen, c.kvSeq, c.seq, c.at, c.inGen],
  );
}
