// Processes a test spawns (`airtwin dev`, deploy/local-cluster.ts) run an archive and a push outbox of
// their own. With DATABASE_URL set they would all write into the database's default schema, and test
// files running at once would read and disturb each other's tables (a local cluster's archive waited
// 120 s for its readings in CI while dev runs wrote beside it). Each data directory gets its own schema,
// the same on every start (restart tests keep their state); the global teardown drops this run's.
import { createHash } from "node:crypto";
import pg from "pg";

const PREFIX = "airtwin_proc_";
/** Set by the global setup for the whole run (workers inherit it): a run drops only its own schemas. */
export const RUN_ID_VARIABLE = "AIRTWIN_TEST_RUN_ID";

const runPrefix = (): string => `${PREFIX}${process.env[RUN_ID_VARIABLE] ?? "norun"}_`;

/** `AIRTWIN_ARCHIVE_SCHEMA` for processes using `dataDir`; nothing when the run has no Postgres. */
export function processSchemaEnv(dataDir: string): Record<string, string> {
  if (!process.env.DATABASE_URL) return {};
  return { AIRTWIN_ARCHIVE_SCHEMA: `${runPrefix()}${createHash("sha256").update(dataDir).digest("hex").slice(0, 16)}` };
}

/** Drops the schemas {@link processSchemaEnv} named in this run (vitest global teardown); other runs' stay. */
export async function dropProcessSchemas(url = process.env.DATABASE_URL): Promise<void> {
  if (!url || process.env[RUN_ID_VARIABLE] === undefined) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>("select nspname as name from pg_namespace where nspname like $1", [`${runPrefix()}%`]);
    for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
  } finally {
    await client.end();
  }
}
