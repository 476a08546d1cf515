// `airtwin ops …`: cluster operations, the registry and twin reads from the shell, straight over NATS
// (NATS_URL, AIRTWIN_PREFIX, AIRTWIN_SHARDS); the same operations as the gateway's admin routes.
// Answers are JSON on stdout (`cluster` a summary unless --json); stderr names the server first.
// A failure exits 1 with its AIRTWIN_ERR_* code. ops never creates the cluster's buckets or streams:
// on a server where no airtwin node ran it answers AIRTWIN_ERR_OPS_NO_CLUSTER (cli/ops-target.ts).
import { StreamAlertSource } from "../gateways/api/alerts.ts";
import { NatsLiveFeed } from "../gateways/api/live.ts";
import { TwinApi } from "../gateways/api/twin-api.ts";
import { GatewayMetrics } from "../gateways/metrics.ts";
import { DEVICE_IMPORT_MAX, importProblems, parseImportLines } from "../gateways/registry/device-import.ts";
import { Registry } from "../gateways/registry/registry.ts";
import { closeNats, connectNats, ensureClusterForClients, loadConfig, names as namesOf, OpsClient, RuntimeClient, RuntimeError, type AirtwinConfig } from "../runtime/mod.ts";
import { TWIN_TYPE } from "../actors/device-twin/behavior.ts";
import { validateDeviceId } from "../actors/device-twin/domain/mod.ts";
import { GatewayError, ProblemError } from "../gateways/errors.ts";
import { formatClusterSummary } from "./ops-format.ts";
import { describeTarget, requireCluster, resolveOpsTarget } from "./ops-target.ts";
import type { NatsConnection } from "@nats-io/nats-core";
import { readFile } from "node:fs/promises";

export const opsUsage = `usage: airtwin ops <command>

cluster [--json]                         coordinator, nodes with their shards and lag, unowned shards
                                         (--json: per shard assignment, owner, epoch, lag)
move <shard> <node>                      move a shard to a node and pin it there
drain <node>                             move every shard off a node
rebalance [--dry-run] [--unpin]          plan a round now (--dry-run: only show the plan)
twin get <deviceId> [--snapshot]         the twin, live from its owner (or its last committed snapshot)
user create <userId>                     register a user; prints the API key (shown once)
user delete <userId>
device create <deviceId> --owner <user>  register a device; prints its token (shown once)
device delete <deviceId>
device disable|enable <deviceId>
device list [--owner <userId>]
device import <file|-> [--owner <user>]  register many devices: one a line, deviceId or deviceId,ownerId
                                         (CSV) or {"deviceId","ownerId"} (JSON lines); the whole file is
                                         checked first; prints one JSON line per device with its token
                                         (shown once) or why it was not registered

Connects to NATS_URL, else to the running airtwin dev (the URL it writes to $AIRTWIN_DATA_DIR/nats.url,
default .airtwin), else nats://127.0.0.1:4222, and says which on stderr. AIRTWIN_PREFIX and AIRTWIN_SHARDS
as the cluster's. Refuses (AIRTWIN_ERR_OPS_NO_CLUSTER) a server where no airtwin cluster runs.
`;

