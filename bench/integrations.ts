// Integrations (`npm run bench -- integrations [--quick]`), two figures, each next to its baseline from
// the same run:
//
// 1. delivery throughput: deliveries/s of the webhook integration (the SDK runner: consumer, the
//    subscription checked against the twin's published list, a Standard Webhooks POST, ack) draining a
//    backlog of integration messages to a local no-op HTTP endpoint (its own process, 204 to everything)
//    — against a plain loop of undici requests with the same bodies, concurrency and connections to the
//    same endpoint. Target ≥ 0.5× the loop. Alternating runs, medians. `--memory-out` keeps the output
//    stream in memory, to tell the runner's cost from nats-server's file-store reads of the backlog.
// 2. reading → webhook latency: `airtwin gateway`, `airtwin node` and `airtwin integrations --providers
//    webhook` processes, the gateway ingesting 1,000 requests/s (open loop, bench/gateway-load.ts) while
//    probe devices send readings that trip an instant rule; latency from sending the probe's request to
//    the webhook request arriving at the partner (in this process). Target p99 < 100 ms.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Agent, request } from "undici";
import { deviceTwinBehavior, TWIN_TYPE, TwinInputKinds } from "../actors/device-twin/behavior.ts";
import type { Alert } from "../actors/device-twin/domain/mod.ts";
import { IntegrationMetrics } from "../gateways/integrations/metrics.ts";
import { runIntegration } from "../gateways/integrations/runner.ts";
import { webhookBody, webhookIntegration } from "../gateways/integrations/webhook/webhook.ts";
import { outputStreamConfig } from "../runtime/cluster-setup.ts";
import { connectNats, encode, ensureClusterForClients, msgpackHeaders, names, RuntimeClient, startNode } from "../runtime/mod.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { flag, int, parseArgs } from "./lib/args.ts";
import { emit, median, note, percentile, round } from "./lib/report.ts";
import type { LoadJob, LoadResult } from "./gateway-load.ts";
import { untilServing } from "./gateway.ts";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "airtwin.js");
const SUITE = "integrations";
const CONCURRENCY = 64;

const NOOP = `
const http = require("node:http");
const server = http.createServer((req, res) => { req.resume(); req.on("end", () => { res.writeHead(204); res.end(); }); });
server.keepAliveTimeout = 30000;
server.listen(0, "127.0.0.1", () => process.stdout.write(String(server.address().port) + "\\n"));
`;

function spawnChild(args: string[], env: Record<string, string>, name: string): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  proc.once("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM" && signal !== "SIGKILL") note(`${name} exited`, { code, signal, tail: out.slice(-1500) });
  });
  return { proc, output: () => out };
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await Promise.resolve(fn()).catch(() => undefined);
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc; 0 where /proc is missing. */
function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

/** CPU ms of each process since the meter was made: where a delivery's cost lands. */
function cpuMeter(pids: Record<string, number>): () => Record<string, number> {
  const at = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
  return () => Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid) - at[k]!]));
}

/** The monotonic clock in ms, as a --cpu-prof timeline has it (phases of a round, to read a profile by). */
const hrMs = (): number => Math.round(Number(process.hrtime.bigint() / 1000n) / 1000);

async function noopServer(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ["-e", NOOP], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve) => proc.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, proc };
}

