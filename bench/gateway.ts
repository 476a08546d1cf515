// `npm run bench -- gateway [--quick] [--rounds n] [--duration s] [--connections n] [--devices n] [--linger ms]
//                          [--shards n] [--profile dir] [--half-rate r] [--rate r] [--fixed-only] [--default-v8-flags]
//                          [--gateway-v8=FLAGS]`
//
// The HTTP gateway under load, each figure next to its baseline from the same run:
// - requests/s and readings/s with 1 and 10 readings per request (autocannon, closed loop), against a
//   bare fastify route that answers 202 without work (the ceiling; target ≥ 0.5× for 1 reading per
//   request);
// - at a fixed realistic rate (--rate, default 1,000 requests/s of 1 reading: 300,000 Foobots; issue
//   #16 §3) and then at half the gateway's maximum rate, open loop at an even pace over undici
//   keep-alive connections (bench/gateway-load.ts; latency from each request's due time): request
//   latency p50/p99 (baseline: the ceiling at the same rate; target p99 < 20 ms) and reading-to-alert
//   latency p99 (HTTP request sent → alert received on `<prefix>.out.alert.…`; baseline: the same
//   probes' HTTP 202 latency; target < 50 ms). `--fixed-only` skips the maximum-rate runs and so the
//   half-rate ones.
// Everything runs on this machine: a private nats-server, one `airtwin node` and one `airtwin gateway`
// process, the ceiling in its own process, autocannon and the probes in this one, the open-loop load
// in a process of its own. Every run starts once the node has caught up with the input stream. JSON
// lines on stdout. The node starts with the V8 flags airtwin starts its nodes with (cli/role-v8-flags.ts);
// `--default-v8-flags` leaves them out, for the latency with and without them. `--gateway-v8="FLAGS"`
// starts the gateway with V8 flags (airtwin starts it without any).
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decode, names as namesOf } from "../runtime/mod.ts";
import { decodeBatch } from "../runtime/envelope.ts";
import { NODE_ROLE_V8_FLAGS } from "../cli/role-v8-flags.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import type { LoadJob, LoadResult } from "./gateway-load.ts";
import { benchSystemEnv } from "./lib/bench-system.ts";
import { emit as emitFigure, note, percentile, round, type Figure } from "./lib/report.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "bin", "airtwin.js");
const ADMIN = "bench-admin-token-0123456789abcdef";
const PREFIX = "bg";

/** A figure of this suite (lib/report.ts). */
function emit(f: Omit<Figure, "suite">): void {
  emitFigure({ suite: "gateway", ...f });
}

function loadAverage(): number | undefined {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}

function arg(argv: readonly string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a !== null ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

export function child(args: string[], env: Record<string, string>, name: string): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  proc.once("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM") note(`${name} exited`, { code, signal, tail: out.slice(-2000) });
  });
  return { proc, output: () => out };
}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(fn()).catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the gateway at `url` is ready and every shard of the cluster has an owner. */
export async function untilServing(url: string, admin: Record<string, string>): Promise<void> {
  await until("gateway ready", async () => (await fetch(`${url}/readyz`)).status === 200 || undefined);
  await until("every shard owned", async () => {
    const v = (await (await fetch(`${url}/v1/ops/cluster`, { headers: admin })).json()) as { shards?: Array<{ owner: string | null }> };
    return (v.shards?.length ?? 0) > 0 && v.shards!.every((s) => s.owner !== null) ? true : undefined;
  });
}

export async function stop(p: ChildProcess, patienceMs = 30_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), patienceMs);
  await exited;
  clearTimeout(t);
}

/** Request generator: round-robin over the devices, each device's readings 1 s apart in event time. */
function ingestRequests(devices: ReadonlyArray<{ id: string; token: string }>, perRequest: number, base: number): autocannon.Request[] {
  let next = 0;
  const seq = new Array<number>(devices.length).fill(0);
  return [
    {
      method: "POST",
      path: `/v1/devices/${devices[0]!.id}/readings`,
      setupRequest: (req) => {
        const i = next++ % devices.length;
        const d = devices[i]!;
        const readings: string[] = [];
        for (let k = 0; k < perRequest; k++) {
          const n = seq[i]!++;
          readings.push(`{"t":${base + n * 1000},"pm":${(n % 300) / 10},"co2":${500 + (n % 400)},"tmp":21.5,"hum":40}`);
        }
        return {
          ...req,
          path: `/v1/devices/${d.id}/readings`,
          headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
          body: `{"readings":[${readings.join(",")}]}`,
        };
      },
    },
  ];
}

