// `airtwin node`: a worker node serving shards of device twins. SIGTERM/SIGINT hand every shard off
// to the other nodes before the process exits.
import { deviceTwinBehavior } from "../actors/device-twin/behavior.ts";
import { DEFAULT_OFFLINE_AFTER_MS } from "../actors/device-twin/domain/mod.ts";
import { closeNats, connectNats, loadConfig, RuntimeError } from "../runtime/mod.ts";
import { startNode } from "../runtime/node.ts";

/**
 * Wall-clock silence after which a twin reports its device offline (ms), 1 000..604 800 000.
 * `AIRTWIN_OFFLINE_AFTER_MS`. Default 900 000 (15 min, docs/design.md §4). Tests use a few seconds.
 */
export function offlineAfterMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.AIRTWIN_OFFLINE_AFTER_MS?.trim();
  if (raw === undefined || raw === "") return DEFAULT_OFFLINE_AFTER_MS;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1000 || n > 7 * 86_400_000) {
    throw new RuntimeError("CONFIG_INVALID", `invalid configuration: AIRTWIN_OFFLINE_AFTER_MS=${raw}: must be an integer from 1000 to 604800000`, {
      details: { problems: [{ variable: "AIRTWIN_OFFLINE_AFTER_MS", value: raw, reason: "must be an integer from 1000 to 604800000" }], variables: ["AIRTWIN_OFFLINE_AFTER_MS"] },
    });
  }
  return n;
}

export async function runNode(): Promise<void> {
  const config = loadConfig();
  const offline = offlineAfterMs();
  const nc = await connectNats({ servers: config.natsServers, name: `airtwin node ${config.nodeId}` });
  // leases and heartbeats on a connection of their own: never queued behind the shards' requests
  const ownershipNc = await connectNats({ servers: config.natsServers, name: `airtwin node ${config.nodeId} ownership` });
  const node = await startNode({
    nc,
    ownershipNc,
    nodeId: config.nodeId,
    prefix: config.prefix,
    shards: config.shards,
    streams: config.streams,
    replicas: config.replicas,
    behaviors: [deviceTwinBehavior({ offlineAfterMs: offline })],
    runner: { commitIntervalMs: config.commitIntervalMs, commitMaxIntervalMs: config.commitMaxIntervalMs, snapshotIntervalMs: config.snapshotIntervalMs, snapshotPacing: config.snapshotPacing, fetchBatch: config.fetchBatch, idlePassivateMs: config.idlePassivateMs || Number.MAX_SAFE_INTEGER, compactAfterMs: config.compactAfterMs },
    ownership: { heartbeatMs: config.heartbeatMs, leaseTtlMs: config.leaseTtlMs, nodeTtlMs: config.leaseTtlMs },
    memoryBudgetBytes: config.memoryBudgetMb * 1024 * 1024,
    ...(config.metricsPort === undefined ? {} : { metricsPort: config.metricsPort, metricsHost: config.metricsHost }),
  });
  process.stdout.write(`${JSON.stringify({ msg: "node ready", nodeId: node.nodeId, metrics: node.metricsUrl })}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${JSON.stringify({ level: "info", msg: "handing shards off", signal })}\n`);
    node
      .close()
      .then(() => Promise.all([closeNats(nc), closeNats(ownershipNc)]))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`${JSON.stringify({ level: "error", msg: "shutdown failed", error: String(err) })}\n`);
          process.exit(1);
        },
      );
  };
  // an operator (or the chaos harness) asking why shards are not served: the state, in the log
  process.on("SIGUSR2", () => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "warn", msg: "ownership state", ...node.ownership.diagnose() })}\n`));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
