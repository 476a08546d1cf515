// Peer 3, Redis-centric: one Lua script per request (EVALSHA, through node-redis's defineScript) updates
// the device's hash — count/mean/M2/min/max/EWMA of each channel, the pm event in progress — and
// appends the pollution events to the device's list, atomically, the same arithmetic as
// bench/peers/device-stats.ts. The readings themselves are not kept (a Redis-centric team keeps state,
// not history; the Postgres peer and airtwin do keep them — this favours Redis).
//
// Tuning, from the Redis documentation: a redis-server of its own (free port, temp dir) with
// `--appendonly yes --appendfsync everysec` (the persistence docs' recommended trade-off), RDB
// snapshots off (`--save ""`: the AOF is the durability asked for, and a fork mid-round would bill a
// child this bench does not see); one connection with node-redis's automatic pipelining of concurrent
// commands (Redis executes one command at a time: more connections only add context switches); the
// script loaded once and called by SHA.
//
// Variant "redis-http" (`--via http`): the same script behind an HTTP front door of its own
// (bench/peers/redis-http-service.ts: fastify, device tokens, a JSON schema), called by the same HTTP
// client as airtwin's gateway — the like-for-like comparison with airtwin over HTTP.
//
// Latency: request sent → script applied (reply; over HTTP, the service's 202 after it).
// A crash loses: for redis-server killed, nothing (the AOF is written before the reply); for the
// machine (power, kernel), up to ~1 s of acknowledged updates (fsync every second).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn, type ChildProcess } from "node:child_process";
import { createClient, defineScript } from "redis";
import { Pool } from "undici";
import type { NumberReply } from "@redis/client/dist/lib/RESP/types.js";
import type { CommandParser } from "@redis/client/dist/lib/client/parser.js";
import { freePort } from "../../cli/dev.ts";
import type { Reading } from "../../actors/device-twin/domain/types.ts";
import { CHANNELS, EWMA_ALPHA, PM_ENTER, PM_EXIT } from "./device-stats.ts";
import { binaryVersion, packageVersion } from "./versions.ts";
import { str } from "../lib/args.ts";
import { deviceId } from "../lib/fleet.ts";
import { drive, emitRound, ProcessMeter, self, totalReadings, workloadFrom, type PeerRequest, type Workload } from "./workload.ts";

const BENCH = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "bench.js");

/**
 * The front door (redis-http-service.ts) started on `redisPort`, the workload's devices registered
 * through it: a sender for drive(), and the service's process to meter and stop.
 */
