// Configuration of `airtwin archive`: the runtime's (NATS_URL, DATABASE_URL, AIRTWIN_PREFIX,
// AIRTWIN_SHARDS, AIRTWIN_STREAMS, AIRTWIN_DATA_DIR, AIRTWIN_METRICS_PORT, …) plus the archive's own
// variables below. Invalid values fail fast with AIRTWIN_ERR_CONFIG_INVALID naming every offending one.
import { loadConfig, RuntimeError, type AirtwinConfig, type ConfigProblem } from "../../runtime/mod.ts";
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
  /** Postgres schema of the archive's tables (created if missing). `AIRTWIN_ARCHIVE_SCHEMA`. Default: the server's search_path. */
  readonly schema: string | undefined;
}

export function loadArchiveConfig(env: NodeJS.ProcessEnv = process.env): ArchiveConfig {
  const problems: ConfigProblem[] = [];
  let runtime: AirtwinConfig | undefined;
  try {
    runtime = loadConfig(env);
  } catch (err) {
    const details = (err as RuntimeError).details as { problems?: ConfigProblem[] } | undefined;
    if (details?.problems === undefined) throw err;
    problems.push(...details.problems);
  }
  const raw = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const v = raw(name);
    if (v === undefined) return fallback;
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      problems.push({ variable: name, value: v, reason: `must be an integer from ${min} to ${max}` });
      return fallback;
    }
    return n;
  };
  const retentionDays = int("AIRTWIN_ARCHIVE_RETENTION_DAYS", 0, 0, 100_000);
  const batchMessages = int("AIRTWIN_ARCHIVE_BATCH", 256, 1, 10_000);
  const schema = raw("AIRTWIN_ARCHIVE_SCHEMA");
  if (schema !== undefined && !SQL_IDENTIFIER.test(schema)) problems.push({ variable: "AIRTWIN_ARCHIVE_SCHEMA", value: schema, reason: "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)" });
  if (problems.length > 0 || runtime === undefined) {
    const list = problems.map((p) => `${p.variable}=${p.value}: ${p.reason}`).join("; ");
    throw new RuntimeError("CONFIG_INVALID", `invalid configuration: ${list}`, { details: { problems, variables: problems.map((p) => p.variable) } });
  }
  return Object.freeze({ runtime, retentionDays, batchMessages, schema });
}
