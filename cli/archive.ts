// `airtwin archive`: runs the archive (consumers into Postgres or embedded PGlite, the history query
// service); `airtwin archive restore (--all | --device ID)` rebuilds the registry and twins from it;
// `airtwin archive export --from … --to … [--device ID] [--format csv|jsonl]` streams readings to stdout.
import { loadArchiveConfig, type ArchiveConfig } from "../gateways/archive/config.ts";
import { openDatabase, type Database } from "../gateways/archive/db/mod.ts";
import { closeNats, connectNats } from "../runtime/mod.ts";

const usage = `usage: airtwin archive [restore (--all | --device ID) | export --from T --to T [--device ID] [--format csv|jsonl]]

Without a subcommand, runs the archive: durable consumers of the input, output, snapshot and registry
streams written into Postgres (DATABASE_URL) or embedded PGlite under $AIRTWIN_DATA_DIR/pglite/archive.
  restore   rebuild the registry and the twins from the archive after JetStream lost them; stop the
            nodes first; resumable, with a progress bar
  export    archived readings as CSV (default) or JSON lines on stdout; T is epoch ms or ISO 8601
`;

const log = (level: string, msg: string, fields?: Record<string, unknown>) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);

export function openArchiveDatabase(config: ArchiveConfig): Promise<Database> {
  return openDatabase({ databaseUrl: config.runtime.databaseUrl, dataDir: config.runtime.dataDir, name: "archive", ...(config.schema === undefined ? {} : { schema: config.schema }) });
}

export async function runArchive(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "help") {
    process.stdout.write(usage);
    return;
  }
  if (sub === "restore") return (await import("./archive-restore.ts")).runRestore(rest);
  if (sub === "export") return (await import("./archive-export.ts")).runExport(rest);
  if (sub !== undefined) {
    process.stderr.write(`airtwin archive: unknown subcommand "${sub}"\n\n${usage}`);
    process.exitCode = 2;
    return;
  }
  const config = loadArchiveConfig();
  const rt = config.runtime;
  const db = await openArchiveDatabase(config);
  const nc = await connectNats({ servers: rt.natsServers, name: "airtwin archive" }).catch(async (err: unknown) => {
    await db.close();
    throw err;
  });
  const { startArchive } = await import("../gateways/archive/archive.ts");
  const archive = await startArchive({
    nc,
    db,
    prefix: rt.prefix,
    shards: rt.shards,
    streams: rt.streams,
    replicas: rt.replicas,
    retentionMs: config.retentionDays * 86_400_000,
    batchMessages: config.batchMessages,
    flushDelayMs: config.flushDelayMs,
    ...(rt.metricsPort === undefined ? {} : { metricsPort: rt.metricsPort, metricsHost: rt.metricsHost }),
    log,
  }).catch(async (err: unknown) => {
    await closeNats(nc);
    await db.close();
    throw err;
  });
  process.stdout.write(`${JSON.stringify({ msg: "archive ready", database: db.kind, location: db.location, metrics: archive.metricsUrl })}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "archive stopping", { signal });
    archive
      .close()
      .then(() => closeNats(nc))
      .then(() => db.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log("error", "shutdown failed", { error: String(err) });
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
