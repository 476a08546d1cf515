// `airtwin simulate`: a fleet of simulated monitors (sim/model) or a CSV replay (sim/csv.ts), sent over
// HTTP or NATS (sim/*-transport.ts) by the runner (sim/runner.ts), with a progress bar and a summary.
// Finds a running `airtwin dev` through its data dir (gateway.url, nats.url, admin-token) when no
// gateway, NATS URL or token is given. `--demo` is how `airtwin dev --simulate` runs its fleet: the
// settings come from the fleet file, and the clock goes back into it so a restart resumes.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connectNats, loadConfig } from "../runtime/mod.ts";
import { SimClock } from "../sim/clock.ts";
import { CsvSource, readCsvReadings } from "../sim/csv.ts";
import { DEMO } from "../sim/demo-fleet.ts";
import { SimError } from "../sim/errors.ts";
import { readFleetFile, writeFleetFile, type FleetFile } from "../sim/fleet-file.ts";
import { HttpTransport } from "../sim/http-transport.ts";
import { Fleet, fleetDeviceId } from "../sim/model/fleet.ts";
import { NatsTransport } from "../sim/nats-transport.ts";
import { parseSimulateArgs, simulateUsage, type SimulateConfig } from "../sim/options.ts";
import { startProgress, summaryLines } from "../sim/report.ts";
import { SimRunner } from "../sim/runner.ts";
import { setupHttpFleet, setupNatsFleet } from "../sim/setup.ts";
import type { Transport } from "../sim/transport.ts";

const readIfExists = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").trim() || undefined : undefined);

/** SIGINT/SIGTERM stop the run (requests in flight are answered first); a second one exits at once. */
function stopOnSignal(): AbortController {
  const ctl = new AbortController();
  const on = () => {
    if (ctl.signal.aborted) process.exit(130);
    ctl.abort();
  };
  process.on("SIGINT", on);
  process.on("SIGTERM", on);
  return ctl;
}

