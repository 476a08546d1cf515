// Several sources' writes in one transaction (gateways/archive/group-commit.ts): jobs handed in together
// commit together, and a job the database refuses fails alone — the others commit. The snapshot
// buckets' batches (gateways/archive/snapshot-write.ts) go further: several shards' records in one
// statement, each stored byte for byte, the newest of a key winning whichever batch holds it.
import { describe, expect, it } from "vitest";
import type { Queryable } from "../../gateways/archive/db/mod.ts";
import { GroupCommit } from "../../gateways/archive/group-commit.ts";
import { ARCHIVE_MIGRATIONS } from "../../gateways/archive/schema.ts";
import { migrate } from "../../gateways/archive/db/mod.ts";
import { snapshotBatch, writeSnapshotBatches, type SnapshotBatch } from "../../gateways/archive/snapshot-write.ts";
import type { KvMessage, WriteCounts } from "../../gateways/archive/writer.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

type Job = (tx: Queryable) => Promise<number>;

describe.each(BACKENDS)("group commit (%s)", (backend) => {
  it("commits writes handed in together in one transaction, and a refused one fails alone", async () => {
    const db = await testDatabase(backend);
    try {
      await db.exec("create table group_rows (id int primary key, label text not null)");
      const statements: number[] = [];
      const group = new GroupCommit<Job, number>(db, 50, async (tx, jobs) => {
        statements.push(jobs.length);
        const out: number[] = [];
        for (const job of jobs) out.push(await job(tx));
        return out;
      });
      const txids = new Set<string>();
      const write = (id: number, label: string | null) =>
        group.submit(async (tx) => {
          txids.add((await tx.query<{ x: string }>("select txid_current()::text as x")).rows[0]!.x);
          await tx.query("insert into group_rows (id, label) values ($1, $2) on conflict (id) do nothing", [id, label]);
          return id;
        });
      expect(await Promise.all([write(1, "a"), write(2, "b"), write(3, "c")])).toEqual([1, 2, 3]);
      expect(txids.size).toBe(1);
      expect(statements).toEqual([3]);

      // null violates "not null": that write is refused, the others in its group still commit
      const results = await Promise.allSettled([write(4, "d"), write(5, null), write(6, "f")]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: "23502" });
      const { rows } = await db.query<{ id: number }>("select id from group_rows order by id");
      expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 6]);
    } finally {
      await db.drop();
    }
  });

  it("writes several shards' snapshot batches in one statement: records byte for byte, the newest of a key wins, a refused batch fails alone", async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const statements: string[] = [];
      const counting: typeof db = {
        ...db,
        transaction: (fn) =>
          db.transaction((tx) =>
            fn({
              ...tx,
              query: (sql, params) => {
                if (/insert into snapshots/.test(sql)) statements.push("snapshots");
                return tx.query(sql, params);
              },
            }),
          ),
      };
      const group = new GroupCommit<SnapshotBatch, WriteCounts>(counting, 50, writeSnapshotBatches);
      // records of every length a bucket holds, with bytes COPY or hex would mangle if they went as text
      const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) % 256);
      const seqs = new Map<Uint8Array, number>();
      const rec = (n: number, seed: number, applied: number) => {
        const b = bytes(n, seed);
        seqs.set(b, applied);
        return b;
      };
      const seqOf = (b: Uint8Array) => seqs.get(b)!;
      const batch = (shard: number, messages: KvMessage[], inGen = 7) => snapshotBatch(shard, inGen, 1000 + shard, messages, seqOf, seqOf);
      const a1 = rec(975, 1, 11);
      const a2 = rec(0x10000 + 3, 2, 12); // over 64 KB
      const b1 = rec(1, 3, 21);
      const c1 = rec(300, 4, 31);
      const moved = rec(50, 5, 41);
      const movedOld = rec(60, 6, 40);
      const cp = rec(8, 7, 99);
      const counts = await Promise.all([
        group.submit(batch(0, [{ key: "twin.a", gen: 1, seq: 1, value: a1 }, { key: "twin.a", gen: 1, seq: 2, value: a2 }, { key: "_checkpoint", gen: 1, seq: 3, value: cp }, { key: "_fence", gen: 1, seq: 4, value: bytes(4, 0) }])),
        group.submit(batch(1, [{ key: "twin.b", gen: 1, seq: 5, value: b1 }, { key: "twin.gone", gen: 1, seq: 6, value: null }, { key: "twin.m", gen: 1, seq: 9, value: moved }])),
        // the same key in two batches (a redelivery beside its newer write): the newest is the row
        group.submit(batch(2, [{ key: "twin.c", gen: 1, seq: 7, value: c1 }, { key: "twin.m", gen: 1, seq: 8, value: movedOld }])),
      ]);
      expect(statements).toEqual(["snapshots"]);
      expect(counts.map((c) => c.snapshots)).toEqual([1, 3, 1]);
      const { rows } = await db.query<{ key: string; shard: number; kv_seq: number; applied_seq: number; record: Uint8Array | null; stored_at: number; in_gen: number }>(
        "select key, shard, kv_seq, applied_seq, record, stored_at, in_gen from snapshots order by key",
      );
      const asArray = (b: Uint8Array | null) => (b === null ? null : [...b]);
      expect(rows.map((r) => ({ ...r, record: asArray(r.record) }))).toEqual([
        { key: "twin.a", shard: 0, kv_seq: 2, applied_seq: 12, record: [...a2], stored_at: 1000, in_gen: 7 },
        { key: "twin.b", shard: 1, kv_seq: 5, applied_seq: 21, record: [...b1], stored_at: 1001, in_gen: 7 },
        { key: "twin.c", shard: 2, kv_seq: 7, applied_seq: 31, record: [...c1], stored_at: 1002, in_gen: 7 },
        { key: "twin.gone", shard: 1, kv_seq: 6, applied_seq: 0, record: null, stored_at: 1001, in_gen: 7 },
        { key: "twin.m", shard: 1, kv_seq: 9, applied_seq: 41, record: [...moved], stored_at: 1001, in_gen: 7 },
      ]);
      expect((await db.query("select shard, kv_seq, seq, in_gen from checkpoints")).rows).toEqual([{ shard: 0, kv_seq: 3, seq: 99, in_gen: 7 }]);

      // older than what is archived: nothing changes; a batch the database refuses (a shard past int4)
      // fails alone, the others of its group commit
      statements.length = 0;
      const results = await Promise.allSettled([
        group.submit(batch(0, [{ key: "twin.a", gen: 1, seq: 1, value: a1 }])),
        group.submit(batch(2 ** 31, [{ key: "twin.x", gen: 1, seq: 1, value: b1 }])),
        group.submit(batch(3, [{ key: "twin.d", gen: 2, seq: 1, value: c1 }])),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: expect.stringMatching(/^22/) });
      expect(results.map((r) => (r.status === "fulfilled" ? r.value.snapshots : -1))).toEqual([0, -1, 1]);
      expect(statements).toEqual(["snapshots", "snapshots", "snapshots", "snapshots"]); // together, then each alone
      const after = await db.query<{ key: string; record: Uint8Array }>("select key, record from snapshots where key in ('twin.a', 'twin.d', 'twin.x') order by key");
      expect(after.rows.map((r) => [r.key, asArray(r.record)])).toEqual([
        ["twin.a", [...a2]],
        ["twin.d", [...c1]],
      ]);
    } finally {
      await db.drop();
    }
  });
});
