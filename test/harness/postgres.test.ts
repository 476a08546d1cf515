// openTestDatabase gives the same query surface on embedded PGlite and on real Postgres (DATABASE_URL),
// isolates each opener in its own schema on Postgres, and drops that schema on close.

import { describe, expect, it } from "vitest";
import pg from "pg";
import { openTestDatabase, type TestDatabase } from "./postgres.ts";

async function exercise(db: TestDatabase): Promise<void> {
  await db.exec("create table readings (device text not null, t int8 not null, pm real); create index on readings (device)");
  await db.query("insert into readings (device, t, pm) values ($1, $2, $3), ($1, $4, $5)", ["d1", 1_700_000_000_000, 12.5, 1_700_000_300_000, 14]);
  const { rows } = await db.query<{ device: string; t: number; pm: number }>(
    "select device, t, pm from readings where device = $1 order by t",
    ["d1"],
  );
  expect(rows).toEqual([
    { device: "d1", t: 1_700_000_000_000, pm: 12.5 },
    { device: "d1", t: 1_700_000_300_000, pm: 14 },
  ]);
}

describe("openTestDatabase without DATABASE_URL", () => {
  // PGlite compiles its WASM Postgres on first use: seconds, more on a busy machine
  it("uses embedded PGlite with the common interface", { timeout: 120_000 }, async () => {
    const db = await openTestDatabase({ url: undefined });
    expect(db.kind).toBe("pglite");
    expect(db.pglite).toBeDefined();
    await exercise(db);
    await db.close();
    await db.close(); // idempotent
    expect(db.pglite?.closed).toBe(true);
  });
});

const url = process.env.DATABASE_URL;

describe.runIf(url)("openTestDatabase with DATABASE_URL", () => {
  it("uses Postgres in a fresh schema and drops it on close", async () => {
    let schema: string;
    {
      await using db = await openTestDatabase();
      expect(db.kind).toBe("postgres");
      schema = db.schema;
      expect(schema).toMatch(/^airtwin_test_\d+_[0-9a-f]{8}$/);
      await exercise(db);
      // code under test connecting with the given string sees the same tables
      const client = new pg.Client({ connectionString: db.connectionString });
      await client.connect();
      const r = await client.query("select count(*)::int as n from readings");
      await client.end();
      expect(r.rows[0].n).toBe(2);
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const left = await client.query("select 1 from information_schema.schemata where schema_name = $1", [schema]);
    await client.end();
    expect(left.rowCount).toBe(0);
  });

  it("isolates two databases opened at the same time", async () => {
    await using a = await openTestDatabase();
    await using b = await openTestDatabase();
    expect(a.schema).not.toBe(b.schema);
    await a.exec("create table only_in_a (x int)");
    await expect(b.query("select * from only_in_a")).rejects.toThrow(/does not exist/);
  });
});
