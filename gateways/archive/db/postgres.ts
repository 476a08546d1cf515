// The Postgres backend of the archive database: a `pg` pool; int8 parsed as numbers (epoch
// milliseconds and sequences stay far below 2^53); an optional schema set as every session's search_path.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyStream } from "pg-copy-streams";
import { GatewayError } from "../../errors.ts";
import { SQL_IDENTIFIER, type Database, type DatabaseOptions, type HeldLock, type Queryable, type QueryResult } from "./database.ts";

const INT8_OID = 20;

const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export async function openPostgres(url: string, o: DatabaseOptions): Promise<Database> {
  if (o.schema !== undefined && !SQL_IDENTIFIER.test(o.schema)) {
    throw new GatewayError("ARCHIVE_DB_OPTIONS", `schema "${o.schema}" must be a lowercase SQL identifier`);
  }
  const statementTimeoutMs = o.statementTimeoutMs ?? 60_000;
  const settings = [`-c statement_timeout=${statementTimeoutMs}`, ...(o.schema === undefined ? [] : [`-c search_path=${o.schema}`])];
  const connection = { connectionString: url, options: settings.join(" "), types, connectionTimeoutMillis: o.connectTimeoutMs ?? 5000 };
  const pool = new pg.Pool({
    ...connection,
    max: o.poolSize ?? 4,
    // a connection the server dropped is replaced on the next query, not reported as an idle error
    idleTimeoutMillis: 30_000,
  });
  // an idle client's socket error (server restarted, connection terminated) must not crash the process
  pool.on("error", () => undefined);
  if (o.schema !== undefined) {
    // two processes creating the schema at once collide even with "if not exists": serialize them
    const client = await pool.connect().catch(async (err: unknown) => {
      await pool.end();
      throw err;
    });
    client.on("error", () => undefined); // as in transaction(): a drop surfaces as the query's own error
    try {
      await client.query("begin");
      await client.query("select pg_advisory_xact_lock(hashtext($1))", [`airtwin.schema.${o.schema}`]);
      await client.query(`create schema if not exists ${o.schema}`);
      await client.query("commit");
    } finally {
      client.release();
    }
  }
  const run = async <R>(client: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
    const r = await client.query(sql, params as unknown[] | undefined);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  };
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= pool.end());
  return {
    kind: "postgres",
    location: url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@"),
    query: (sql, params) => run(pool, sql, params),
    async exec(sql) {
      await pool.query(sql);
    },
    async copyFrom(table, columns, text) {
      const client = await pool.connect();
      let broken = false;
      try {
        return await copyInto(client, table, columns, text);
      } catch (err) {
        broken = true; // the connection may be left in COPY mode: do not hand it out again
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken = false;
      // a checked-out client whose connection drops between two queries emits "error"; the pool only
      // listens on idle ones, so without this the process dies of an unhandled error event
      const onError = (): void => {
        broken = true;
      };
      client.on("error", onError);
      try {
        await client.query("begin");
        const tx: Queryable = {
          query: (sql, params) => run(client, sql, params),
          async exec(sql) {
            await client.query(sql);
          },
          copyFrom: (table, columns, text) => copyInto(client, table, columns, text),
        };
        const result = await fn(tx);
        await client.query("commit");
        return result;
      } catch (err) {
        await client.query("rollback").catch(() => {
          broken = true; // the connection is gone: do not hand it out again
        });
        throw err;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    tryLock: (name) => tryAdvisoryLock(connection, name),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A session-level advisory lock of the schema in use, on a connection of its own: Postgres frees it
 * when that session ends — the process died (its socket closed) or the connection dropped — so another
 * process can take it at once. TCP keepalive finds a peer that vanished without closing.
 */
async function tryAdvisoryLock(connection: pg.ClientConfig, name: string): Promise<HeldLock | undefined> {
  const client = new pg.Client({ ...connection, keepAlive: true });
  let gone = false;
  let settle = (): void => undefined;
  const lost = new Promise<void>((resolve) => {
    settle = () => {
      gone = true;
      resolve();
    };
  });
  client.on("error", () => settle());
  client.on("end", () => settle());
  await client.connect();
  try {
    const r = await client.query<{ ok: boolean }>("select pg_try_advisory_lock(hashtext(current_schema() || '.' || $1)) as ok", [name]);
    if (r.rows[0]?.ok !== true) {
      await client.end();
      return undefined;
    }
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  let ended: Promise<void> | undefined;
  return {
    lost,
    get gone() {
      return gone;
    },
    release: () => (ended ??= client.end().catch(() => undefined).then(settle)),
  };
}

/** `COPY … FROM STDIN` of the chunks, streamed as the iterator makes them. */
async function copyInto(client: pg.PoolClient, table: string, columns: readonly string[], text: Iterable<string>): Promise<number> {
  const copy = client.query(copyStream(`copy ${table} (${columns.join(", ")}) from stdin`));
  await pipeline(Readable.from(text), copy);
  return Number(copy.rowCount ?? 0);
}
