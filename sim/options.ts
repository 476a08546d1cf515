// `airtwin simulate` options in, a validated SimulateConfig out; anything wrong fails with
// AIRTWIN_ERR_SIM_OPTIONS_INVALID naming the option, before anything is sent.
import { parseCsvMap, type CsvMap } from "./csv.ts";
import { SimError } from "./errors.ts";

export const simulateUsage = `usage: airtwin simulate [options]

A fleet of simulated air-quality monitors posting realistic readings (or replaying a CSV file).

  --devices N             devices (default 10)
  --interval D            event time between one device's readings (default 5m, the Foobot cadence)
  --rate R                readings per second overall instead of --interval (interval = devices × speed / R)
  --speed S               event time runs S times faster than the wall clock (default 1)
  --start T               event time of the first reading: ISO date, epoch ms, now, or -7d/-12h (default now)
  --catch-up              once event time reaches the wall clock, follow it (readings every 10 s)
  --duration D            stop after D of wall time (e.g. 30s, 10m); default: until Ctrl-C, or the end of --csv
  --transport http|nats   post to the gateway like a device (default), or publish over NATS like a service
  --seed N                seed of the synthetic fleet (default 1): the same seed sends the same readings
  --no-faults             no outages (devices dropping out, backfilling) and no resent uploads
  --outages N             outages per device per day (default 0.15)
  --duplicates P          probability that an upload is sent twice (default 0.01)
  --csv FILE              replay this CSV instead (every device sends the same rows; as fast as the rate
                          limit allows, batched like a backfill, or paced by event time with --speed)
  --map SPEC              CSV columns: co2=CO2,tmp=Temperature,hum=Humidity[,t=date] (default: known names)
  --gateway URL           gateway (http; default $GATEWAY_URL, else the running airtwin dev's)
  --admin-token T         admin token to register devices (default $AIRTWIN_ADMIN_TOKEN, else airtwin dev's)
  --owner USER            user owning the devices (default sim)
  --id-prefix P           device ids P-01, P-02, … (default sim)
  --fleet-file F          where device tokens and the fleet's clock are kept (default <data dir>/simulate/<id-prefix>.json)
  --replace               register again devices whose tokens are not in the fleet file (their twins are erased)
  --connections N         HTTP connections (default 16)
  --requests-per-minute N per device (default 100; the gateway allows 120 by default)
  --quiet                 no progress bar or status lines, only the summary

Exits 1 when any reading was rejected (a 4xx other than 429), 2 on invalid options.
`;

export interface SimulateConfig {
  devices: number;
  intervalMs: number;
  speed: number;
  startMs: number | undefined;
  catchUp: boolean;
  durationMs: number | undefined;
  transport: "http" | "nats";
  seed: number;
  faults: { outagesPerDay: number; duplicateProbability: number } | false;
  csv: { file: string; map: CsvMap | undefined } | undefined;
  gatewayUrl: string | undefined;
  adminToken: string | undefined;
  owner: string;
  idPrefix: string;
  fleetFile: string | undefined;
  replace: boolean;
  connections: number;
  requestsPerMinute: number;
  quiet: boolean;
  demo: boolean;
  help: boolean;
}

const bad = (option: string, value: string | undefined, reason: string) =>
  new SimError("OPTIONS_INVALID", `${option} ${value === undefined ? "needs a value" : `"${value}" ${reason}`}`, { details: { option, value, reason } });

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `5m`, `2h`, `1d`; a bare number is seconds. */
export function parseDuration(option: string, value: string | undefined): number {
  const m = value === undefined ? null : /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (m === null) throw bad(option, value, "is not a duration (e.g. 500ms, 30s, 5m, 2h, 1d)");
  const ms = Number(m[1]) * UNITS[m[2] ?? "s"]!;
  if (!(ms > 0)) throw bad(option, value, "must be more than 0");
  return Math.round(ms);
}

/** `now`, `-7d`, an ISO date, or epoch ms. */
export function parseStart(value: string | undefined, now: number): number {
  if (value === undefined) throw bad("--start", value, "");
  if (value === "now") return now;
  const rel = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value);
  if (rel) return Math.round(now - Number(rel[1]) * UNITS[rel[2]!]!);
  if (/^\d{10,}$/.test(value)) return Number(value);
  const t = Date.parse(value);
  if (!Number.isFinite(t)) throw bad("--start", value, "is not a time (now, -7d, 2026-01-05T00:00Z or epoch ms)");
  return t;
}

