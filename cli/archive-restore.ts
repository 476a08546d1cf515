// `airtwin archive restore (--all | --device ID)`: rebuilds the registry and the twins from the archive
// (gateways/archive/restore.ts), with a progress bar on stderr. Stop the nodes first: a shard a live
// node owns is refused (AIRTWIN_ERR_ARCHIVE_RESTORE_BUSY). Interrupted, it resumes where it stopped.
import cliProgress from "cli-progress";
import { loadArchiveConfig } from "../gateways/archive/config.ts";
import { restoreFromArchive, type RestoreTarget } from "../gateways/archive/restore.ts";
import { GatewayError } from "../gateways/errors.ts";
import { closeNats, connectNats } from "../runtime/mod.ts";
import { deviceTwinBehavior } from "../actors/device-twin/behavior.ts";
import type { EntityBehavior } from "../runtime/mod.ts";
import { openArchiveDatabase } from "./archive.ts";
import { offlineAfterMs } from "./node.ts";

export function parseRestoreArgs(args: readonly string[]): RestoreTarget {
  let target: RestoreTarget | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--all" && target === undefined) target = { all: true };
    else if ((a === "--device" || a.startsWith("--device=")) && target === undefined) {
      const id = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      if (id === undefined || id === "") throw new GatewayError("ARCHIVE_RESTORE_INVALID", "--device needs a device id");
      target = { deviceId: id };
    } else throw new GatewayError("ARCHIVE_RESTORE_INVALID", `unexpected argument ${a}: use --all or --device ID (one of them)`);
  }
  if (target === undefined) throw new GatewayError("ARCHIVE_RESTORE_INVALID", "say what to restore: --all, or --device ID");
  return target;
}

export async function runRestore(args: string[]): Promise<void> {
  const target = parseRestoreArgs(args);
  const config = loadArchiveConfig();
  const rt = config.runtime;
  const db = await openArchiveDatabase(config);
  try {
    const nc = await connectNats({ servers: rt.natsServers, name: "airtwin archive restore" });
    const bar = new cliProgress.SingleBar(
      { format: "restore |{bar}| {value}/{total} twins | {eta_formatted} left", stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    try {
      const result = await restoreFromArchive({
        nc,
        db,
        prefix: rt.prefix,
        shards: rt.shards,
        streams: rt.streams,
        replicas: rt.replicas,
        target,
        // the archived inputs after the snapshots are applied as the nodes apply them
        behavior: deviceTwinBehavior({ offlineAfterMs: offlineAfterMs() }) as EntityBehavior,
        onStart: (total, resumed) => {
          if (resumed) process.stderr.write("airtwin archive restore: resuming an interrupted run\n");
          bar.start(total, 0);
        },
        onRecord: () => bar.increment(),
      });
      bar.stop();
      process.stdout.write(`${JSON.stringify({ msg: "restored", ...result })}\n`);
    } finally {
      bar.stop();
      await closeNats(nc);
    }
  } finally {
    await db.close();
  }
}
