// Several sources' writes in one transaction (gateways/archive/group-commit.ts): writes handed in
// together commit together, and a write the database refuses fails alone — the others commit.
import { describe, expect, it } from "vitest";
import { GroupCommit } from "../../gateways/archive/group-commit.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

describe.each(BACKENDS)("group commit (%s)", (backend) => {
  it("commits writes handed in together in one transaction, and a refused one fails alone", async () => {
    const db = await testDatabase(backend);
    try {
      await db.exec("create table group_rows (id int primary key, label text not null)");
      const group = new GroupCommit(db, 50);
      const txids = new Set<string>();
      const write = (id: number, label: string | null) =>
        group.transaction(async (tx) => {
          txids.add((await tx.query<{ x: string }>("select txid_current()::text as x")).rows[0]!.x);
          await tx.query("insert into group_rows (id, label) values ($1, $2) on conflict (id) do nothing", [id, label]);
          return id;
        });
      expect(await Promise.all([write(1, "a"), write(2, "b"), write(3, "c")])).toEqual([1, 2, 3]);
      expect(txids.size).toBe(1);

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
});