function number(option: string, value: string | undefined, min: number, max: number, integer = false): number {
  const n = value === undefined || value.trim() === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw bad(option, value, `must be ${integer ? "an integer" : "a number"} from ${min} to ${max}`);
  }
  return n;
}

export function parseSimulateArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env, now = Date.now()): SimulateConfig {
  const seen = new Map<string, string | undefined>();
  const flags = new Set(["--catch-up", "--no-faults", "--replace", "--quiet", "--demo", "--help", "-h"]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (!name.startsWith("-")) throw bad("argument", a, "is not an option");
    if (!simulateUsage.includes(`${name} `) && !flags.has(name) && name !== "--demo" && name !== "--fleet-file") throw bad(name, undefined, `is not an option of airtwin simulate\n\n${simulateUsage}`);
    if (flags.has(name)) seen.set(name, undefined);
    else seen.set(name, eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : args[++i]);
  }
  const get = (name: string) => seen.get(name);
  const has = (name: string) => seen.has(name);
  if (has("--rate") && has("--interval")) throw bad("--rate", get("--rate"), "and --interval are alternatives: give one");
  const devices = has("--devices") ? number("--devices", get("--devices"), 1, 1_000_000, true) : 10;
  const speed = has("--speed") ? number("--speed", get("--speed"), 0.001, 1_000_000) : 1;
  let intervalMs = has("--interval") ? parseDuration("--interval", get("--interval")) : 300_000;
  if (has("--rate")) {
    const rate = number("--rate", get("--rate"), 0.001, 10_000_000);
    intervalMs = Math.max(1, Math.round((devices * speed * 1000) / rate));
  }
  const transport = get("--transport") ?? "http";
  if (transport !== "http" && transport !== "nats") throw bad("--transport", transport, "must be http or nats");
  const noFaults = has("--no-faults");
  if (noFaults && (has("--outages") || has("--duplicates"))) throw bad("--no-faults", undefined, "cannot go with --outages or --duplicates");
  const csvFile = get("--csv");
  if (has("--csv") && !csvFile) throw bad("--csv", undefined, "");
  if (has("--map") && !has("--csv")) throw bad("--map", get("--map"), "only applies to --csv");
  const idPrefix = get("--id-prefix") ?? "sim";
  if (!/^[A-Za-z0-9_-]{1,48}$/.test(idPrefix)) throw bad("--id-prefix", idPrefix, "must be 1-48 characters of [A-Za-z0-9_-]");
  const owner = get("--owner") ?? "sim";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(owner)) throw bad("--owner", owner, "must be 1-64 characters of [A-Za-z0-9_-]");
  const gatewayUrl = get("--gateway") ?? env.GATEWAY_URL?.trim() ?? undefined;
  if (gatewayUrl !== undefined && gatewayUrl !== "" && !/^https?:\/\/[^\s/]+/.test(gatewayUrl)) throw bad("--gateway", gatewayUrl, "must be an http(s) URL");
  return {
    devices,
    intervalMs,
    speed,
    startMs: has("--start") ? parseStart(get("--start"), now) : undefined,
    catchUp: has("--catch-up"),
    durationMs: has("--duration") ? parseDuration("--duration", get("--duration")) : undefined,
    transport,
    seed: has("--seed") ? number("--seed", get("--seed"), 0, 2 ** 32 - 1, true) : 1,
    faults: noFaults
      ? false
      : {
          outagesPerDay: has("--outages") ? number("--outages", get("--outages"), 0, 24) : 0.15,
          duplicateProbability: has("--duplicates") ? number("--duplicates", get("--duplicates"), 0, 1) : 0.01,
        },
    csv: csvFile ? { file: csvFile, map: has("--map") ? parseCsvMap(get("--map") ?? "") : undefined } : undefined,
    gatewayUrl: gatewayUrl || undefined,
    adminToken: get("--admin-token") ?? (env.AIRTWIN_ADMIN_TOKEN?.trim() || undefined),
    owner,
    idPrefix,
    fleetFile: get("--fleet-file"),
    replace: has("--replace"),
    connections: has("--connections") ? number("--connections", get("--connections"), 1, 1024, true) : 16,
    requestsPerMinute: has("--requests-per-minute") ? number("--requests-per-minute", get("--requests-per-minute"), 1, 60_000) : 100,
    quiet: has("--quiet"),
    demo: has("--demo"),
    help: has("--help") || has("-h"),
  };
}
