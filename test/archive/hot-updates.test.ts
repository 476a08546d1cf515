// Device heads and snapshot rows are rewritten in place: every reading updates its device's head and
// every snapshot its entity's row, and their tables leave room on each page for the next version
// (migration 6), so a fleet's steady writes do not grow them — each round of updates fits beside the
// previous one and the round before is pruned. Both backends.
import { describe, expect, it } from "vitest";
import { migrate, type Database } from "../../gateways/archive/db/mod.ts";
import { Partitions } from "../../gateways/archive/partitions.ts";
import { ARCHIVE_MIGRATIONS } from "../../gateways/archive/schema.ts";
import { writeSnapshotBatches, type SnapshotBatch } from "../../gateways/archive/snapshot-write.ts";
import { writeInputs, type InputMessage } from "../../gateways/archive/writer.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

const DEVICES = 2000;
const ROUNDS = 8;
const T0 = Date.UTC(2026, 11, 1);
const device = (i: number) => `hot-${String(i).padStart(5, "0")}`;

/** Round `r`: one reading of every device, in one message per 100 devices (the gateway's micro-batches). */
function readingsRound(r: number): InputMessage[] {
  const out: InputMessage[] = [];
  for (let i = 0; i < DEVICES; i += 100) {
    const seq = r * DEVICES + i + 1;
    const items = Array.from({ length: 100 }, (_, k) => ({ type: "twin", entityId: device(i + k), kind: "readings", payload: [[T0 + r * 300_000, 12.5 + r, 600, 150, 21.5, 40, 20]] }));
    out.push({ stream: 0, gen: 1, seq, batch: { acceptedAt: T0 + r * 300_000, items } });
  }
  return out;
}

/** Round `r`: a snapshot of every device's twin, 700 bytes each (a young twin's record). */
function snapshotRound(r: number): SnapshotBatch {
  const record = new Uint8Array(700).fill(r);
  return {
    shard: 0,
    inGen: 1,
    now: T0 + r,
    records: Array.from({ length: DEVICES }, (_, i) => ({ key: `twin.${device(i)}`, gen: 1, kvSeq: r * DEVICES + i + 1, appliedSeq: r * DEVICES + i + 1, record })),
    checkpoint: undefined,
  };
}

const pages = async (db: Database, table: string) => Number((await db.query<{ n: string }>(`select pg_relation_size('${table}') / 8192 as n`)).rows[0]!.n);
const fillfactor = async (db: Database, table: string) =>
  (await db.query<{ opts: string[] | null }>(`select reloptions as opts from pg_class where relname = $1 and relkind = 'r' and pg_table_is_visible(oid)`, [table])).rows[0]?.opts;

describe.each(BACKENDS)("the archive's rows rewritten in place (%s)", (backend) => {
  it("device heads and snapshots keep room on their pages, and rounds of updates do not grow them", { timeout: 120_000 }, async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      expect(await fillfactor(db, "device_heads")).toEqual(["fillfactor=50"]);
      expect(await fillfactor(db, "snapshots")).toEqual(["fillfactor=60"]);

      const partitions = new Partitions();
      await db.transaction((tx) => writeInputs(tx, partitions, readingsRound(0)));
      await db.transaction((tx) => writeSnapshotBatches(tx, [snapshotRound(0)]));
      const first = { heads: await pages(db, "device_heads"), snapshots: await pages(db, "snapshots") };
      for (let r = 1; r < ROUNDS; r++) {
        for (const m of readingsRound(r)) await db.transaction((tx) => writeInputs(tx, partitions, [m]));
        await db.transaction((tx) => writeSnapshotBatches(tx, [snapshotRound(r)]));
      }
      // every head and row is the last round's
      const heads = await db.query<{ n: string; t: string }>("select count(*) as n, min(last_t) as t from device_heads");
      expect({ n: Number(heads.rows[0]!.n), t: Number(heads.rows[0]!.t) }).toEqual({ n: DEVICES, t: T0 + (ROUNDS - 1) * 300_000 });
      const rows = await db.query<{ n: string; kv: string }>("select count(*) as n, min(kv_seq) as kv from snapshots");
      expect({ n: Number(rows.rows[0]!.n), kv: Number(rows.rows[0]!.kv) }).toEqual({ n: DEVICES, kv: (ROUNDS - 1) * DEVICES + 1 });
      // seven more versions of every row, and the tables no bigger than one extra version's room: without
      // in-place updates each round would add its own pages (eight times the first round's size)
      expect(await pages(db, "device_heads")).toBeLessThanOrEqual(first.heads * 2 + 1);
      expect(await pages(db, "snapshots")).toBeLessThanOrEqual(first.snapshots * 2 + 1);
    } finally {
      await db.drop();
    }
  });
});