export async function runSimulate(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let cfg: SimulateConfig;
  try {
    cfg = parseSimulateArgs(args, env);
  } catch (err) {
    process.stderr.write(`airtwin simulate: ${(err as SimError).code}: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  if (cfg.help) {
    process.stdout.write(simulateUsage);
    return;
  }
  const dataDir = resolve(env.AIRTWIN_DATA_DIR?.trim() || ".airtwin");
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const fleetFilePath = cfg.fleetFile ?? join(dataDir, "simulate", `${cfg.idPrefix}.json`);
  const file: FleetFile = readFleetFile(fleetFilePath) ?? { version: 1, userId: cfg.owner, tokens: {} };
  if (cfg.demo) applyDemo(cfg, file);

  const ids = Array.from({ length: cfg.devices }, (_, i) => fleetDeviceId({ seed: cfg.seed, devices: cfg.devices, idPrefix: cfg.idPrefix, kindInId: cfg.demo }, i));
  const now = Date.now();
  let source: Fleet | CsvSource;
  let csvTotal: number | undefined;
  if (cfg.csv) {
    let text: string;
    try {
      text = readFileSync(cfg.csv.file, "utf8");
    } catch (err) {
      throw new SimError("CSV_INVALID", `cannot read ${cfg.csv.file}: ${(err as Error).message}`, { cause: err });
    }
    const readings = readCsvReadings(text, cfg.csv.map, cfg.csv.file);
    const paced = args.some((a) => a === "--speed" || a.startsWith("--speed="));
    source = new CsvSource({ readings, deviceIds: ids, paced, ...(cfg.startMs === undefined ? {} : { startMs: cfg.startMs }) });
    csvTotal = readings.length * ids.length;
    const span = source.span;
    say(`airtwin simulate: replaying ${readings.length} readings of ${cfg.csv.file}${span ? ` (${new Date(span.from).toISOString()} → ${new Date(span.to).toISOString()})` : ""} for ${ids.length} device(s), ${paced ? `paced at ×${cfg.speed}` : "as a backfill"}`);
  } else {
    source = new Fleet({ seed: cfg.seed, devices: cfg.devices, idPrefix: cfg.idPrefix, kindInId: cfg.demo, startMs: cfg.startMs ?? now, intervalMs: cfg.intervalMs, faults: cfg.faults });
  }
  const clockStart = cfg.csv && source instanceof CsvSource ? (source.span?.from ?? now) : (cfg.startMs ?? now);

  let transport: Transport;
  if (cfg.transport === "http") {
    const gatewayUrl = cfg.gatewayUrl ?? readIfExists(join(dataDir, "gateway.url")) ?? `http://127.0.0.1:${env.AIRTWIN_HTTP_PORT?.trim() || "8080"}`;
    const adminToken = cfg.adminToken ?? readIfExists(join(dataDir, "admin-token"));
    if (adminToken === undefined) {
      throw new SimError("OPTIONS_INVALID", `no admin token to register the devices: pass --admin-token or set AIRTWIN_ADMIN_TOKEN (airtwin dev prints it and keeps it in ${join(dataDir, "admin-token")})`);
    }
    file.gatewayUrl = gatewayUrl;
    const tokens = await setupHttpFleet({ gatewayUrl, adminToken, userId: cfg.demo ? file.userId : cfg.owner, deviceIds: ids, file, replaceUnknown: cfg.replace || cfg.demo, log: (l) => say(`airtwin simulate: ${l}`) });
    writeFleetFile(fleetFilePath, file);
    transport = new HttpTransport({ gatewayUrl, tokens, connections: cfg.connections });
    say(`airtwin simulate: ${ids.length} device(s) (${ids[0]} … ${ids[ids.length - 1]}) posting to ${gatewayUrl}`);
  } else {
    const natsUrl = env.NATS_URL?.trim() || readIfExists(join(dataDir, "nats.url"));
    if (natsUrl === undefined) {
      throw new SimError("TARGET_UNREACHABLE", `no NATS server: set NATS_URL, or start airtwin dev (it writes its URL to ${join(dataDir, "nats.url")})`);
    }
    const config = loadConfig({ ...env, NATS_URL: natsUrl });
    const nc = await connectNats({ servers: config.natsServers, name: "airtwin simulate" });
    const { created } = await setupNatsFleet(nc, config, cfg.owner, ids);
    transport = await NatsTransport.open(nc, config);
    say(`airtwin simulate: ${ids.length} device(s) (${ids[0]} … ${ids[ids.length - 1]}; ${created} newly registered) publishing to ${natsUrl}`);
  }

  const ctl = stopOnSignal();
  const clock = new SimClock({ startEventMs: clockStart, speed: cfg.speed, catchUp: cfg.catchUp });
  const runner = new SimRunner({
    source,
    transport,
    clock,
    minRequestGapMs: Math.ceil(60_000 / cfg.requestsPerMinute),
    maxInFlight: cfg.transport === "http" ? cfg.connections * 4 : 1024,
    signal: ctl.signal,
    ...(cfg.durationMs === undefined ? {} : { durationMs: cfg.durationMs }),
    ...(cfg.catchUp ? { liveIntervalMs: cfg.demo ? (file.liveIntervalMs ?? DEMO.liveIntervalMs) : 10_000 } : {}),
    // only the demo fleet resumes from its clock; other runs start at --start (default now)
    ...(cfg.demo
      ? {
          onCheckpoint: (eventMs: number) => {
            file.clock = eventMs;
            writeFleetFile(fleetFilePath, file);
          },
        }
      : {}),
  });
  const durationMs = cfg.durationMs;
  const stopProgress = cfg.quiet
    ? () => undefined
    : startProgress({
        stats: runner.stats,
        tty: process.stdout.isTTY === true,
        write: say,
        ...(durationMs !== undefined ? { bar: { total: durationMs, value: () => clock.elapsedMs() } } : csvTotal !== undefined ? { bar: { total: csvTotal, value: () => runner.stats.accepted + runner.stats.rejected } } : {}),
      });
  let stats;
  try {
    stats = await runner.run();
  } finally {
    stopProgress();
    await transport.close();
  }
  for (const line of summaryLines(stats, transport.name)) say(line);
  if (stats.rejected > 0) {
    process.stderr.write(`airtwin simulate: ${stats.rejected} reading(s) rejected unexpectedly\n`);
    process.exitCode = 1;
  }
}

/** `--demo`: the fleet's settings from its file (written by airtwin dev), resuming at its clock. */
function applyDemo(cfg: SimulateConfig, file: FleetFile): void {
  cfg.seed = file.seed ?? DEMO.seed;
  cfg.devices = file.devices ?? Object.keys(file.tokens).length;
  cfg.idPrefix = file.idPrefix ?? DEMO.idPrefix;
  cfg.intervalMs = file.intervalMs ?? DEMO.intervalMs;
  cfg.speed = file.speed ?? DEMO.speed;
  cfg.startMs = file.clock ?? file.startMs ?? Date.now() - DEMO.historyMs;
  cfg.catchUp = true;
  cfg.owner = file.userId;
}
