// Public entry of the archive's database layer, for the archive and for other components that keep
// tables in the same database (the integrations' push outbox registers its own migrations by component).
export { openDatabase, SQL_IDENTIFIER } from "./database.ts";
export type { Database, DatabaseOptions, HeldLock, Queryable, QueryResult } from "./database.ts";
export { migrate } from "./migrate.ts";
export type { Migration, MigrateOptions, MigrateResult } from "./migrate.ts";
