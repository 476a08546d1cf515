// Versioned schema migrations, per component (the archive, the push outbox, …): each applied once, in
// order, recorded in `airtwin_migrations` with a checksum. Safe when several processes start at once: all
// of it runs in one transaction holding an advisory lock, so a second process waits, then finds the
// versions recorded and applies nothing. A recorded migration whose text changed is refused — a schema
// must never silently differ from what its migrations say.
import { createHash } from "node:crypto";
import { GatewayError } from "../../errors.ts";
import type { Database } from "./database.ts";

/** One step of a component's schema. */
export interface Migration {
  /** 1, 2, 3, … in order; never reuse or edit a version once released — add the next one. */
  version: number;
  /** Short description, recorded with it. */
  name: string;
  /** One or more statements (no parameters). */
  sql: string;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Who owns these migrations: a lowercase token such as "archive" or "push". Versions are per component. */
  component: string;
  migrations: readonly Migration[];
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** Versions applied now (empty when the schema was up to date). */
  applied: number[];
  /** The component's version after it (0 with no migrations). */
  version: number;
}

const COMPONENT = /^[a-z][a-z0-9_-]{0,31}$/;

function checksum(sql: string): string {
  return createHash("sha256").update(sql).digest("hex").slice(0, 16);
}

/** Applies the component's migrations that are not recorded yet (see the file header). */
export async function migrate(db: Database, o: MigrateOptions): Promise<MigrateResult> {
  if (!COMPONENT.test(o.component)) throw new GatewayError("ARCHIVE_MIGRATION_INVALID", `component "${o.component}" must be 1-32 of [a-z0-9_-]`);
  const sorted = [...o.migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new GatewayError("ARCHIVE_MIGRATION_INVALID", `${o.component}: migrations must be numbered 1, 2, 3, … without gaps (found ${m.version} at position ${i + 1})`);
    }
  });
  return db.transaction(async (tx) => {
    // one lock per schema: concurrent starts serialize here (the table's creation included)
    await tx.query("select pg_advisory_xact_lock(hashtext(current_schema() || '.airtwin_migrations'))");
    await tx.exec(`create table if not exists airtwin_migrations (
      component text not null,
      version int not null,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now(),
      primary key (component, version)
    )`);
    const { rows } = await tx.query<{ version: number; checksum: string; name: string }>(
      "select version, checksum, name from airtwin_migrations where component = $1 order by version",
      [o.component],
    );
    const recorded = new Map(rows.map((r) => [r.version, r]));
    const newest = rows.at(-1)?.version ?? 0;
    if (newest > sorted.length) {
      throw new GatewayError("ARCHIVE_MIGRATION_CHANGED", `${o.component}: the database is at version ${newest}, newer than this program knows (${sorted.length}); upgrade the program`, {
        details: { component: o.component, version: newest },
      });
    }
    const applied: number[] = [];
    for (const m of sorted) {
      const sum = checksum(m.sql);
      const done = recorded.get(m.version);
      if (done !== undefined) {
        if (done.checksum !== sum) {
          throw new GatewayError(
            "ARCHIVE_MIGRATION_CHANGED",
            `${o.component} migration ${m.version} ("${done.name}") was applied with other text than it has now; add a new migration instead of editing one`,
            { details: { component: o.component, version: m.version } },
          );
        }
        continue;
      }
      await tx.exec(m.sql);
      await tx.query("insert into airtwin_migrations (component, version, name, checksum) values ($1, $2, $3, $4)", [o.component, m.version, m.name, sum]);
      applied.push(m.version);
    }
    return { applied, version: sorted.length };
  });
}
