// `npm run bench -- fleet [--devices N] [--minutes M] [--warmup-s S] [--connections C] [--no-archive] [--snapshot-interval-ms N]
//   [--import-concurrency K] [--register-only] [--rate R] [--no-tap] [--shards N] [--profile DIR] [--memory-budget-mb M]
//   [--node-v8=FLAGS] [--gateway-v8=FLAGS] [--node-log FILE] [--no-prime] [--prime-concurrency K] [--idle-passivate-ms N]
//   [--offline-after-ms N] [--kill-node-at-s S]`
//
// A Foobot-scale fleet on this machine (issue #16 §2): N devices (1,000,000 by default), each sending one
// reading every 5 minutes — N / 300 requests/s of one reading over HTTP keep-alive, the devices taken in
// turn so each one's readings are 5 minutes apart — for M minutes (15) after S seconds of warm-up at the
// same rate (60). Everything durable, everything on this machine, each a process of its own: a private
// nats-server, one `airtwin node`, one `airtwin gateway`, and `airtwin archive` into DATABASE_URL (a
// schema of its own, dropped afterwards; `--no-archive` or no DATABASE_URL: without it). The load is the
// open-loop generator of the gateway suite (bench/gateway-load.ts: latency from each request's due time).
// Snapshots: the node's default deferral (30 min) unless --snapshot-interval-ms. Before measuring it waits for
// the registration's aftermath (erasures applied, snapshots written, the archive caught up).
// Figures: CPU of every process (% of the machine's cores over the measured window), peak RSS of
// each, 202 latency, snapshot bytes written per second (the node's airtwin_commit_bytes_total), the
// answered rate. Reading → alert latency is the gateway suite's (its probes), not measured here.
// The devices are registered first through the bulk import (POST /v1/devices/import, 5,000 a request),
// timed and metered on its own; `--register-only` stops there. `--rate R`: R requests/s instead of N / 300
// (e.g. a million resident twins at a lower rate, for their memory).
// Then the priming: every device posts one reading (the load's request shape, its event time a second
// before the load's first for that device), K at once (256), as fast as the machine takes them — timed
// and metered on its own like the registration. It stands for a fleet whose devices have all reported
// once, as a fleet in service has: each device's twin exists and is resident. Registering alone leaves
// the twins blank (erasing a twin never stored creates nothing, runtime/shard/apply.ts), so without it
// (`--no-prime`) each twin is created by its first reading inside the warm-up or the measured window.
// The message economy: nats-server's counters (/varz, /jsz, /connz) over the measured window, per request,
// and what the messages are — a `>` tap for the last seconds of the warm-up (outside the measured
// window: the tap costs the server a copy of each message; `--no-tap` leaves it out), and the CPU each
// process takes idle (10 s before the load: heartbeats, leases, pulls, lag requests — the fixed cost).
// `--shards N`: the cluster made with N shards (AIRTWIN_SHARDS) instead of the default.
// `--profile DIR`: the node writes a V8 CPU profile under DIR/node; the bench prints where its time went
// in the registration, the idle seconds and the measured load, each cut from the one profile.
// `--node-v8="--trace-gc …"`: more V8 flags for the node; `--node-log FILE`: the node's output written there at the end.
// `--gateway-v8="FLAGS"`: V8 flags for the gateway (airtwin starts it without any: cli/role-v8-flags.ts).
// The node starts with the V8 flags airtwin starts its nodes with (cli/role-v8-flags.ts), and a memory budget
// (AIRTWIN_MEMORY_BUDGET_MB) of M MB, 6,144 by default: the fleet's twins stay resident (a million take
// ~4 GB of heap; over its budget a node writes and passivates its least recently used twins, and each
// one's next reading fetches its snapshot again).
// `--kill-node-at-s S`: S seconds into the measured window the node is killed (SIGKILL) and started again
// at once, the load going on (bench/lib/node-crash.ts: the replay it owes, when the state is live again,
// what the recovery costs). The window's figures then include the recovery; the killed node's CPU counts
// up to the kill, its memory no longer.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { freePort } from "../cli/dev.ts";
import { NODE_ROLE_V8_FLAGS } from "../cli/role-v8-flags.ts";
import { child, openLoad, stop, untilServing } from "./gateway.ts";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { benchSystemEnv, postgresPids, postgresServerPid } from "./lib/bench-system.ts";
import { deviceId } from "./lib/fleet.ts";
import { countersPerRequest, natsCounters, tapTraffic } from "./lib/nats-economy.ts";
import { monotonicUs, summarizeProfile, type ProfileWindow } from "./lib/cpuprofile.ts";
import { emit, note, round } from "./lib/report.ts";
import { measureNodeCrash, type NodeCrashFigures } from "./lib/node-crash.ts";
import { loadConfig } from "../runtime/config.ts";
import { loadAverage, ProcessMeter, self } from "./peers/workload.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "bin", "airtwin.js");
const ADMIN = "fleet-admin-token-0123456789abcdef";
const PREFIX = "bf";
const READING_EVERY_S = 300;