/** Deliveries/s of the webhook runner vs requests/s of a plain undici loop. */
async function throughput(o: { messages: number; rounds: number; devices: number; memoryOut: boolean }): Promise<void> {
  await using ns = await startNatsServer();
  const prefix = `bi${process.pid}`;
  const shards = 8;
  const nc = await connectNats({ servers: ns.url, name: "bench integrations" });
  if (o.memoryOut) {
    // the output stream in memory: the runner measured without nats-server 2.9's file-store reads (see BENCHMARKS)
    await (await jetstreamManager(nc)).streams.add({ ...outputStreamConfig(names(prefix), { shards, streams: 1, replicas: 1 }), storage: StorageType.Memory });
  }
  await ensureClusterForClients(nc, names(prefix), { shards, streams: 1, replicas: 1 });
  const nodeNc = await connectNats({ servers: ns.url, name: "bench node" });
  const node = await startNode({
    nc: nodeNc, nodeId: "bench-node", prefix, shards, streams: 1, replicas: 1,
    behaviors: [deviceTwinBehavior()], defaultMetrics: false, log: () => undefined,
  });
  const client = new RuntimeClient(nc, { prefix, shards });
  const sink = await noopServer();
  const js = jetstream(nc);
  const deviceIds = Array.from({ length: o.devices }, (_, i) => `bench-${i}`);
  await until("twins answer", async () => (await Promise.all(deviceIds.slice(0, 32).map((d) => client.get(TWIN_TYPE, d, null, { timeoutMs: 500 })))).every((r) => r.ok));
  for (const d of deviceIds) {
    const r = await client.command(TWIN_TYPE, d, TwinInputKinds.command, { type: "subscribe", subscription: { id: "hook", provider: "webhook", match: {}, target: `${sink.url}/hook` } });
    if (!r.ok) throw new Error(`subscribe ${d}: ${r.error.message}`);
  }
  const alertOf = (round: number, i: number): Alert => {
    const deviceId = deviceIds[i % deviceIds.length]!;
    const at = Date.now();
    return { id: `${deviceId}:default-co2:${round}-${i}:start`, deviceId, ruleId: "default-co2", channel: "co2", kind: "event.start", at, value: 1500, threshold: 1400, eventId: `${deviceId}:default-co2:${round}-${i}`, startedAt: at };
  };
  const publishBacklog = async (round: number) => {
    for (let i = 0; i < o.messages; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, o.messages - i) }, (_, k) => {
        const alert = alertOf(round, i + k);
        return js.publish(`${prefix}.out.integration.webhook.${alert.deviceId}`, encode({ subscriptionId: "hook", target: `${sink.url}/hook`, alert }), { msgID: `${alert.id}:hook`, headers: msgpackHeaders() });
      }));
    }
  };

  const runner: number[] = [];
  const loop: number[] = [];
  const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  try {
    for (let run = 0; run < o.rounds + 1; run++) {
      const measured = run > 0; // round 0 warms both (JIT, connections)
      // baseline: the same number of POSTs with the same body and headers, CONCURRENCY in flight, 16 connections
      const body = webhookBody({ alert: alertOf(run, 0) });
      let next = 0;
      const pids = { bench: process.pid, nats: ns.pid, partner: sink.proc.pid! };
      const loopCpu = cpuMeter(pids);
      const loopElu = performance.eventLoopUtilization();
      const loopFrom = hrMs();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < o.messages) {
          const res = await request(`${sink.url}/hook`, { method: "POST", dispatcher: agent, body, headers: { "content-type": "application/json", "webhook-id": "x", "webhook-timestamp": "1" } });
          await res.body.dump();
        }
      }));
      const loopRate = o.messages / ((performance.now() - t0) / 1000);
      const loopSpent = loopCpu();
      const loopBusy = performance.eventLoopUtilization(loopElu).utilization;
      const loopTo = hrMs();

      await publishBacklog(run);
      const metrics = new IntegrationMetrics();
      const runnerCpu = cpuMeter(pids);
      const runnerElu = performance.eventLoopUtilization();
      const runnerFrom = hrMs();
      const t1 = performance.now();
      // its own connection per round, closed after it like a process that stops: a pull request the
      // closed runner left on a still-open connection would take messages to nobody until the ack wait
      const rnc = await connectNats({ servers: ns.url, name: "bench runner" });
      const def = webhookIntegration({ allowPrivate: true, concurrency: CONCURRENCY, connectionsPerOrigin: 16 });
      let firstAt = 0;
      const deliver = def.deliver.bind(def);
      def.deliver = (d, c) => ((firstAt ||= performance.now()), deliver(d, c));
      const running = await runIntegration(def, { nc: rnc, prefix, twins: client, metrics, drainMs: 5000 });
      const startedAt = performance.now();
      await until("backlog delivered", async () => ((await metrics.delivered.get()).values[0]?.value ?? 0) >= o.messages, 600_000);
      const runnerRate = o.messages / ((performance.now() - t1) / 1000);
      const runnerSpent = runnerCpu();
      const runnerBusy = performance.eventLoopUtilization(runnerElu).utilization;
      const runnerTo = hrMs();
      await running.close();
      await rnc.close();
      const retried = (await metrics.retried.get()).values[0]?.value ?? 0;
      const attempt = (await metrics.deliverySeconds.get()).values;
      const attemptMs = ((attempt.find((v) => v.metricName?.endsWith("_sum"))?.value ?? 0) / Math.max(1, attempt.find((v) => v.metricName?.endsWith("_count"))?.value ?? 1)) * 1000;
      note(measured ? "round" : "warm-up", { run, runner: Math.round(runnerRate), loop: Math.round(loopRate), ratio: round(runnerRate / loopRate), retried, meanAttemptMs: round(attemptMs), startMs: Math.round(startedAt - t1), firstMs: Math.round(firstAt - t1), heapMB: Math.round(process.memoryUsage().heapUsed / 1e6) });
      // CPU µs per message of each process (bench: the loop or the runner), and the phases on the monotonic clock
      const perMessage = (spent: Record<string, number>) => Object.fromEntries(Object.entries(spent).map(([k, ms]) => [k, Math.round((ms * 1000) / o.messages)]));
      // eventLoopBusy: the bench process's event-loop utilization in each window (near 1: bound by its CPU)
      note("cpu µs per message", { run, loop: perMessage(loopSpent), runner: perMessage(runnerSpent), eventLoopBusy: { loop: round(loopBusy), runner: round(runnerBusy) }, loopMs: [loopFrom, loopTo], runnerMs: [runnerFrom, runnerTo] });
      if (measured) {
        runner.push(runnerRate);
        loop.push(loopRate);
      }
    }
  } finally {
    await agent.close();
    sink.proc.kill("SIGKILL");
    await client.close();
    await node.close();
    await nodeNc.close();
    await nc.close();
  }
  const ratios = runner.map((r, i) => r / loop[i]!);
  emit({
    suite: SUITE, name: "webhook-deliveries-per-s", value: round(median(runner)), unit: "deliveries/s",
    baseline: { name: "undici-loop-requests-per-s", value: round(median(loop)) },
    detail: { ratio: round(median(ratios)), ratios: ratios.map((r) => round(r)), messages: o.messages, concurrency: CONCURRENCY, devices: o.devices, outputStorage: o.memoryOut ? "memory" : "file", target: "≥ 0.5× the loop" },
  });
}

