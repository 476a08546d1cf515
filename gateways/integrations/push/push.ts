// The built-in `push` integration: one row per notification in the `push_outbox` table, for the mobile
// push sender (which reads unsent rows, sends them through APNs/FCM and sets `sent_at`). `target` is
// the app installation's push token. A row is unique per alert (or report) and subscription, so a
// repeated delivery inserts nothing. The table lives in the archive's database layer: Postgres at
// DATABASE_URL (shared with the archive), or embedded PGlite under `<dataDir>/pglite/integrations`
// (PGlite is single-process: the integrations process has its own).
import type { Database, DatabaseOptions, Migration } from "../../archive/db/mod.ts";
import { migrate, openDatabase } from "../../archive/db/mod.ts";
import { defineIntegration, type BackoffOptions, type IntegrationDefinition } from "../define.ts";
import { renderPush } from "../email/render.ts";

/** The outbox's schema, component "push" of the database's migrations. */
export const PUSH_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "push outbox",
    sql: `create table push_outbox (
      id bigserial primary key,
      delivery_id text not null unique,
      source_id text not null,
      subscription_id text not null,
      device_id text not null,
      target text not null,
      kind text not null,
      title text not null,
      body text not null,
      payload jsonb not null,
      created_at timestamptz not null default now(),
      sent_at timestamptz,
      unique (source_id, subscription_id)
    );
    create index push_outbox_unsent on push_outbox (id) where sent_at is null;`,
  },
];

/** Options of {@link pushIntegration}: the database (as the archive opens it) or an open one. */
export interface PushOptions {
  database: DatabaseOptions | Database;
  concurrency?: number;
  maxAttempts?: number;
  backoff?: BackoffOptions;
}

/** One row of the outbox as the sender reads it. */
export interface PushRow {
  id: number;
  delivery_id: string;
  source_id: string;
  subscription_id: string;
  device_id: string;
  target: string;
  kind: string;
  title: string;
  body: string;
  payload: unknown;
  created_at: Date;
  sent_at: Date | null;
}

const isDatabase = (x: PushOptions["database"]): x is Database => typeof (x as Database).query === "function";

export function pushIntegration(o: PushOptions): IntegrationDefinition & { database(): Database } {
  let db: Database | undefined;
  const owned = !isDatabase(o.database);
  const def = defineIntegration({
    provider: "push",
    concurrency: o.concurrency ?? 8,
    maxAttempts: o.maxAttempts ?? 8,
    ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
    async start(ctx) {
      db = isDatabase(o.database) ? o.database : await openDatabase({ name: "integrations", ...o.database });
      const { applied } = await migrate(db, { component: "push", migrations: PUSH_MIGRATIONS });
      if (applied.length > 0) ctx.log("info", "push outbox migrated", { applied, database: db.location });
    },
    async deliver(d) {
      const item = d.alert ?? d.report;
      if (item === undefined) return;
      const { title, body } = renderPush(d);
      await (db as Database).query(
        `insert into push_outbox (delivery_id, source_id, subscription_id, device_id, target, kind, title, body, payload)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict do nothing`,
        [d.id, item.id, d.subscription.id, d.deviceId, d.subscription.target, item.kind, title, body, JSON.stringify(item)],
      );
    },
    async close() {
      if (owned) await db?.close();
    },
  });
  return Object.assign(def, { database: () => db as Database });
}
