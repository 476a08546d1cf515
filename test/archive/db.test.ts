// The archive's database layer on both backends: Postgres (DATABASE_URL, a schema of its own) and the
// embedded PGlite (a directory of its own, locked against a second process).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { migrate, openDatabase, type Database, type Migration } from "../../gateways/archive/db/mod.ts";

const url = process.env.DATABASE_URL;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "airtwin-db-"));
  dirs.push(d);
  return d;
}

/** A Postgres database in a fresh schema (dropped by `drop`), or PGlite in a fresh directory. */
async function open(kind: "postgres" | "pglite", schema = `t_${randomBytes(4).toString("hex")}`): Promise<Database & { drop(): Promise<void> }> {
  const db = kind === "postgres" ? await openDatabase({ databaseUrl: url, schema }) : await openDatabase({ dataDir: tempDir() });
  return Object.assign(db, {
    async drop() {
      if (kind === "postgres") await db.query(`drop schema if exists ${schema} cascade`);
      await db.close();
    },
  });
}

const m1: Migration = { version: 1, name: "widgets", sql: "create table widgets (id int primary key, label text not null)" };
const m2: Migration = { version: 2, name: "widgets.size", sql: "alter table widgets add column size int8 not null default 0" };

const backends = [...(url ? (["postgres"] as const) : []), "pglite"] as const;

describe.each(backends)("archive database (%s)", (kind) => {
  it("applies each migration once, in order, and records it", async () => {
    const db = await open(kind);
    try {
      expect(await migrate(db, { component: "test", migrations: [m1] })).toEqual({ applied: [1], version: 1 });
      expect(await migrate(db, { component: "test", migrations: [m2, m1] })).toEqual({ applied: [2], version: 2 });
      expect(await migrate(db, { component: "test", migrations: [m1, m2] })).toEqual({ applied: [], version: 2 });
      // another component's versions are its own
      expect((await migrate(db, { component: "other", migrations: [{ version: 1, name: "x", sql: "create table other_x (a int)" }] })).applied).toEqual([1]);
      await db.query("insert into widgets (id, label, size) values ($1, $2, $3)", [1, "a", 2 ** 40]);
      const { rows } = await db.query<{ size: number }>("select size from widgets");
      expect(rows).toEqual([{ size: 2 ** 40 }]); // int8 as a number
      const recorded = await db.query<{ component: string; version: number }>("select component, version from airtwin_migrations order by component, version");
      expect(recorded.rows).toEqual([
        { component: "other", version: 1 },
        { component: "test", version: 1 },
        { component: "test", version: 2 },
      ]);
    } finally {
      await db.drop();
    }
  });

  it("refuses an edited migration, a gap, and a database newer than the program, changing nothing", async () => {
    const db = await open(kind);
    try {
      await migrate(db, { component: "test", migrations: [m1, m2] });
      const edited = { ...m1, sql: `${m1.sql} -- edited` };
      await expect(migrate(db, { component: "test", migrations: [edited, m2] })).rejects.toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_MIGRATION_CHANGED" });
      await expect(migrate(db, { component: "test", migrations: [m1] })).rejects.toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_MIGRATION_CHANGED" });
      await expect(migrate(db, { component: "test", migrations: [m1, { ...m2, version: 3 }] })).rejects.toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_MIGRATION_INVALID" });
      const broken: Migration = { version: 3, name: "broken", sql: "create table w3 (a int); select * from no_such_table" };
      await expect(migrate(db, { component: "test", migrations: [m1, m2, broken] })).rejects.toThrow(/no_such_table/);
      // the failed migration left nothing behind: not its table, not its record
      expect((await db.query("select 1 from information_schema.tables where table_name = 'w3'")).rows).toEqual([]);
      expect((await db.query("select 1 from airtwin_migrations where version = 3")).rows).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  it("rolls a failed transaction back and keeps serving", async () => {
    const db = await open(kind);
    try {
      await migrate(db, { component: "test", migrations: [m1] });
      await expect(
        db.transaction(async (tx) => {
          await tx.query("insert into widgets (id, label) values (1, 'a')");
          await tx.query("insert into widgets (id, label) values (1, 'again')");
        }),
      ).rejects.toThrow();
      expect((await db.query("select count(*)::int as n from widgets")).rows).toEqual([{ n: 0 }]);
      const n = await db.transaction(async (tx) => (await tx.query("insert into widgets (id, label) values (2, 'b')")).rowCount);
      expect(n).toBe(1);
    } finally {
      await db.drop();
    }
  });
});

describe.runIf(url)("migrations under concurrency (postgres)", () => {
  it("two processes' archives migrating one schema at once apply each version once", async () => {
    const schema = `t_${randomBytes(4).toString("hex")}`;
    const dbs = await Promise.all([0, 1, 2, 3].map(() => openDatabase({ databaseUrl: url, schema })));
    try {
      const slow: Migration = { version: 1, name: "slow", sql: "select pg_sleep(0.3); create table slow (a int)" };
      const results = await Promise.all(dbs.map((db) => migrate(db, { component: "race", migrations: [slow, { ...m1, version: 2 }] })));
      expect(results.map((r) => r.applied.length).sort()).toEqual([0, 0, 0, 2]);
      const { rows } = await dbs[0]!.query<{ n: number }>("select count(*)::int as n from airtwin_migrations where component = 'race'");
      expect(rows[0]!.n).toBe(2);
    } finally {
      await dbs[0]!.query(`drop schema ${schema} cascade`);
      await Promise.all(dbs.map((db) => db.close()));
    }
  });
});

describe("embedded database lock", () => {
  it("refuses a second opener while the first lives, and frees the lock on close", async () => {
    const dataDir = tempDir();
    const first = await openDatabase({ dataDir });
    await first.exec("create table kept (a int); insert into kept values (7)");
    await expect(openDatabase({ dataDir })).rejects.toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_DB_LOCKED" });
    // another process too (its pid is alive)
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
    try {
      await first.close();
      expect(existsSync(join(dataDir, "pglite", "archive.lock"))).toBe(false);
      const { writeFileSync } = await import("node:fs");
      writeFileSync(join(dataDir, "pglite", "archive.lock"), String(child.pid));
      await expect(openDatabase({ dataDir })).rejects.toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_DB_LOCKED", details: { pid: child.pid } });
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((r) => child.once("exit", r));
    // the holder is gone: its stale lock is taken over, and the data is still there
    const again = await openDatabase({ dataDir });
    try {
      expect((await again.query("select a from kept")).rows).toEqual([{ a: 7 }]);
    } finally {
      await again.close();
    }
  });
});
