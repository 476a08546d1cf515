// `node bin/bench.js gateway-cpu [--devices n] [--rate r] [--seconds s] [--rounds k] [--prime-rate r] [--baseline-root dir[,dir…]] [--profile dir] [--variant-v8 flags]`
//
// The gateway's CPU per request in the fleet's shape (issue #16 §2): 1 reading per request at a fixed
// rate (default 1,000/s), open loop over keep-alive connections (bench/gateway-load.ts); the load walks
// through --devices (default 50,000, registered through the bulk import), so a device posts again only
// after devices/rate seconds and never twice in a run. Before the measured runs every device posts once
// to each gateway (a fleet's steady state: the gateway has seen each device before; --prime-rate,
// default 2,500/s). One private nats-server and one `airtwin node`; the gateway of this checkout and,
// with --baseline-root, the gateways of other checkouts (same cluster, same registry); and the floor:
// a bare fastify route answering 202 (bench/gateway-ceiling.ts). Rounds alternate gateway, baselines,
// floor; each figure is the median over the rounds of the process's own CPU (user + system, /proc)
// over its run divided by its requests. Fewer devices than the gateway's rate limiter keeps windows for
// (100,000) never evict one: a fleet-sized --devices does (docs/BENCHMARKS.md, "Gathering requests into
// fewer messages, and §2 met", item 1, found in the fleet bench's gateway profile, not here).
// --profile dir: the gateway of this checkout writes a V8 CPU profile there on exit (summarised on stderr).
// --variant-v8="flags": one more gateway of this checkout, started with these V8 flags (e.g. --variant-v8=--max-semi-space-size=64;
// every other gateway here starts without any, as other checkouts' gateways would, so the code is compared alone).
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { freePort } from "../cli/dev.ts";
import { child, openLoad, stop, until, untilServing } from "./gateway.ts";
import { int, parseArgs, str } from "./lib/args.ts";
import { benchSystemEnv } from "./lib/bench-system.ts";
import { summarizeProfile } from "./lib/cpuprofile.ts";
import { deviceId } from "./lib/fleet.ts";
import { emit, note, round } from "./lib/report.ts";
import { cpuSeconds, loadAverage } from "./peers/workload.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ADMIN = "bench-admin-token-0123456789abcdef";
const PREFIX = "bgc";

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const devices = int(args, "devices", 50_000);
  const rate = int(args, "rate", 1000);
  const seconds = int(args, "seconds", 20);
  const rounds = int(args, "rounds", 3);
  const baselineRoots = args.has("baseline-root") ? str(args, "baseline-root").split(",") : [];
  const profileDir = args.has("profile") ? str(args, "profile") : undefined;
  const variantV8 = args.has("variant-v8") ? str(args, "variant-v8").split(" ").filter((f) => f !== "") : [];
  note("gateway-cpu", { devices, rate, seconds, rounds, baselineRoots, load: loadAverage() });

  await using ns = await startNatsServer();
  const env = {
    ...benchSystemEnv(ns.url, PREFIX, ADMIN),
  };
  const metricsPort = await freePort("127.0.0.1");
  const node = child([join(ROOT, "bin", "airtwin.js"), "node"], { ...env, AIRTWIN_NODE_ID: "cpu-node-1", AIRTWIN_METRICS_PORT: String(metricsPort) }, "node");
  const gateway = async (root: string, name: string, flags: string[] = []) => {
    const port = await freePort("127.0.0.1");
    return { name, url: `http://127.0.0.1:${port}`, ...child([...flags, join(root, "bin", "airtwin.js"), "gateway"], { ...env, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: "127.0.0.1" }, name) };
  };
  const ours = await gateway(ROOT, "gateway", profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]);
  const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
  const targets = [ours];
  try {
    // the node creates the cluster; the gateways start on it one after the other
    await untilServing(ours.url, admin);
    for (const root of baselineRoots) {
      const base = await gateway(root, `gateway of ${root}`);
      targets.push(base);
      await untilServing(base.url, admin);
    }
    if (variantV8.length > 0) {
      const variant = await gateway(ROOT, `gateway ${variantV8.join(" ")}`, variantV8);
      targets.push(variant);
      await untilServing(variant.url, admin);
    }
    const floorPort = await freePort("127.0.0.1");
    const floor = { name: "bare fastify", url: `http://127.0.0.1:${floorPort}`, ...child(["--import", "tsx", join(ROOT, "bench", "gateway-ceiling.ts"), String(floorPort)], {}, "ceiling") };
    await until("ceiling listening", () => (floor.output().includes("listening") ? true : undefined));
    targets.push(floor);

    await fetch(`${ours.url}/v1/users`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "cpu" }) });
    const fleet: Array<{ id: string; token: string }> = new Array(devices);
    const pool = new Pool(ours.url, { connections: 8 });
    const CHUNK = 5000;
    for (let i = 0; i < devices; i += CHUNK) {
      const entries = Array.from({ length: Math.min(CHUNK, devices - i) }, (_, k) => ({ deviceId: deviceId(i + k), ownerId: "cpu" }));
      const r = await pool.request({ method: "POST", path: "/v1/devices/import", headers: admin, body: JSON.stringify({ devices: entries }) });
      const body = (await r.body.json()) as { devices: Array<{ deviceId: string; token?: string; code?: string }> };
      body.devices.forEach((d, k) => {
        if (d.token === undefined) throw new Error(`device ${d.deviceId} not registered: ${d.code}`);
        fleet[i + k] = { id: d.deviceId, token: d.token };
      });
    }
    await pool.close();
    note("registered", { devices });
    // every gateway's view has the last device (a 202 from each)
    const last = fleet[devices - 1]!;
    for (const t of targets.slice(0, -1)) {
      await until(`${t.name} knows the devices`, async () => {
        const r = await fetch(`${t.url}/v1/devices/${last.id}/readings`, { method: "POST", headers: { authorization: `Bearer ${last.token}`, "content-type": "application/json" }, body: JSON.stringify({ readings: [{ t: Date.UTC(2025, 0, 1), co2: 500 }] }) });
        return r.status === 202 ? true : undefined;
      });
    }

    // each run takes the next devices, so no device posts twice in a run and rarely twice in the bench
    let offset = 0;
    const slice = (n: number) => {
      const out = Array.from({ length: n }, (_, k) => fleet[(offset + k) % devices]!);
      offset = (offset + n) % devices;
      return out;
    };
    let baseT = Date.now() - 30 * 86_400_000;
    const run = async (t: (typeof targets)[number], durationS: number) => {
      const job = { url: t.url, rate, durationS, warmupS: 0, connections: 128, devices: slice(rate * durationS), baseT: (baseT += 300_000), readingsPerRequest: 1 };
      const cpu0 = cpuSeconds(t.proc.pid!);
      const result = await openLoad(job);
      const cpuS = cpuSeconds(t.proc.pid!) - cpu0;
      return { cpuUsPerRequest: (cpuS * 1e6) / Math.max(1, result.sent), accepted: result.status["202"] ?? 0, sent: result.sent, p99: result.latencyMs.p99 };
    };
    // the steady state of a fleet: every device has posted to every gateway before (its verified
    // token known), one pass over all devices at a faster pace; then JIT, connections, the node's shards
    const primeRate = int(args, "prime-rate", 2500);
    for (const t of targets.slice(0, -1)) {
      const primed = await openLoad({ url: t.url, rate: primeRate, durationS: Math.ceil(devices / primeRate), warmupS: 0, connections: 128, devices: fleet, baseT: (baseT += 300_000), readingsPerRequest: 1 });
      note(`${t.name} primed`, { sent: primed.sent, accepted: primed.status["202"] ?? 0 });
    }
    for (const t of targets) await run(t, 5);
    const perTarget = new Map<string, Array<Awaited<ReturnType<typeof run>>>>(targets.map((t) => [t.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        const m = await run(t, seconds);
        if (m.accepted !== m.sent) note(`${t.name}: not every request answered 202`, m);
        perTarget.get(t.name)!.push(m);
        note(`round ${r + 1}: ${t.name}`, { cpuUsPerRequest: round(m.cpuUsPerRequest), p99Ms: m.p99, load: loadAverage() });
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const figure = (name: string) => round(median(perTarget.get(name)!.map((m) => m.cpuUsPerRequest)));
    emit({
      suite: "gateway-cpu",
      name: `gateway-cpu-per-request.${rate}-rps`,
      value: figure("gateway"),
      unit: "µs CPU of the gateway process per request of 1 reading",
      baseline: baselineRoots[0] !== undefined ? { name: `gateway of ${baselineRoots[0]}`, value: figure(`gateway of ${baselineRoots[0]}`) } : { name: "bare fastify", value: figure("bare fastify") },
      detail: { floor: figure("bare fastify"), devices, rate, seconds, rounds, perRound: Object.fromEntries([...perTarget].map(([k, v]) => [k, v.map((m) => round(m.cpuUsPerRequest))])), load: loadAverage() },
    });
    await stop(floor.proc);
  } finally {
    for (const t of targets.filter((x) => x.name !== "bare fastify")) await stop(t.proc);
    await stop(node.proc);
  }
  if (profileDir !== undefined) {
    const file = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile")).sort().at(-1);
    if (file !== undefined) process.stderr.write(summarizeProfile(join(profileDir, file), 25) + "\n");
  }
}