async function load(url: string, requests: autocannon.Request[], o: { connections: number; duration: number; overallRate?: number }): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: o.connections,
    duration: o.duration,
    requests,
    ...(o.overallRate === undefined ? {} : { overallRate: Math.max(1, Math.round(o.overallRate)) }),
  });
}

/** Open-loop load at a constant rate, from its own process (bench/gateway-load.ts). */
export async function openLoad(job: LoadJob): Promise<LoadResult> {
  const proc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "gateway-load.ts")], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", r));
  proc.stdin.end(JSON.stringify(job));
  const code = await exited;
  if (code !== 0) throw new Error(`load generator exited ${code}: ${err.slice(-2000)}`);
  return JSON.parse(out) as LoadResult;
}

const rps = (r: autocannon.Result): number => r["2xx"] / r.duration;

/** CPU seconds (user + system) a process has used so far; NaN where /proc is not available. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return Number.NaN;
  }
}

/** CPU microseconds per accepted request of each process, over one load run. */
async function withCpu(pids: Record<string, number | undefined>, run: () => Promise<autocannon.Result>): Promise<{ result: autocannon.Result; cpuUsPerRequest: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const result = await run();
  const cpuUsPerRequest = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, Math.round(((cpuSeconds(pid) - before[k]!) * 1e6) / Math.max(1, result["2xx"]))]),
  );
  return { result, cpuUsPerRequest };
}