async function frontDoor(w: Workload, redisPort: number): Promise<{ proc: ChildProcess; send: (r: PeerRequest) => Promise<number>; close: () => Promise<void> }> {
  const port = await freePort("127.0.0.1");
  const proc = spawn(process.execPath, [BENCH, "peers/redis-http-service", "--redis-port", String(redisPort), "--port", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  for (let i = 0; !out.includes("listening on"); i++) {
    if (i > 600 || proc.exitCode !== null) throw new Error(`the Redis front door did not start: ${out.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: w.concurrency, pipelining: 1 });
  const tokens = new Array<string>(w.devices);
  for (let i = 0; i < w.devices; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, w.devices - i) }, async (_, k) => {
        const r = await pool.request({ method: "POST", path: "/v1/devices", headers: { "content-type": "application/json" }, body: JSON.stringify({ deviceId: deviceId(i + k) }) });
        tokens[i + k] = ((await r.body.json()) as { token: string }).token;
      }),
    );
  }
  const send = async (r: PeerRequest): Promise<number> => {
    const res = await pool.request({
      method: "POST",
      path: `/v1/devices/${r.deviceId}/readings`,
      headers: { authorization: `Bearer ${tokens[r.device]}`, "content-type": "application/json" },
      body: JSON.stringify({ readings: r.readings }),
    });
    const body = await res.body.text();
    if (res.statusCode !== 202) throw new Error(`the Redis front door answered ${res.statusCode}: ${body.slice(0, 300)}`);
    return (JSON.parse(body) as { events: number }).events;
  };
  const close = async () => {
    await pool.close();
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  };
  return { proc, send, close };
}

export const SCRIPT = `
local CH = {${CHANNELS.map((c) => `'${c}'`).join(",")}}
local F = {'count','mean','m2','min','max','ewma'}
local names = {}
for c = 1, 6 do for f = 1, 6 do names[#names + 1] = CH[c] .. ':' .. F[f] end end
names[37] = 'pm_since'; names[38] = 'pm_peak'
local cur = redis.call('HMGET', KEYS[1], unpack(names))
local s = {}
if cur[1] then
  for i = 1, 36 do s[i] = tonumber(cur[i]) end
else
  for c = 0, 5 do s[c*6+1] = 0; s[c*6+2] = 0; s[c*6+3] = 0; s[c*6+4] = math.huge; s[c*6+5] = -math.huge; s[c*6+6] = 0 end
end
local since = cur[37] and tonumber(cur[37]) or nil
local peak = cur[38] and tonumber(cur[38]) or nil
local events = 0
for k = 0, #ARGV / 7 - 1 do
  local t = tonumber(ARGV[k*7+1])
  for c = 0, 5 do
    local v = ARGV[k*7+2+c]
    if v ~= '' then
      local x = tonumber(v)
      local o = c*6
      local n = s[o+1] + 1
      s[o+1] = n
      local d = x - s[o+2]
      s[o+2] = s[o+2] + d / n
      s[o+3] = s[o+3] + d * (x - s[o+2])
      if x < s[o+4] then s[o+4] = x end
      if x > s[o+5] then s[o+5] = x end
      if n == 1 then s[o+6] = x else s[o+6] = s[o+6] + ${EWMA_ALPHA} * (x - s[o+6]) end
    end
  end
  local pm = ARGV[k*7+2]
  if pm ~= '' then
    pm = tonumber(pm)
    if since == nil and pm > ${PM_ENTER} then
      since = t; peak = pm; events = events + 1
      redis.call('RPUSH', KEYS[2], 'start:' .. t .. ':' .. string.format('%.17g', pm))
    elseif since ~= nil then
      if pm > peak then peak = pm end
      if pm < ${PM_EXIT} then
        redis.call('RPUSH', KEYS[2], 'end:' .. t .. ':' .. string.format('%.17g', peak))
        since = nil; peak = nil; events = events + 1
      end
    end
  end
end
local out = {}
for i = 1, 36 do out[#out + 1] = names[i]; out[#out + 1] = string.format('%.17g', s[i]) end
if since == nil then
  redis.call('HDEL', KEYS[1], 'pm_since', 'pm_peak')
else
  out[#out + 1] = 'pm_since'; out[#out + 1] = string.format('%.17g', since)
  out[#out + 1] = 'pm_peak'; out[#out + 1] = string.format('%.17g', peak)
end
redis.call('HSET', KEYS[1], unpack(out))
return events
`;

/** The script's arguments for a device's readings: each reading's time, then its six channels ("" when absent). */
export function scriptArgs(readings: readonly Reading[]): string[] {
  const args: string[] = [];
  for (const x of readings) args.push(String(x.t), ...CHANNELS.map((c) => (x[c] === undefined ? "" : String(x[c]))));
  return args;
}

export const ingestScript = defineScript({
  NUMBER_OF_KEYS: 2,
  SCRIPT,
  parseCommand(parser: CommandParser, deviceKey: string, eventsKey: string, args: string[]) {
    parser.pushKey(deviceKey);
    parser.pushKey(eventsKey);
    parser.pushVariadic(args);
  },
  transformReply: undefined as unknown as () => NumberReply,
});

export async function main(argv: string[]): Promise<void> {
  const { workload: w, args } = workloadFrom(argv);
  const via = str(args, "via", "client");
  if (via !== "http" && via !== "client") throw new Error(`--via must be http or client, not "${via}"`);
  const dir = mkdtempSync(join(tmpdir(), "airtwin-peers-redis-"));
  const port = await freePort("127.0.0.1");
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  server.stdout.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise((r) => server.once("exit", r));
  const client = createClient({ url: `redis://127.0.0.1:${port}`, scripts: { ingest: ingestScript } });
  let door: Awaited<ReturnType<typeof frontDoor>> | undefined;
  try {
    for (let i = 0; !log.includes("Ready to accept connections"); i++) {
      if (i > 200) throw new Error(`redis-server did not start: ${log.slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await client.connect();
    await client.scriptLoad(SCRIPT);
    door = via === "http" ? await frontDoor(w, port) : undefined;
    const meter = new ProcessMeter({
      [door === undefined ? "bench (application)" : "bench (HTTP client)"]: [self()],
      ...(door === undefined ? {} : { "front door (fastify)": [door.proc.pid!] }),
      "redis-server": [server.pid!],
    });
    let events = 0;
    const direct = async (r: PeerRequest): Promise<number> => Number(await client.ingest(`dev:{${r.deviceId}}`, `ev:{${r.deviceId}}`, scriptArgs(r.readings)));
    const send = door?.send ?? direct;
    const t0 = performance.now();
    const { latencyMs } = await drive(w, async (r) => {
      events += await send(r);
    });
    const seconds = (performance.now() - t0) / 1000;
    const { cpuS, peakRssMb } = meter.read();
    const info = await client.info("persistence");
    emitRound(w, {
      system: str(args, "system", via === "http" ? "redis-http" : "redis"),
      readings: totalReadings(w),
      seconds,
      latencyMs,
      latencyIs: door === undefined ? "sent → Lua script applied (reply; in the AOF, fsync within 1 s)" : "sent → HTTP 202 after the Lua script applied (in the AOF, fsync within 1 s)",
      cpuS,
      peakRssMb,
      crashLoses: "redis-server killed: nothing; machine crash: up to ~1 s of acknowledged updates (appendfsync everysec)",
      versions: { "redis-server": binaryVersion("redis-server", ["--version"]).replace(/^Redis server v=(\S+).*/, "$1"), redis: packageVersion("redis"), ...(door === undefined ? {} : { fastify: packageVersion("fastify"), undici: packageVersion("undici") }) },
      extra: { pmEvents: events, aofBytes: Number(/aof_current_size:(\d+)/.exec(info)?.[1] ?? Number.NaN) },
    });
  } finally {
    await door?.close();
    await client.quit().catch(() => undefined);
    server.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