/** Reading → webhook latency while the gateway ingests `rate` requests/s. */
async function latency(o: { rate: number; durationS: number; probesPerS: number }): Promise<void> {
  await using ns = await startNatsServer();
  const ADMIN = "bench-admin-token-0123456789abcdef";
  const env = { NATS_URL: ns.url, AIRTWIN_PREFIX: `bl${process.pid}`, AIRTWIN_ADMIN_TOKEN: ADMIN, AIRTWIN_LOG_LEVEL: "warn", AIRTWIN_INGEST_RATE_MAX: "1000000000", AIRTWIN_SHARDS: "16" };
  const arrivals = new Map<string, number>();
  const partner = createHttpServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      const { data } = JSON.parse(Buffer.concat(chunks).toString()) as { data: Alert };
      arrivals.set(`${data.deviceId}@${data.at}`, at);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((ok) => partner.listen(0, "127.0.0.1", ok));
  const partnerUrl = `http://127.0.0.1:${(partner.address() as { port: number }).port}`;
  const gwPort = await new Promise<number>((resolve) => {
    const s = createHttpServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const procs = [
    spawnChild([BIN, "node"], { ...env, AIRTWIN_NODE_ID: "bench-n1" }, "node"),
    spawnChild([BIN, "gateway"], { ...env, AIRTWIN_HTTP_PORT: String(gwPort), AIRTWIN_HTTP_HOST: "127.0.0.1" }, "gateway"),
    spawnChild([BIN, "integrations", "--providers", "webhook"], { ...env, AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1", AIRTWIN_METRICS_PORT: "0" }, "integrations"),
  ];
  const gw = `http://127.0.0.1:${gwPort}`;
  const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
  const post = async (path: string, body: unknown, headers: Record<string, string>) => {
    const r = await fetch(`${gw}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${text}`);
    return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  };
  try {
    await untilServing(gw, admin);
    await until("integrations ready", () => procs[2]!.output().includes('"integrations ready"'));
    const { apiKey } = (await post("/v1/users", { userId: "bench" }, admin)) as { apiKey: string };
    const register = async (id: string) => ({ id, token: ((await post("/v1/devices", { deviceId: id, ownerId: "bench" }, admin)) as { token: string }).token });
    const background: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < 500; i += 100) background.push(...(await Promise.all(Array.from({ length: 100 }, (_, k) => register(`load-${i + k}`)))));
    const probes = await Promise.all(Array.from({ length: 20 }, (_, k) => register(`probe-${k}`)));
    const user = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
    for (const p of probes) {
      await post(`/v1/devices/${p.id}/commands`, { type: "putRule", rule: { id: "co2-now", channel: "co2", direction: "above", enter: 1000, exit: 800, minDurationMs: 0, clearDurationMs: 0 } }, user);
      await post(`/v1/devices/${p.id}/commands`, { type: "subscribe", subscription: { id: "hook", provider: "webhook", match: { kinds: ["event.start"] }, target: `${partnerUrl}/hook` } }, user);
    }
    note("latency setup done", { background: background.length, probes: probes.length, rate: o.rate });

    const job: LoadJob = { url: gw, rate: o.rate, durationS: o.durationS, warmupS: 3, connections: 32, devices: background, baseT: Date.now() - 30 * 86_400_000, readingsPerRequest: 1 };
    const loadProc = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench", "gateway-load.ts")], { stdio: ["pipe", "pipe", "pipe"] });
    let loadOut = "";
    loadProc.stdout.on("data", (d: Buffer) => (loadOut += d.toString()));
    const loadDone = new Promise<number | null>((r) => loadProc.once("exit", r));
    loadProc.stdin.end(JSON.stringify(job));

    // probes during the measured seconds: a pair [600, 1500] per request trips the instant rule once
    await new Promise((r) => setTimeout(r, 3000));
    const sent = new Map<string, number>();
    const probeAgent = new Agent({ connections: 4 });
    const seq = new Array<number>(probes.length).fill(0);
    const base = Date.now() - 86_400_000;
    const end = performance.now() + o.durationS * 1000 - 1000;
    let k = 0;
    while (performance.now() < end) {
      const i = k++ % probes.length;
      const p = probes[i]!;
      const t = base + seq[i]!++ * 2000;
      const key = `${p.id}@${t + 1000}`;
      sent.set(key, performance.now());
      void request(`${gw}/v1/devices/${p.id}/readings`, {
        method: "POST", dispatcher: probeAgent, headers: { authorization: `Bearer ${p.token}`, "content-type": "application/json" },
        body: JSON.stringify({ readings: [{ t, co2: 600 }, { t: t + 1000, co2: 1500 }] }),
      }).then((r) => r.body.dump());
      await new Promise((r) => setTimeout(r, 1000 / o.probesPerS));
    }
    await loadDone;
    const load = JSON.parse(loadOut) as LoadResult;
    await until("probe deliveries", () => [...sent.keys()].every((key) => arrivals.has(key)) || undefined, 30_000).catch(() => undefined);
    await probeAgent.close();
    const lat = [...sent].filter(([key]) => arrivals.has(key)).map(([key, at]) => arrivals.get(key)! - at);
    const lost = sent.size - lat.length;
    const integrationsLeg = await endToEndBuckets(procs[2]!.output()).catch((err: unknown) => ({ error: String(err) }));
    emit({
      suite: SUITE, name: "reading-to-webhook-p99-ms", value: round(percentile(lat, 99)), unit: "ms",
      detail: {
        p50: round(percentile(lat, 50)), p90: round(percentile(lat, 90)), max: round(Math.max(...lat)), samples: lat.length, notDelivered: lost,
        gatewayRate: o.rate, gatewayStatus: load.status, integrationsLeg, target: "< 100 ms",
      },
    });
  } finally {
    for (const p of procs) p.proc.kill("SIGTERM");
    await Promise.all(procs.map((p) => new Promise((r) => (p.proc.exitCode !== null ? r(null) : p.proc.once("exit", r)))));
    partner.close();
  }
}

/**
 * The integrations process's share of the latency: its `airtwin_integration_end_to_end_seconds` histogram
 * (the twin's publish on the output stream → the partner's 2xx), as deliveries at or under each bound.
 */
async function endToEndBuckets(output: string): Promise<Record<string, number>> {
  const url = /"metrics":"([^"]+)"/.exec(output)?.[1];
  if (url === undefined) throw new Error("the integrations process printed no metrics URL");
  const text = await (await fetch(url)).text();
  const buckets: Record<string, number> = {};
  for (const m of text.matchAll(/^airtwin_integration_end_to_end_seconds_bucket\{le="([^"]+)",provider="webhook"\} (\d+)$/gm)) {
    if (Number(m[1]) <= 0.25 || m[1] === "+Inf") buckets[m[1] === "+Inf" ? "all" : `≤${Number(m[1]) * 1000}ms`] = Number(m[2]);
  }
  return buckets;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  // --only throughput|latency; --memory-out: the throughput rounds with the output stream in memory
  const only = args.get("only");
  note("machine", { loadavg: (await import("node:os")).loadavg().map((x) => round(x, 2)) });
  if (only !== "latency") await throughput({ messages: int(args, "messages", quick ? 2000 : 10_000), rounds: int(args, "rounds", quick ? 1 : 3), devices: int(args, "devices", 100), memoryOut: flag(args, "memory-out") });
  if (only !== "throughput") await latency({ rate: int(args, "rate", 1000), durationS: int(args, "duration", quick ? 8 : 20), probesPerS: 10 });
}