/** The node's input consumers' status notices so far, by type (airtwin_consumer_status_total). */
async function consumerStatus(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^airtwin_consumer_status_total\{type="([^"]+)"\} ([0-9.e+]+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** The node's snapshot bytes written so far (its Prometheus counter). */
async function commitBytes(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^airtwin_commit_bytes_total(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** How the node holds its twins right now: decoded, compact (and their bytes), known in all (its gauges). */
async function twinForms(metricsUrl: string): Promise<{ decoded: number; compact: number; compactMb: number; known: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const gauge = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    decoded: gauge("airtwin_resident_entities"),
    compact: gauge("airtwin_compact_entities"),
    compactMb: round(gauge("airtwin_compact_bytes") / 2 ** 20),
    known: gauge("airtwin_known_entities"),
  };
}

/** The machine's CPU time so far, busy and in all (clock ticks, /proc/stat). */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

/** Where the node's time went in each window, from the profile it wrote as it exited. */
function printProfile(dir: string, windows: Record<string, ProfileWindow>): void {
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) return note("no node profile", { dir });
  for (const [name, window] of Object.entries(windows)) {
    const s = round((window.toUs - window.fromUs) / 1e6);
    process.stderr.write(`\nnode profile, ${name} (${s} s, ${join(dir, file)}):\n${summarizeProfile(join(dir, file), 25, window)}\n`);
  }
}

/** Every number under a key naming a lag, summed (the archive's status, whatever its nesting). */
function sumLags(v: unknown, key = ""): number {
  if (typeof v === "number") return /lag/i.test(key) ? v : 0;
  if (typeof v !== "object" || v === null) return 0;
  return Object.entries(v).reduce((a, [k, x]) => a + sumLags(x, /lag/i.test(key) ? key : k), 0);
}

/**
 * Every device of `fleet` posts one reading at event time `t`, `concurrency` requests at once over as many
 * keep-alive connections; timed, each process's CPU metered, its profile window kept. Throws when a
 * device's reading is not accepted (202): the fleet would not be primed.
 */
