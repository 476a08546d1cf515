// The archive's database: one small interface over two backends that run the same SQL — Postgres via
// `pg` (DATABASE_URL) and PGlite embedded under the data directory (DATABASE_URL unset). Code above this
// file never asks which one it has; the SQL it sends sticks to what Postgres 15 and PGlite both run.
//
//   await using db = await openDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: ".airtwin" });
//   await migrate(db, { component: "archive", migrations });
//   await db.transaction(async (tx) => { await tx.query("insert …", [a, b]); });

/** A result: rows as plain objects. int8 comes back as a number (exact up to 2^53), bytea as bytes. */
export interface QueryResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted by the statement (0 for others). */
  rowCount: number;
}

/** What can run statements: the database itself, or one transaction of it. */
export interface Queryable {
  /** One statement with `$1…` parameters. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** One or more statements without parameters (DDL, migrations). */
  exec(sql: string): Promise<void>;
  /**
   * `COPY <table> (<columns>) FROM …` of `text` in COPY's text format (chunks of whole rows) — the
   * fastest way in when no row can conflict. Postgres streams the chunks as they are made (an iterator
   * that builds them lazily overlaps with the server's work); PGlite takes them as one blob. Resolves
   * with the rows copied.
   */
  copyFrom(table: string, columns: readonly string[], text: Iterable<string>): Promise<number>;
}

/** A lock this process holds until it releases it or its session ends ({@link Database.tryLock}). */
export interface HeldLock {
  /** Settles when the lock is lost: its session ended (the connection dropped). Never, embedded. */
  readonly lost: Promise<void>;
  /** True once {@link lost} has settled or the lock was released. */
  readonly gone: boolean;
  /** Gives the lock up (ends its session). Idempotent. */
  release(): Promise<void>;
}

export interface Database extends Queryable, AsyncDisposable {
  /** "postgres" (DATABASE_URL) or "pglite" (embedded). */
  readonly kind: "postgres" | "pglite";
  /** Where it is, for logs: the URL without password, or the embedded directory. */
  readonly location: string;
  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it
   * throws (the error is rethrown). Do not use the database itself inside `fn`, only `tx`.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Takes the named lock for this process unless another process holds it (undefined then). Postgres:
   * an advisory lock (of the schema in use) on a session of its own, so it goes the moment the process
   * dies or its connection drops; embedded: the database is this process's alone, so always granted.
   */
  tryLock(name: string): Promise<HeldLock | undefined>;
  /** Ends the pool or closes the embedded database (and frees its lock). Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openDatabase}. */
export interface DatabaseOptions {
  /** Postgres URL (postgres:// or postgresql://). Unset or empty: embedded PGlite under `dataDir`. */
  databaseUrl?: string | undefined;
  /** Data directory of the embedded database (`<dataDir>/pglite/<name>`). Default ".airtwin". */
  dataDir?: string;
  /**
   * Name of the embedded database. PGlite is single-process, so each process that needs one (the
   * archive, the integrations' outbox) has its own directory; with Postgres they share DATABASE_URL.
   * Default "archive".
   */
  name?: string;
  /** Postgres only: the schema every session uses (created if missing). Default: the server's search_path. */
  schema?: string;
  /** Embedded only: keep the database in memory (tests), no directory and no lock. Default false. */
  inMemory?: boolean;
  /** Postgres only: most pooled connections. Default 4. */
  poolSize?: number;
  /** Postgres only: a connection attempt gives up after this long (ms). Default 5000. */
  connectTimeoutMs?: number;
  /** Postgres only: a statement is cancelled after this long (ms); 0 = never. Default 60 000. */
  statementTimeoutMs?: number;
}

/** Opens the database the options name (see {@link DatabaseOptions}). */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const url = options.databaseUrl?.trim();
  if (url) return (await import("./postgres.ts")).openPostgres(url, options);
  return (await import("./pglite.ts")).openPglite(options);
}

/** A schema or table name we interpolate into SQL: plain lowercase identifiers only. */
export const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
