// The embedded backend of the archive database: PGlite (Postgres compiled to WebAssembly) in
// `<dataDir>/pglite/<name>`. PGlite is single-process, so a lock file next to the directory (holding
// the pid) makes a second process refuse to open it instead of corrupting it.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PGlite, Transaction } from "@electric-sql/pglite";
import { GatewayError } from "../../errors.ts";
import { SQL_IDENTIFIER, type Database, type DatabaseOptions, type Queryable } from "./database.ts";

export async function openPglite(o: DatabaseOptions): Promise<Database> {
  const name = o.name ?? "archive";
  if (!SQL_IDENTIFIER.test(name)) throw new GatewayError("ARCHIVE_DB_OPTIONS", `embedded database name "${name}" must be a lowercase identifier`);
  const { PGlite } = await import("@electric-sql/pglite");
  let dir: string | undefined;
  let unlock = (): void => undefined;
  if (o.inMemory !== true) {
    const root = resolve(o.dataDir ?? ".airtwin", "pglite");
    mkdirSync(root, { recursive: true });
    dir = join(root, name);
    unlock = takeLock(`${dir}.lock`);
  }
  let db: PGlite;
  try {
    db = dir === undefined ? new PGlite() : new PGlite(dir);
    await db.waitReady;
  } catch (err) {
    unlock();
    throw err;
  }
  const asQueryable = (q: PGlite | Transaction): Queryable => ({
    async query<R>(sql: string, params?: readonly unknown[]) {
      const r = await q.query<R>(sql, params as unknown[] | undefined);
      return { rows: r.rows, rowCount: r.affectedRows ?? 0 };
    },
    async exec(sql: string) {
      await q.exec(sql);
    },
    async copyFrom(table: string, columns: readonly string[], text: Iterable<string>) {
      // PGlite's COPY reads a file, and '/dev/blob' is the blob passed with the query
      const r = await q.query(`copy ${table} (${columns.join(", ")}) from '/dev/blob'`, [], { blob: new Blob([...text]) });
      return r.affectedRows ?? 0;
    },
  });
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      try {
        if (!db.closed) await db.close();
      } finally {
        unlock();
      }
    })());
  return {
    kind: "pglite",
    location: dir ?? "memory",
    ...asQueryable(db),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => db.transaction((tx) => fn(asQueryable(tx))),
    // one process has the embedded database (its lock file): every lock is this process's
    tryLock: () => {
      let released = false;
      return Promise.resolve({
        lost: new Promise<void>(() => undefined),
        get gone() {
          return released;
        },
        release: () => {
          released = true;
          return Promise.resolve();
        },
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Creates the lock file exclusively (taking over one whose process is gone); returns its release. */
function takeLock(file: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(file, "utf8").trim());
      } catch {
        // vanished in between: try again
      }
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new GatewayError("ARCHIVE_DB_LOCKED", `the embedded database ${file.slice(0, -5)} is open in process ${holder}; stop it, set DATABASE_URL to share a Postgres, or use another AIRTWIN_DATA_DIR`, {
          details: { lockFile: file, pid: holder },
        });
      }
      rmSync(file, { force: true }); // stale: its process is gone
    }
  }
  throw new GatewayError("ARCHIVE_DB_LOCKED", `could not take the lock ${file}`, { details: { lockFile: file } });
}
