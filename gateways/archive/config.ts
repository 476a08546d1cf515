// Configuration of `airtwin archive`: the runtime's (NATS_URL, DATABASE_URL, AIRTWIN_PREFIX,
// AIRTWIN_SHARDS, AIRTWIN_STREAMS, AIRTWIN_DATA_DIR, AIRTWIN_METRICS_PORT, …) plus the archive's own
// variables below. Invalid values fail fast with AIRTWIN_ERR_CONFIG_INVALID naming every offending one.
import type { AirtwinConfig } from "../../runtime/mod.ts";
import { envReader } from "../config-env.ts";
import { DEFAULT_FLUSH_DELAY_MS } from "./consumer.ts";
import { SQL_IDENTIFIER } from "./db/mod.ts";

/** Validated configuration of an archive process. */
export interface ArchiveConfig {
  readonly runtime: AirtwinConfig;
  /**
   * Raw readings are kept this many days, then dropped a whole calendar month at a time (rollups,
   * outputs, snapshots and the registry are kept forever); 0 = keep raw readings forever.
   * `AIRTWIN_ARCHIVE_RETENTION_DAYS`. Default 0.
   */
  readonly retentionDays: number;
  /** Most stream messages written per transaction, 1..10 000. `AIRTWIN_ARCHIVE_BATCH`. Default 256. */
  readonly batchMessages: number;
  /**
   * Longest a received message waits for more to share its transaction, 0..5 000 ms: a batch is cut when
   * full or when its first message has waited this long. `AIRTWIN_ARCHIVE_FLUSH_MS`. Default 200.
   */
  readonly flushDelayMs: number;
  /** Postgres schema of the archive's tables (created if missing). `AIRTWIN_ARCHIVE_SCHEMA`. Default: the server's search_path. */
  readonly schema: string | undefined;
}

export function loadArchiveConfig(env: NodeJS.ProcessEnv = process.env): ArchiveConfig {
  const { problems, raw, int, done } = envReader(env);
  const retentionDays = int("AIRTWIN_ARCHIVE_RETENTION_DAYS", 0, 0, 100_000);
  const batchMessages = int("AIRTWIN_ARCHIVE_BATCH", 256, 1, 10_000);
  const flushDelayMs = int("AIRTWIN_ARCHIVE_FLUSH_MS", DEFAULT_FLUSH_DELAY_MS, 0, 5000);
  const schema = raw("AIRTWIN_ARCHIVE_SCHEMA");
  if (schema !== undefined && !SQL_IDENTIFIER.test(schema)) problems.push({ variable: "AIRTWIN_ARCHIVE_SCHEMA", value: schema, reason: "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)" });
  const runtime = done();
  return Object.freeze({ runtime, retentionDays, batchMessages, flushDelayMs, schema });
}