function usageError(message: string): RuntimeError {
  return new RuntimeError("OPS_INVALID_REQUEST", `${message}\n\n${opsUsage}`);
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw usageError(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

/** A command's answer for people, printed as it is (every other answer is printed as JSON). */
class TextAnswer {
  constructor(readonly text: string) {}
}

/** What a command prints: JSON of a value, or text as it is. */
export type OpsOutput = { json: unknown } | { text: string };

/** Runs one ops command and returns what to print. */
export async function runOpsCommand(argv: readonly string[], config: AirtwinConfig, nc: NatsConnection, write?: (text: string) => void): Promise<OpsOutput> {
  const result = await runCommand(argv, config, nc, write);
  return result instanceof TextAnswer ? { text: result.text } : { json: result };
}

async function runCommand(argv: readonly string[], config: AirtwinConfig, nc: NatsConnection, write?: (text: string) => void): Promise<unknown> {
  const args = [...argv];
  const names = namesOf(config.prefix);
  // before anything else: a server without the cluster bucket gets no bucket from us
  const { registry: registryExists } = await requireCluster(nc, names, config.natsUrl);
  const [verb, sub, arg] = args;
  const ops = () => new OpsClient(nc, names);
  // device create/delete erase the device's twin through the input log, like the gateway's admin routes
  let twinClient: RuntimeClient | undefined;
  const eraseTwin = async (id: string) => {
    if (twinClient === undefined) {
      // the shard count decides where the erasure goes: refuse one the cluster was not created with
      await ensureClusterForClients(nc, names, { shards: config.shards, streams: config.streams, replicas: config.replicas });
      twinClient = new RuntimeClient(nc, { prefix: config.prefix, shards: config.shards, streams: config.streams });
    }
    return twinClient.erase(TWIN_TYPE, id);
  };
  const registry = () => Registry.open(nc, { prefix: config.prefix, replicas: config.replicas, eraseTwin });
  const withRegistry = async <T>(use: (r: Registry) => T): Promise<T> => {
    const r = await registry();
    try {
      return use(r);
    } finally {
      await r.close();
    }
  };
  const need = (v: string | undefined, what: string): string => {
    if (v === undefined) throw usageError(`missing ${what}`);
    return v;
  };
  switch (verb) {
    case "cluster": {
      const rest = args.slice(1);
      const json = flag(rest, "--json");
      if (rest.length > 0) throw usageError(`unknown argument ${rest[0]}`);
      const view = await ops().cluster();
      return json ? view : new TextAnswer(formatClusterSummary(view));
    }
    case "move": {
      const shard = Number(need(sub, "<shard>"));
      if (!Number.isInteger(shard) || shard < 0) throw usageError(`<shard> must be a shard number, got ${sub}`);
      return ops().move(shard, need(arg, "<node>"));
    }
    case "drain":
      return ops().drain(need(sub, "<node>"));
    case "rebalance": {
      const rest = args.slice(1);
      const dryRun = flag(rest, "--dry-run");
      const unpin = flag(rest, "--unpin");
      if (rest.length > 0) throw usageError(`unknown argument ${rest[0]}`);
      return ops().rebalance({ dryRun, unpin });
    }
    case "twin": {
      if (sub !== "get") throw usageError(`unknown twin command ${sub ?? ""}`);
      const rest = args.slice(3);
      const snapshot = flag(rest, "--snapshot");
      const deviceId = need(arg, "<deviceId>");
      const problem = validateDeviceId(deviceId);
      if (problem !== undefined) throw new ProblemError(problem.code, `${problem.message}: ${JSON.stringify(deviceId)}`, problem.details);
      // a twin exists for every id (a fresh default one): answer for registered devices only
      if (!registryExists || (await withRegistry((r) => r.device(deviceId))) === undefined) {
        throw new GatewayError("REGISTRY_DEVICE_NOT_FOUND", `no device "${deviceId}" is registered (ops device list shows those that are)`, {
          details: [{ field: "deviceId", message: "must be a registered device" }],
        });
      }
      const client = new RuntimeClient(nc, { prefix: config.prefix, shards: config.shards });
      try {
        const metrics = new GatewayMetrics({ defaultMetrics: false });
        const twins = new TwinApi({ backend: client, alerts: new StreamAlertSource(nc, names), live: new NatsLiveFeed(nc, names), metrics, connected: () => !nc.isClosed() });
        return (await twins.view(deviceId, snapshot ? "snapshot" : "live")).view;
      } finally {
        await client.close();
      }
    }
    case "user": {
      const r = await registry();
      try {
        if (sub === "create") return await r.createUser(need(arg, "<userId>"));
        if (sub === "delete") {
          await r.deleteUser(need(arg, "<userId>"));
          return { deleted: arg };
        }
        throw usageError(`unknown user command ${sub ?? ""}`);
      } finally {
        await r.close();
      }
    }
    case "device": {
      const rest = args.slice(2);
      // a read: a cluster whose registry nobody created yet has no devices (and keeps having no bucket)
      if (sub === "list" && !registryExists) {
        option(rest, "--owner"); // still refuses --owner without a value
        return { devices: [] };
      }
      const r = await registry();
      try {
        switch (sub) {
          case "create": {
            const owner = option(rest, "--owner");
            return await r.createDevice(need(rest[0], "<deviceId>"), need(owner, "--owner <userId>"));
          }
          case "delete":
            await r.deleteDevice(need(rest[0], "<deviceId>"));
            return { deleted: rest[0] };
          case "disable":
          case "enable":
            return await r.setDeviceDisabled(need(rest[0], "<deviceId>"), sub === "disable");
          case "list":
            return { devices: r.listDevices(option(rest, "--owner")) };
          case "import":
            return await importFile(r, rest, write);
          default:
            throw usageError(`unknown device command ${sub ?? ""}`);
        }
      } finally {
        await twinClient?.close();
        await r.close();
      }
    }
    default:
      throw usageError(verb === undefined ? "missing command" : `unknown command ${verb}`);
  }
}

/**
 * `device import`: the whole file checked first (AIRTWIN_ERR_REGISTRY_IMPORT_INVALID, nothing
 * registered), then imported in parts of DEVICE_IMPORT_MAX, each part's JSON lines written as soon as
 * it is stored — a token is shown once, so an interruption loses none already registered.
 */
async function importFile(r: Registry, rest: string[], write: ((text: string) => void) | undefined): Promise<unknown> {
  const owner = option(rest, "--owner");
  const file = rest[0];
  if (file === undefined) throw usageError("missing <file> (or - for stdin)");
  const text = await (file === "-" ? readStdin() : readFile(file, "utf8")).catch((err: unknown) => {
    throw usageError(`cannot read ${file}: ${(err as Error).message}`);
  });
  const entries = parseImportLines(text, owner);
  const { count, details } = importProblems(entries, (id) => r.user(id) !== undefined, Number.MAX_SAFE_INTEGER);
  if (count > 0) throw new GatewayError("REGISTRY_IMPORT_INVALID", `${count} problem(s) in ${file}; nothing was registered`, { details });
  const lines: string[] = [];
  const tally = { created: 0, existing: 0, failed: 0 };
  for (let i = 0; i < entries.length; i += DEVICE_IMPORT_MAX) {
    const results = await r.importDevices(entries.slice(i, i + DEVICE_IMPORT_MAX));
    const part = results.map((d) => `${JSON.stringify(d)}\n`).join("");
    for (const d of results) {
      if ("token" in d) tally.created++;
      else if (d.code === "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS") tally.existing++;
      else tally.failed++;
    }
    if (write !== undefined) write(part);
    else lines.push(part);
  }
  process.stderr.write(`imported ${tally.created}, already registered ${tally.existing}, not stored ${tally.failed} (import the file again for those)\n`);
  if (tally.failed > 0) process.exitCode = 1;
  return new TextAnswer(lines.join(""));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function runOps(argv: readonly string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === "help" || argv.includes("--help")) {
    process.stdout.write(opsUsage);
    return;
  }
  const target = resolveOpsTarget(process.env);
  // stdout stays the answer alone (scripts parse it); which server answered goes to stderr
  process.stderr.write(`${describeTarget(target)}\n`);
  const config = loadConfig({ ...process.env, NATS_URL: target.url });
  const nc = await connectNats({ servers: config.natsServers, name: "airtwin ops" });
  try {
    const out = await runOpsCommand(argv, config, nc, (text) => process.stdout.write(text));
    process.stdout.write("text" in out ? out.text : `${JSON.stringify(out.json, null, 2)}\n`);
  } finally {
    await closeNats(nc);
  }
}
