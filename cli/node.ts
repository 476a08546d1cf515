// `airtwin node`: a worker node serving shards of device twins. SIGTERM/SIGINT hand every shard off
// to the other nodes before the process exits.
import { deviceTwinBehavior } from "../actors/device-twin/behavior.ts";
import { closeNats, connectNats, loadConfig } from "../runtime/mod.ts";
import { startNode } from "../runtime/node.ts";

export async function runNode(): Promise<void> {
  const config = loadConfig();
  const nc = await connectNats({ servers: config.natsServers, name: `airtwin node ${config.nodeId}` });
  const node = await startNode({
    nc,
    nodeId: config.nodeId,
    prefix: config.prefix,
    shards: config.shards,
    streams: config.streams,
    replicas: config.replicas,
    behaviors: [deviceTwinBehavior()],
    runner: { commitIntervalMs: config.commitIntervalMs, fetchBatch: config.fetchBatch, idlePassivateMs: config.idlePassivateMs || Number.MAX_SAFE_INTEGER },
    ownership: { heartbeatMs: config.heartbeatMs, leaseTtlMs: config.leaseTtlMs, nodeTtlMs: config.leaseTtlMs },
    memoryBudgetBytes: config.memoryBudgetMb * 1024 * 1024,
    ...(config.metricsPort === undefined ? {} : { metricsPort: config.metricsPort }),
  });
  process.stdout.write(`${JSON.stringify({ msg: "node ready", nodeId: node.nodeId, metrics: node.metricsUrl })}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${JSON.stringify({ level: "info", msg: "handing shards off", signal })}\n`);
    node
      .close()
      .then(() => closeNats(nc))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`${JSON.stringify({ level: "error", msg: "shutdown failed", error: String(err) })}\n`);
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