/** The gateway's publish-ack histogram (hand-off to PubAck): cumulative bucket counts by upper bound (s), sum, count. */
/** A Prometheus histogram's cumulative buckets, sum and count as scraped. */
function histogram(metrics: string, name: string): { buckets: Map<number, number>; sum: number; count: number } {
  const buckets = new Map<number, number>();
  for (const m of metrics.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)`, "gm"))) buckets.set(m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2]));
  const sum = Number(new RegExp(`^${name}_sum (\\S+)`, "m").exec(metrics)?.[1]);
  const count = Number(new RegExp(`^${name}_count (\\S+)`, "m").exec(metrics)?.[1]);
  return { buckets, sum, count };
}

const publishAck = (metrics: string) => histogram(metrics, "airtwin_gateway_publish_ack_seconds");
/** The node's input age (stored in the stream → applied). */
const inputAge = (metrics: string) => histogram(metrics, "airtwin_input_age_seconds");

/** Mean and the bucket bound holding p50/p99 (ms) of a histogram between two scrapes. */
function histogramSince(a: ReturnType<typeof histogram>, b: ReturnType<typeof histogram>): Record<string, number> {
  const n = b.count - a.count;
  const bound = (p: number) => [...b.buckets].find(([le, c]) => c - (a.buckets.get(le) ?? 0) >= (p / 100) * n)?.[0] ?? Number.NaN;
  return { mean: round((1000 * (b.sum - a.sum)) / Math.max(1, n)), p50AtMost: bound(50) * 1000, p99AtMost: bound(99) * 1000, p999AtMost: bound(99.9) * 1000, count: n };
}

export async function main(argv: string[]): Promise<void> {
  const quick = argv.includes("--quick");
  const duration = arg(argv, "duration", quick ? 3 : 5);
  const roundCount = arg(argv, "rounds", quick ? 1 : 3);
  // --connections n: one connection count for the max-rate runs instead of trying 64 and 256
  const connectionCounts = argv.includes("--connections") ? [arg(argv, "connections", 64)] : [64, 256];
  const deviceCount = arg(argv, "devices", 1000);
  const started = performance.now();

  await using ns = await startNatsServer();
  note("private nats-server", { url: ns.url });
  const env = {
    ...benchSystemEnv(ns.url, PREFIX, ADMIN),
    // --linger ms: the runtime client's micro-batch linger (default: the gateway's, 2 ms)
    ...(argv.includes("--linger") ? { AIRTWIN_INGEST_LINGER_MS: String(arg(argv, "linger", 2)) } : {}),
    // --shards n: the cluster's shard count (default 64)
    ...(argv.includes("--shards") ? { AIRTWIN_SHARDS: String(arg(argv, "shards", 64)) } : {}),
  };

  const gwPort = await freePort();
  // --profile DIR: the gateway writes a V8 CPU profile there on exit, the node under DIR/node
  const profileDir = argv.includes("--profile") ? argv[argv.indexOf("--profile") + 1] : undefined;
  const gatewayNodeFlags = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  const nodeMetricsPort = await freePort();
  const nodeV8 = argv.includes("--default-v8-flags") ? [] : [...NODE_ROLE_V8_FLAGS];
  note("node", { v8Flags: nodeV8 });
  const node = child([...nodeV8, ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, "node")}`]), BIN, "node"], { ...env, AIRTWIN_NODE_ID: "bench-node-1", AIRTWIN_METRICS_PORT: String(nodeMetricsPort) }, "node");
  const nodeMetrics = async () => (await fetch(`http://127.0.0.1:${nodeMetricsPort}/metrics`)).text();
  const gatewayV8 = (argv.find((a) => a.startsWith("--gateway-v8="))?.slice("--gateway-v8=".length) ?? "").split(/\s+/).filter((f) => f !== "");
  note("gateway", { v8Flags: gatewayV8 });
  const gateway = child([...gatewayV8, ...gatewayNodeFlags, BIN, "gateway"], { ...env, AIRTWIN_HTTP_PORT: String(gwPort), AIRTWIN_HTTP_HOST: "127.0.0.1" }, "gateway");
  const ceilPort = await freePort();
  const ceiling = child(["--import", "tsx", join(ROOT, "bench", "gateway-ceiling.ts"), String(ceilPort)], {}, "ceiling");
  const gw = `http://127.0.0.1:${gwPort}`;
  const ceil = `http://127.0.0.1:${ceilPort}`;
  const nc = await connect({ servers: ns.url, noAsyncTraces: true });
  try {
    await until("ceiling listening", () => ceiling.output().includes("listening"));
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    await untilServing(gw, admin);
    await fetch(`${gw}/v1/users`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "bench" }) });
    const register = async (id: string) => {
      const r = await fetch(`${gw}/v1/devices`, { method: "POST", headers: admin, body: JSON.stringify({ deviceId: id, ownerId: "bench" }) });
      return { id, token: ((await r.json()) as { token: string }).token };
    };
    const devices: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < deviceCount; i += 100) {
      devices.push(...(await Promise.all(Array.from({ length: Math.min(100, deviceCount - i) }, (_, k) => register(`bench-${i + k}`)))));
    }
    note("registered", { devices: devices.length });
    const base = Date.now() - 30 * 86_400_000;

    // warm both servers (JIT, connections, the node's shards)
    await load(gw, ingestRequests(devices, 1, base - 86_400_000), { connections: 64, duration: 2 });
    await load(ceil, ingestRequests(devices, 1, base), { connections: 64, duration: 2 });

    // the maximum rate of a server: the best of a few connection counts (the gateway is partly
    // latency-bound — each request waits for its PubAck — so it needs more requests in flight)
    let run = 0;
    // CPU per request of each process of the run: what the gateway's rate costs the whole machine
    const gatewayPids = { gateway: gateway.proc.pid, node: node.proc.pid, "nats-server": ns.pid, "bench+autocannon": process.pid };
    const ceilingPids = { ceiling: ceiling.proc.pid, "bench+autocannon": process.pid };
    // how well the runtime client batched: requests per input message (one JetStream store each)
    const jsm = await jetstreamManager(nc);
    const inputMessages = async () => (await jsm.streams.info(`${PREFIX.toUpperCase()}_IN_0`)).state.messages;
    // Input not yet delivered to the node. A run at the maximum rate can leave the node behind (the
    // gateway's rate is the store's, not the node's); the next run then shares the cores with the node
    // catching up, so every run starts once the backlog is gone, and the wait is reported.
    const backlog = async () => {
      let n = 0;
      for await (const ci of jsm.consumers.list(`${PREFIX.toUpperCase()}_IN_0`)) n += ci.num_pending;
      return n;
    };
    const caughtUp = async (after: string) => {
      const t0 = performance.now();
      const before = await backlog();
      await until("the node caught up", async () => ((await backlog()) === 0 ? true : undefined), 120_000);
      const waitedMs = Math.round(performance.now() - t0);
      if (before > 0) note(`node backlog after ${after}`, { messages: before, caughtUpInMs: waitedMs });
    };
    const maxRate = async (target: string, perRequest: number) => {
      let best: { result: autocannon.Result; connections: number; cpuUsPerRequest: Record<string, number>; requestsPerMessage?: number } | undefined;
      for (const c of connectionCounts) {
        await caughtUp(`the previous run (before ${target === gw ? "gateway" : "ceiling"}, ${c} connections)`);
        const messagesBefore = target === gw ? await inputMessages() : 0;
        const { result, cpuUsPerRequest } = await withCpu(target === gw ? gatewayPids : ceilingPids, () =>
          load(target, ingestRequests(devices, perRequest, base + ++run * 100_000_000), { connections: c, duration }),
        );
        const requestsPerMessage = target === gw ? round(result["2xx"] / Math.max(1, (await inputMessages()) - messagesBefore)) : undefined;
        if (result.non2xx > 0 || result.errors > 0) note("WARNING: non-2xx or failed requests", { target, non2xx: result.non2xx, errors: result.errors, status: result.statusCodeStats });
        if (best === undefined || rps(result) > rps(best.result)) best = { result, connections: c, cpuUsPerRequest, ...(requestsPerMessage === undefined ? {} : { requestsPerMessage }) };
      }
      return best!;
    };
    // Ceiling and gateway alternate, round after round, so both see the same background load (this
    // machine is shared); each figure is the median over the rounds of its best connection count.
    const max = new Map<number, { gw: autocannon.Result; ceil: autocannon.Result }>();
    // --half-rate r: skip the maximum-rate runs and measure latency at r requests/s (exploration only)
    const fixedHalf = argv.includes("--half-rate") ? arg(argv, "half-rate", 1000) : undefined;
    // --rate r: the fixed realistic rate (default 1,000 requests/s); --fixed-only: only that rate
    const fixedRate = arg(argv, "rate", 1000);
    for (const n of fixedHalf === undefined && !argv.includes("--fixed-only") ? [1, 10] : []) {
      const rounds: Array<{ g: Awaited<ReturnType<typeof maxRate>>; c: Awaited<ReturnType<typeof maxRate>> }> = [];
      for (let r = 0; r < roundCount; r++) {
        const c = await maxRate(ceil, n);
        const g = await maxRate(gw, n);
        rounds.push({ g, c });
        note(`max rate, ${n} reading(s) per request, round ${r + 1}`, {
          gateway: round(rps(g.result)),
          gatewayConnections: g.connections,
          gatewayCpuUsPerRequest: g.cpuUsPerRequest,
          requestsPerInputMessage: g.requestsPerMessage,
          ceiling: round(rps(c.result)),
          ceilingConnections: c.connections,
          ceilingCpuUsPerRequest: c.cpuUsPerRequest,
          load: loadAverage(),
        });
      }
      const byGateway = [...rounds].sort((x, y) => rps(x.g.result) - rps(y.g.result));
      const g = byGateway[byGateway.length >> 1]!.g;
      const byCeiling = [...rounds].sort((x, y) => rps(x.c.result) - rps(y.c.result));
      const c = byCeiling[byCeiling.length >> 1]!.c;
      const ratios = rounds.map((x) => rps(x.g.result) / rps(x.c.result)).sort((x, y) => x - y);
      max.set(n, { gw: g.result, ceil: c.result });
      const suffix = `${n}-reading${n === 1 ? "" : "s"}`;
      emit({
        name: `requests-per-s.${suffix}`,
        value: round(rps(g.result)),
        unit: "req/s",
        baseline: { name: "bare-fastify-202", value: round(rps(c.result)) },
        detail: {
          rounds: roundCount,
          perRound: rounds.map((x) => [round(rps(x.g.result)), round(rps(x.c.result))]),
          medianRatio: round(ratios[ratios.length >> 1]!),
          connections: g.connections,
          baselineConnections: c.connections,
          cpuUsPerRequest: g.cpuUsPerRequest,
          requestsPerInputMessage: g.requestsPerMessage,
          baselineCpuUsPerRequest: c.cpuUsPerRequest,
          duration,
          devices: devices.length,
        },
      });
      emit({ name: `readings-per-s.${suffix}`, value: round(rps(g.result) * n), unit: "readings/s", baseline: { name: "bare-fastify-202", value: round(rps(c.result) * n) } });
      if (n === 1) emit({ name: "ratio-to-ceiling.1-reading", value: round(ratios[ratios.length >> 1]!), unit: "x", baseline: { name: "target", value: 0.5 } });
      // The same ratio in CPU per request, summed over every process of each side (load generator
      // included): what the gateway would reach if each side had the cores to itself. Steadier than
      // the rate ratio, which rises with background load (the scheduler shares the cores per thread,
      // and the gateway's side runs four busy processes against the ceiling's two).
      const sum = (cpu: Record<string, number>) => Object.values(cpu).reduce((a, b) => a + b, 0);
      const cpuRatios = rounds.map((x) => sum(x.c.cpuUsPerRequest) / sum(x.g.cpuUsPerRequest)).sort((x, y) => x - y);
      const processRatios = rounds.map((x) => (x.c.cpuUsPerRequest.ceiling ?? Number.NaN) / (x.g.cpuUsPerRequest.gateway ?? Number.NaN)).sort((x, y) => x - y);
      emit({
        name: `cpu-ratio-to-ceiling.${suffix}`,
        value: round(cpuRatios[cpuRatios.length >> 1]!),
        unit: "x",
        detail: { perRound: cpuRatios.map((r) => round(r)), gatewayProcessOnly: round(processRatios[processRatios.length >> 1]!) },
      });
    }

    // latency at fixed rates (1 reading per request), with probes that trip a rule each time
    const probes = await Promise.all(Array.from({ length: 4 }, (_, i) => register(`probe-${i}`)));
    for (const p of probes) {
      await fetch(`${gw}/v1/devices/${p.id}/commands`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({ type: "putRule", rule: { id: "probe", channel: "pm", direction: "above", enter: 50, exit: 20, minDurationMs: 0, clearDurationMs: 0 } }),
      });
    }
    const sentAt = new Map<string, number>();
    let alertMs: number[] = [];
    const sub = nc.subscribe(`${PREFIX}.out.alert.*.pm.>`, {
      callback: (_e, m) => {
        const a = decode<{ deviceId: string; at: number; ruleId?: string }>(m.data);
        const t0 = sentAt.get(`${a.deviceId}:${a.at}`);
        if (t0 === undefined || a.ruleId !== "probe") return;
        const now = performance.now();
        alertMs.push(now - t0);
        const stored = storedAt.get(`${a.deviceId}:${a.at}`);
        if (stored !== undefined) storedToAlertMs.push(now - stored);
      },
    });
    // where a probe's time goes: its reading seen on the input subject (stored, on its way to the node)
    // splits reading → alert into the gateway's part and the node's (input stored → alert published)
    const storedAt = new Map<string, number>();
    let storedToAlertMs: number[] = [];
    let sentToStoredMs: number[] = [];
    const names = namesOf(PREFIX);
    const probeIds = new Set(probes.map((p) => p.id));
    // the gateway's messages hold any shards' items (`in.g<k>`); a client's of one shard (`in.<shard>`)
    const inputSubs = [`${names.prefix}.in.*`].map((subject) =>
      nc.subscribe(subject, {
        callback: (_e, m) => {
          const now = performance.now();
          for (const item of decodeBatch(m.data).items) {
            if (!probeIds.has(item.entityId) || item.kind !== "readings") continue;
            // logged as arrays `[t, …]` (docs/design.md §5.1), as maps before
            for (const r of item.payload as Array<{ t: number } | [number]>) {
              const key = `${item.entityId}:${Array.isArray(r) ? r[0] : r.t}`;
              const t0 = sentAt.get(key);
              if (t0 === undefined) continue;
              storedAt.set(key, now);
              sentToStoredMs.push(now - t0);
            }
          }
        },
      }),
    );
    await nc.flush();
    let probeAckMs: number[] = [];
    let probing = false;
    let k = 0;
    // 20 requests per second at most, each a reading that starts or ends the probe rule's event
    const probe = async () => {
      while (probing) {
        const p = probes[k % probes.length]!;
        const n = Math.floor(k / probes.length);
        const t = base + n * 1000;
        const t0 = performance.now();
        sentAt.set(`${p.id}:${t}`, t0);
        const r = await fetch(`${gw}/v1/devices/${p.id}/readings`, {
          method: "POST",
          headers: { authorization: `Bearer ${p.token}`, "content-type": "application/json" },
          body: JSON.stringify({ readings: [{ t, pm: n % 2 === 0 ? 60 : 10 }] }),
        });
        await r.arrayBuffer();
        if (r.status === 202) probeAckMs.push(performance.now() - t0);
        k++;
        await new Promise((res) => setTimeout(res, 50));
      }
    };
    // Each fixed rate, open loop (bench/gateway-load.ts: requests due at an even pace, latency from the
    // due time), gateway and ceiling alternating round after round like the maximum; the probes run
    // during the gateway's rounds. Each latency figure is the median over the rounds; the
    // reading-to-alert p99 is over the probes of all rounds of that rate.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    // Event time of the fixed-rate rounds: each round 5 minutes after the previous one (a device sends
    // at most ~50 readings 1 s apart in a round). A jump of a day, as between the maximum-rate runs,
    // makes every device close its hour and day — aggregates and a daily report each — within the
    // round's first second: a burst no real fleet sends (its devices close their day within the 5
    // minutes after midnight, ~3,300 a second at 1 M devices), and one that decided the alert p99.
    let eventT = base + ++run * 100_000_000;
    const latencyAt = async (rate: number, label: string) => {
      // past the jump to this clock (and any day it closes) before anything is measured
      await openLoad({ url: gw, rate, durationS: 2, warmupS: 0, connections: 128, devices, baseT: (eventT += 300_000), readingsPerRequest: 1 });
      alertMs = [];
      probeAckMs = [];
      storedToAlertMs = [];
      sentToStoredMs = [];
      const rounds: Array<{ g: LoadResult; c: LoadResult; requestsPerMessage: number; publishAckMs: Record<string, number>; inputAgeMs: Record<string, number>; load: number | undefined }> = [];
      for (let r = 0; r < roundCount; r++) {
        await caughtUp(`the previous run (before ${label})`);
        const messagesBefore = await inputMessages();
        const ackBefore = publishAck(await (await fetch(`${gw}/metrics`)).text());
        const nodeBefore = await nodeMetrics();
        const ageBefore = inputAge(nodeBefore);
        probing = true;
        const probeLoop = probe();
        const g = await openLoad({ url: gw, rate, durationS: duration, warmupS: 1, connections: 128, devices, baseT: (eventT += 300_000), readingsPerRequest: 1 });
        probing = false;
        await probeLoop;
        const requestsPerMessage = round((g.status["202"] ?? 0) / Math.max(1, (await inputMessages()) - messagesBefore));
        const publishAckMs = histogramSince(ackBefore, publishAck(await (await fetch(`${gw}/metrics`)).text()));
        const nodeAfter = await nodeMetrics();
        const inputAgeMs = histogramSince(ageBefore, inputAge(nodeAfter));
        // the node's event loop over the round (prom-client resets its delay monitor at every scrape) and its GC pauses
        const gauge = (name: string) => round(1000 * Number(new RegExp(`^${name} (\\S+)`, "m").exec(nodeAfter)?.[1]));
        const gcSince = (kind: string) => {
          const only = (text: string) =>
            text
              .split("\n")
              .filter((line) => line.includes(`kind="${kind}"`))
              .map((line) => line.replace(`,kind="${kind}"`, "").replace(`kind="${kind}",`, "").replace(`{kind="${kind}"}`, ""))
              .join("\n");
          const h = (text: string) => histogram(only(text), "nodejs_gc_duration_seconds");
          return histogramSince(h(nodeBefore), h(nodeAfter));
        };
        const nodeLoop = { lagP99Ms: gauge("nodejs_eventloop_lag_p99_seconds"), lagMaxMs: gauge("nodejs_eventloop_lag_max_seconds"), majorGc: gcSince("major"), minorGc: gcSince("minor") };
        const c = await openLoad({ url: ceil, rate, durationS: duration, warmupS: 1, connections: 128, devices, baseT: base, readingsPerRequest: 1 });
        await caughtUp(label);
        rounds.push({ g, c, requestsPerMessage, publishAckMs, inputAgeMs, load: loadAverage() });
        note(`${label}, round ${r + 1}`, { target: round(rate), gateway: g, ceiling: c, requestsPerInputMessage: requestsPerMessage, publishAckMs, inputAgeMs, nodeLoop, load: loadAverage() });
      }
      await until("last alerts", () => (alertMs.length >= probeAckMs.length - 1 ? true : undefined), 5000).catch(() => undefined);
      const perRound = (f: (x: LoadResult) => number) => rounds.map((x) => [f(x.g), f(x.c)]);
      note(label, { probes: probeAckMs.length, alerts: alertMs.length });
      emit({
        name: `latency-p50-at-${label}`,
        value: median(rounds.map((x) => x.g.latencyMs.p50)),
        unit: "ms",
        baseline: { name: "bare-fastify-202", value: median(rounds.map((x) => x.c.latencyMs.p50)) },
        detail: { rate: round(median(rounds.map((x) => x.g.rate))), perRound: perRound((x) => x.latencyMs.p50) },
      });
      emit({
        name: `latency-p99-at-${label}`,
        value: median(rounds.map((x) => x.g.latencyMs.p99)),
        unit: "ms",
        baseline: { name: "bare-fastify-202", value: median(rounds.map((x) => x.c.latencyMs.p99)) },
        detail: {
          rate: round(median(rounds.map((x) => x.g.rate))),
          target: 20,
          perRound: perRound((x) => x.latencyMs.p99),
          serviceP99PerRound: perRound((x) => x.serviceMs.p99),
          publishAckMsPerRound: rounds.map((x) => x.publishAckMs),
          nodeInputAgeMsPerRound: rounds.map((x) => x.inputAgeMs),
          requestsPerInputMessage: rounds.map((x) => x.requestsPerMessage),
          load: rounds.map((x) => x.load),
        },
      });
      emit({
        name: `reading-to-alert-p99-at-${label}`,
        value: round(percentile(alertMs, 99)),
        unit: "ms",
        baseline: { name: "probe-request-202-p99", value: round(percentile(probeAckMs, 99)) },
        detail: {
          probes: alertMs.length,
          p50: round(percentile(alertMs, 50)),
          target: 50,
          sentToStoredMs: { p50: round(percentile(sentToStoredMs, 50)), p99: round(percentile(sentToStoredMs, 99)), n: sentToStoredMs.length },
          storedToAlertMs: { p50: round(percentile(storedToAlertMs, 50)), p99: round(percentile(storedToAlertMs, 99)), max: round(Math.max(...storedToAlertMs)), n: storedToAlertMs.length },
        },
      });
    };
    // the realistic load of issue #16 §3 (--rate r, default 1,000 requests/s: 300,000 Foobots), then
    // half the gateway's maximum rate when it was measured (or --half-rate)
    await latencyAt(fixedRate, `${fixedRate}-rps`);
    if (fixedHalf !== undefined || max.has(1)) await latencyAt(fixedHalf ?? rps(max.get(1)!.gw) / 2, "half-rate");
    sub.unsubscribe();
    for (const s of inputSubs) s.unsubscribe();

    // sanity: what the gateway counted matches what autocannon saw accepted
    const metrics = await (await fetch(`${gw}/metrics`)).text();
    const accepted = Number(/^airtwin_gateway_readings_accepted_total (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
    const sum = Number(/^airtwin_gateway_publish_ack_seconds_sum (\S+)/m.exec(metrics)?.[1]);
    const count = Number(/^airtwin_gateway_publish_ack_seconds_count (\S+)/m.exec(metrics)?.[1]);
    const requests = Number(/^airtwin_gateway_ingest_batch_readings_count (\S+)/m.exec(metrics)?.[1]);
    note("gateway counted", { readingsAccepted: accepted, publishAckMeanMs: round((1000 * sum) / count), requestsPerInputMessage: round(requests / (await inputMessages())) });
  } finally {
    await nc.close();
    await stop(gateway.proc);
    await stop(node.proc);
    await stop(ceiling.proc);
    note("gateway suite done", { s: Math.round((performance.now() - started) / 1000) });
  }
}