async function prime(url: string, fleet: ReadonlyArray<{ id: string; token: string }>, t: number, concurrency: number, pids: Record<string, number[]>, windows: Record<string, ProfileWindow>): Promise<void> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const meter = new ProcessMeter(pids);
  const p0 = performance.now();
  const p0Us = monotonicUs();
  const body = `{"readings":[{"t":${t},"pm":0,"co2":500,"tmp":21.5,"hum":40}]}`;
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < fleet.length; i = next++) {
          const d = fleet[i]!;
          const r = await pool.request({ method: "POST", path: `/v1/devices/${d.id}/readings`, headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" }, body });
          const text = await r.body.text();
          if (r.statusCode !== 202) throw new Error(`priming: device ${d.id}'s reading answered ${r.statusCode}: ${text.slice(0, 500)}`);
          if ((i + 1) % 100_000 === 0) note("priming", { done: i + 1, s: round((performance.now() - p0) / 1000) });
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const primeS = (performance.now() - p0) / 1000;
  windows.priming = { fromUs: p0Us, toUs: monotonicUs() };
  note("primed", { devices: fleet.length, s: round(primeS), perS: round(fleet.length / primeS), cpuS: meter.read().cpuS });
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const devices = int(args, "devices", 1_000_000);
  const minutes = int(args, "minutes", 15);
  const warmupS = int(args, "warmup-s", 60);
  const connections = int(args, "connections", 128);
  const rate = args.has("rate") ? int(args, "rate", 0) : devices / READING_EVERY_S;
  const databaseUrl = process.env.DATABASE_URL;
  const archive = !flag(args, "no-archive") && databaseUrl !== undefined;
  const schema = `bench_fleet_${process.pid}`;
  note("fleet", { devices, minutes, warmupS, rate: round(rate), connections, archive, cpus: cpus().length, load: loadAverage() });

  await using ns = await startNatsServer();
  const env = {
    ...benchSystemEnv(ns.url, PREFIX, ADMIN),
    ...(args.has("shards") ? { AIRTWIN_SHARDS: String(int(args, "shards", 64)) } : {}),
    AIRTWIN_MEMORY_BUDGET_MB: String(int(args, "memory-budget-mb", 6144)),
    // the node's snapshot deferral (default 30 min) unless --snapshot-interval-ms says otherwise
    ...(!args.has("snapshot-interval-ms") ? {} : { AIRTWIN_SNAPSHOT_INTERVAL_MS: String(int(args, "snapshot-interval-ms", 0)) }),
    // a fleet slower than the real cadence (--rate below N / 300) leaves each twin idle longer than the
    // node's default 10 minutes: --idle-passivate-ms keeps them as a fleet at the real cadence would
    ...(!args.has("idle-passivate-ms") ? {} : { AIRTWIN_IDLE_PASSIVATE_MS: String(int(args, "idle-passivate-ms", 600_000)) }),
    // and past the 15-minute offline threshold: every device goes offline between two of its readings, the
    // whole fleet in a wave (an alert and a wake-up each); --offline-after-ms keeps them online as the real
    // cadence would — or, shorter, brings the wave into the window on purpose
    ...(!args.has("offline-after-ms") ? {} : { AIRTWIN_OFFLINE_AFTER_MS: String(int(args, "offline-after-ms", 900_000)) }),
  };
  const port = await freePort("127.0.0.1");
  const metricsPort = await freePort("127.0.0.1");
  const profileDir = args.has("profile") ? str(args, "profile") : undefined;
  const profileFlags = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, "node")}`];
  const windows: Record<string, ProfileWindow> = {};
  const nodeSpawnedUs = monotonicUs(); // --trace-gc's times count from about here
  const extraV8 = args.has("node-v8") ? str(args, "node-v8").split(/\s+/).filter((f) => f !== "") : [];
  const startNode = () => child([...NODE_ROLE_V8_FLAGS, ...extraV8, ...profileFlags, BIN, "node"], { ...env, AIRTWIN_NODE_ID: "fleet-node-1", AIRTWIN_METRICS_PORT: String(metricsPort) }, "node");
  let node = startNode();
  const gatewayV8 = str(args, "gateway-v8", "").split(/\s+/).filter((f) => f !== "");
  note("gateway", { v8Flags: gatewayV8 });
  const gateway = child([...gatewayV8, BIN, "gateway"], { ...env, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: "127.0.0.1" }, "gateway");
  const archiver = archive ? child([BIN, "archive"], { ...env, DATABASE_URL: databaseUrl, AIRTWIN_ARCHIVE_SCHEMA: schema }, "archive") : undefined;
  const url = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const pool = new Pool(url, { connections: 100, pipelining: 1 });
  try {
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    await untilServing(url, admin);
    await fetch(`${url}/v1/users`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "fleet" }) });
    const fleet: Array<{ id: string; token: string }> = new Array(devices);
    const meteredPids = () => ({ bench: [self()], gateway: [gateway.proc.pid!], node: [node.proc.pid!], "nats-server": [ns.pid], ...(archiver === undefined ? {} : { archive: [archiver.proc.pid!] }) });
    const regMeter = new ProcessMeter(meteredPids());
    const r0 = performance.now();
    const r0Us = monotonicUs();
    // the bulk path an operator uses (POST /v1/devices/import): CHUNK devices a request, a few requests at once
    const CHUNK = 5000;
    let nextChunk = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: int(args, "import-concurrency", 12) }, async () => {
        for (let i = nextChunk; i < devices; i = nextChunk) {
          nextChunk += CHUNK;
          const entries = Array.from({ length: Math.min(CHUNK, devices - i) }, (_, k) => ({ deviceId: deviceId(i + k), ownerId: "fleet" }));
          const r = await pool.request({ method: "POST", path: "/v1/devices/import", headers: admin, body: JSON.stringify({ devices: entries }) });
          const body = (await r.body.json()) as { devices?: Array<{ deviceId: string; token?: string; code?: string }> };
          if (r.statusCode !== 200 || body.devices === undefined) throw new Error(`import answered ${r.statusCode}: ${JSON.stringify(body).slice(0, 500)}`);
          body.devices.forEach((d, k) => {
            if (d.token === undefined) throw new Error(`device ${d.deviceId} not registered: ${d.code}`);
            fleet[i + k] = { id: d.deviceId, token: d.token };
          });
          done += entries.length;
          if (done % 100_000 < CHUNK) note("registering", { done, s: round((performance.now() - r0) / 1000) });
        }
      }),
    );
    const registerS = (performance.now() - r0) / 1000;
    windows.registration = { fromUs: r0Us, toUs: monotonicUs() };
    note("registered", { devices, s: round(registerS), perS: round(devices / registerS), cpuS: regMeter.read().cpuS });
    if (flag(args, "register-only")) return;
    await pool.close();

    // event times as the load's (bench/gateway-load.ts: device i's n-th reading at baseT + n s); the priming's a second before
    const baseT = Date.now() - 30 * 86_400_000;
    if (!flag(args, "no-prime")) await prime(url, fleet, baseT - 1000, int(args, "prime-concurrency", 256), meteredPids(), windows);

    // the registration's own aftermath (twins erased and snapshotted, the archive copying registry, erasures and
    // snapshots) is not the fleet's steady cost: wait until the nodes and the archive have nothing pending
    const settle0 = performance.now();
    const lagOf = async (): Promise<number> => {
      const cluster = (await (await fetch(`${url}/v1/ops/cluster`, { headers: admin })).json()) as { shards?: Array<{ lag?: number }> };
      const status = archiver === undefined ? {} : await (await fetch(`${url}/v1/ops/archive`, { headers: admin })).json().catch(() => ({}));
      return (cluster.shards ?? []).reduce((a, sh) => a + (sh.lag ?? 0), 0) + sumLags(status);
    };
    const snapshotIntervalMs = int(args, "snapshot-interval-ms", 1_800_000);
    await new Promise((r) => setTimeout(r, Math.min(snapshotIntervalMs, 60_000) + 2000));
    for (let quietRounds = 0; quietRounds < 2 && performance.now() - settle0 < 240_000; ) {
      quietRounds = (await lagOf()) === 0 ? quietRounds + 1 : 0;
      await new Promise((r) => setTimeout(r, 3000));
    }
    note("settled", { s: round((performance.now() - settle0) / 1000), lag: await lagOf() });

    const pids: Record<string, number[]> = { "load generator + bench": [self()], gateway: [gateway.proc.pid!], node: [node.proc.pid!], "nats-server": [ns.pid] };
    if (archiver !== undefined) pids.archive = [archiver.proc.pid!];
    // idle: what the servers take with nothing to do (per second, each process)
    const idleMeter = new ProcessMeter(pids);
    const idle0 = performance.now();
    const idle0Us = monotonicUs();
    await new Promise((r) => setTimeout(r, 10_000));
    windows.idle = { fromUs: idle0Us, toUs: monotonicUs() };
    const idleS = (performance.now() - idle0) / 1000;
    const idleCpu = idleMeter.read().cpuS;
    emit({ suite: "fleet", name: "fleet.idle-cpu", value: round((100 * Object.entries(idleCpu).filter(([k]) => !k.startsWith("load")).reduce((a, [, v]) => a + v, 0)) / idleS / cpus().length), unit: "% of the machine's cores, servers idle (10 s before the load)", detail: Object.fromEntries(Object.entries(idleCpu).map(([k, v]) => [k, round((1000 * v) / idleS)])) });
    // the tap listens during the warm-up's last seconds; everything else is read where the measured window
    // starts (the warm-up's end): a long warm-up (--warmup-s past the snapshot deferral) then measures the
    // fleet's steady state, snapshots written as they come due
    const tapS = Math.min(10, Math.max(0, warmupS - 4));
    const tapped = flag(args, "no-tap") || tapS === 0 ? Promise.resolve(undefined) : new Promise((r) => setTimeout(r, (warmupS - tapS - 2) * 1000)).then(() => tapTraffic(ns.url, PREFIX, tapS));
    const window0 = new Promise((r) => setTimeout(r, warmupS * 1000)).then(async () => {
      const meter = new ProcessMeter(pids);
      // the archive's database works for it: every postgres process on this machine (a quiet hold: ours
      // alone), its private memory only (the shared buffers are in every process's RSS)
      if (archiver !== undefined) {
        for (const pid of postgresPids()) meter.add("postgres", pid, true, true);
        // the archive's pool closes connections idle 30 s: those that close within the window count through the server's parent
        const server = postgresServerPid();
        if (server !== undefined) meter.addReaped("postgres", server);
      }
      const machine0 = machineCpu();
      const t0 = performance.now();
      const [counters0, bytes0, status0] = await Promise.all([natsCounters(ns.monitorUrl), commitBytes(metricsUrl), consumerStatus(metricsUrl)]);
      return { meter, machine0, t0, counters0, bytes0, status0 };
    });
    const killAtS = args.has("kill-node-at-s") ? int(args, "kill-node-at-s", 60) : undefined;
    const crash: Promise<NodeCrashFigures | undefined> =
      killAtS === undefined
        ? Promise.resolve(undefined)
        : window0.then(async ({ meter }) => {
            await new Promise((r) => setTimeout(r, killAtS * 1000));
            const config = loadConfig({ ...process.env, ...env });
            const servers = { gateway: [gateway.proc.pid!], "nats-server": [ns.pid], ...(archiver === undefined ? {} : { archive: [archiver.proc.pid!] }) };
            return measureNodeCrash({
              natsUrl: ns.url,
              prefix: PREFIX,
              shards: config.shards,
              streams: config.streams,
              metricsUrl,
              servers,
              kill: async () => {
                const killed = node.proc;
                meter.retire(killed.pid!);
                killed.removeAllListeners("exit"); // child()'s note of an unexpected exit: this one is meant
                const gone = new Promise((r) => killed.once("exit", r));
                killed.kill("SIGKILL");
                await gone;
              },
              restart: () => {
                node = startNode();
                meter.add("node", node.proc.pid!);
                return node.proc.pid!;
              },
            });
          });
    const load0Us = monotonicUs();
    const result = await openLoad({ url, rate, durationS: minutes * 60, warmupS, connections, devices: fleet, baseT, readingsPerRequest: 1 });
    const { meter, machine0, t0, counters0: c0, bytes0, status0 } = await window0;
    const seconds = (performance.now() - t0) / 1000;
    windows.load = { fromUs: load0Us, toUs: monotonicUs() };
    const counters1 = await natsCounters(ns.monitorUrl);
    const bytes1 = await commitBytes(metricsUrl);
    const status1 = await consumerStatus(metricsUrl);
    const machine1 = machineCpu();
    const forms = await twinForms(metricsUrl);
    note("snapshot bytes", { before: bytes0, after: bytes1 });
    const { cpuS, peakRssMb, exited } = meter.read();
    // the window's figures are read above, when the load ended; a recovery may still be under way
    const crashed = await crash;
    // the load generator runs in a child of this process: its CPU is not in self(); say so
    const cores = cpus().length;
    const cpuPercent = Object.fromEntries(Object.entries(cpuS).map(([k, v]) => [k, round((100 * v) / seconds / cores)]));
    const serverCpu = Object.entries(cpuS).filter(([k]) => !k.startsWith("load")).reduce((a, [, v]) => a + v, 0);
    const serverRss = Object.entries(peakRssMb).filter(([k]) => !k.startsWith("load")).reduce((a, [, v]) => a + v, 0);
    const detail = {
      devices,
      minutes,
      warmupS,
      offeredRate: round(rate),
      status: result.status,
      errors: result.errors,
      latencyMs: result.latencyMs,
      serviceMs: result.serviceMs,
      dispatchLagMs: result.dispatchLagMs,
      cpuPercentOfMachine: cpuPercent,
      peakRssMb,
      // a restarted node counts its snapshot bytes afresh (the crash's figure says what it wrote)
      snapshotBytesPerS: killAtS === undefined ? round((bytes1 - bytes0) / seconds) : null,
      // everything on the machine (a quiet hold: this bench alone), Postgres' short-lived connections included
      machineBusyPercent: round((100 * (machine1.busy - machine0.busy)) / (machine1.total - machine0.total)),
      registerS: round(registerS),
      ...(exited.length === 0 ? {} : { exitedDuringRun: exited }),
      load: loadAverage(),
    };
    emit({ suite: "fleet", name: "fleet.202-p99", value: result.latencyMs.p99, unit: "ms", baseline: { name: "target", value: 20 }, detail });
    emit({ suite: "fleet", name: "fleet.server-cpu", value: round((100 * serverCpu) / seconds / cores), unit: "% of the machine's cores (nats-server, node, gateway, archive, postgres)", baseline: { name: "target", value: 50 } });
    emit({ suite: "fleet", name: "fleet.server-rss", value: round(serverRss), unit: "MB, peak RSS summed (nats-server, node, gateway, archive, postgres)", baseline: { name: "target", value: 8192 } });
    // CPU µs per request of each process over the measured window (as the CPU figures above)
    const requestsSent = rate * seconds;
    const cpuUsPerRequest = Object.fromEntries(Object.entries(cpuS).map(([k, v]) => [k, round((v * 1e6) / requestsSent)]));
    emit({ suite: "fleet", name: "fleet.cpu-per-request", value: round((serverCpu * 1e6) / requestsSent), unit: "µs CPU per request, servers summed", detail: cpuUsPerRequest });
    emit({ suite: "fleet", name: "fleet.nats-messages-per-request", value: round((counters1.inMsgs - c0.inMsgs + counters1.outMsgs - c0.outMsgs) / Math.max(1, rate * minutes * 60)), unit: "messages in + out of nats-server per request (measured window)", detail: countersPerRequest(c0, counters1, Math.round(rate * ((counters1.at - c0.at) / 1000))) });
    const tap = await tapped;
    if (tap !== undefined) emit({ suite: "fleet", name: "fleet.nats-traffic-by-kind", value: round(Object.values(tap).reduce((a, v) => a + v.msgsPerS, 0)), unit: "messages/s seen by a `>` tap (warm-up's last seconds), by kind", detail: tap });
    emit({ suite: "fleet", name: "fleet.consumer-status", value: round(((status1.next ?? 0) - (status0.next ?? 0)) / seconds), unit: "pulls/s the node's shard consumers sent (measured window); detail: each status notice type per second", detail: Object.fromEntries(Object.keys(status1).map((k) => [k, round(((status1[k] ?? 0) - (status0[k] ?? 0)) / seconds)])) });
    emit({ suite: "fleet", name: "fleet.twin-forms", value: forms.compact, unit: "twins the node holds compact at the window's end; detail: decoded, compact, their MB, known", detail: forms });
    if (crashed !== undefined) {
      emit({ suite: "fleet", name: "fleet.node-crash-live", value: crashed.liveS ?? NaN, unit: `s from a SIGKILL of the node ${killAtS} s into the window to every shard's state within 5 s of its input (restarted at once, the load going on)`, detail: { ...crashed, restartedNodeSnapshotBytes: bytes1 } });
      // the load stopping first would have let the node catch up without live input beside it
      if (crashed.liveS !== null && killAtS! + crashed.liveS > minutes * 60) note("the node was live again only after the load had ended: the recovery is not measured under load; run longer (--minutes)");
    }
    emit({ suite: "fleet", name: "fleet.answered-rate", value: result.rate, unit: "requests/s", baseline: { name: "offered", value: round(rate) } });
  } finally {
    await stop(gateway.proc);
    // a profile is written as the process exits: give a node with many dirty twins the time to commit them
    await stop(node.proc, profileDir === undefined ? undefined : 300_000);
    if (profileDir !== undefined) printProfile(join(profileDir, "node"), windows);
    if (args.has("node-log")) writeFileSync(str(args, "node-log"), `${JSON.stringify({ nodeSpawnedUs, windows })}\n${node.output()}`);
    if (archiver !== undefined) {
      await stop(archiver.proc);
      const { default: pg } = await import("pg");
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`).catch((err: unknown) => note("schema not dropped", { schema, error: String(err) }));
      await c.end();
    }
  }
}
