// Test harness: a database for one test file. With DATABASE_URL set it is real Postgres (a fresh schema,
// dropped on close); without it, embedded PGlite in memory. Both behind one small interface.
//
//   await using db = await openTestDatabase();
//   await db.query("insert into t values ($1)", [1]);

import { randomBytes } from "node:crypto";
import pg from "pg";
import type { PGlite } from "@electric-sql/pglite";

/** The query surface shared by both backends. */
export interface TestDatabase extends AsyncDisposable {
  /** "postgres" (DATABASE_URL) or "pglite" (embedded, in memory). */
  readonly kind: "postgres" | "pglite";
  /** The schema this database's tables live in ("public" for PGlite, a unique temp schema for Postgres). */
  readonly schema: string;
  /** Postgres only: a connection string whose sessions use this schema, for code under test. */
  readonly connectionString: string | undefined;
  /** PGlite only: the instance, for code under test that accepts one. */
  readonly pglite: PGlite | undefined;
  /**
   * One statement with `$1…` parameters. int8/bigint columns come back as numbers on both backends
   * (precise up to 2^53); numeric as strings; timestamptz as Date; json/jsonb parsed.
   */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: R[] }>;
  /** One or more statements without parameters (DDL scripts, migrations). */
  exec(sql: string): Promise<void>;
  /** Postgres: drops the schema and ends the pool. PGlite: closes it. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openTestDatabase}. */
export interface TestDatabaseOptions {
  /** Postgres URL; default process.env.DATABASE_URL. Empty or unset: PGlite. */
  url?: string | undefined;
}

const INT8_OID = 20;

/** Opens a database for a test file; see the file header. */
export async function openTestDatabase(opts: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const url = "url" in opts ? opts.url : process.env.DATABASE_URL;
  return url ? openPostgres(url) : openPglite();
}

async function openPostgres(url: string): Promise<TestDatabase> {
  const schema = `airtwin_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`create schema "${schema}"`);
  } finally {
    await admin.end();
  }
  const options = `-c search_path="${schema}"`;
  const types = {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === INT8_OID && format !== "binary"
        ? (v: string) => Number(v)
        : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, options, types, max: 4 });
  const connectionString = withOptions(url, options);
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      try {
        await pool.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await pool.end();
      }
    })());
  return {
    kind: "postgres",
    schema,
    connectionString,
    pglite: undefined,
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await pool.query(sql, params as unknown[] | undefined);
      return { rows: r.rows as R[] };
    },
    async exec(sql: string) {
      await pool.query(sql);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function withOptions(url: string, options: string): string {
  const u = new URL(url);
  u.searchParams.set("options", options);
  return u.toString();
}

async function openPglite(): Promise<TestDatabase> {
  // loaded lazily: the WASM build takes seconds to initialise and is not needed with DATABASE_URL
  const { PGlite } = await import("@electric-sql/pglite");
  const db = new PGlite();
  await db.waitReady;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= db.closed ? Promise.resolve() : db.close());
  return {
    kind: "pglite",
    schema: "public",
    connectionString: undefined,
    pglite: db,
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await db.query<R>(sql, params as unknown[] | undefined);
      return { rows: r.rows };
    },
    async exec(sql: string) {
      await db.exec(sql);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
