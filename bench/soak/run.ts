// `npm run soak -- --minutes 30`: the whole system as processes (one nats-server, two nodes, a gateway,
// the archive on PGlite, the webhook integration with a local partner) under a steady simulated fleet
// (`airtwin simulate`), with a planned shard move every --move-every-s and a fault (kill -9 and restart of
// a node, the archive or the integrations, in turn) every --fault-every-s. Every --sample-s it records
// heap, RSS and CPU of each process, the nodes' and the archive's lag, and the latency of probe
// requests (an ingest and a live read each second) to <out>/soak.csv and <out>/soak.html; at the end it
// checks that nothing grew past its steady state (last third against middle third) and exits 1 if
// something did. Not part of `npm test`: results and commands go to docs/RELIABILITY.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, resolve } from "node:path";
import { spawnNatsServer } from "../../deploy/local-nats.ts";
import { int, parseArgs, str } from "../lib/args.ts";
import { chartHtml, steadyState, toCsv, type Row } from "./report.ts";
import { Role } from "./role.ts";
import { archiveLag, heapMb, metricValues, nodeLag, procFigures, quantile } from "./sample.ts";

const usage = `usage: npm run soak -- [--minutes 30] [--devices 200] [--rate 40] [--sample-s 10] [--move-every-s 60] [--fault-every-s 120] [--out DIR]`;

const args = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n${usage}\n`);
    process.exit(2);
  }
})();
if (args.has("help")) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const minutes = Number(str(args, "minutes", "30"));
const devices = int(args, "devices", 200);
const rate = int(args, "rate", 40);
const sampleMs = int(args, "sample-s", 10) * 1000;
const moveEveryMs = int(args, "move-every-s", 60) * 1000;
const faultEveryMs = int(args, "fault-every-s", 120) * 1000;
const out = resolve(str(args, "out", join(".airtwin", "soak", new Date().toISOString().replace(/[:.]/g, "-"))));
if (!(minutes > 0)) throw new Error(`--minutes must be positive, got ${minutes}`);

const logDir = join(out, "logs");
const dataDir = join(out, "data");
mkdirSync(logDir, { recursive: true });
mkdirSync(dataDir, { recursive: true });
const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The webhook partner: answers 204, counts deliveries. */
async function startPartner(): Promise<{ server: Server; url: string; deliveries: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      n++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, deliveries: () => n };
}

const nats = await spawnNatsServer({ config: { port: -1, host: "127.0.0.1", jetstream: { storeDir: join(dataDir, "nats") } }, workDir: join(dataDir, "nats") });
const adminToken = randomBytes(18).toString("base64url");
const env: Record<string, string> = {
  NATS_URL: nats.url,
  AIRTWIN_PREFIX: "soak",
  AIRTWIN_SHARDS: "16",
  AIRTWIN_ADMIN_TOKEN: adminToken,
  AIRTWIN_DATA_DIR: dataDir,
  AIRTWIN_LOG_LEVEL: "info",
};
const node1 = new Role("node-1", ["node"], { ...env, AIRTWIN_NODE_ID: "soak-n1", AIRTWIN_METRICS_PORT: "0" }, logDir);
const node2 = new Role("node-2", ["node"], { ...env, AIRTWIN_NODE_ID: "soak-n2", AIRTWIN_METRICS_PORT: "0" }, logDir);
const gateway = new Role("gateway", ["gateway"], { ...env, AIRTWIN_HTTP_HOST: "127.0.0.1", AIRTWIN_HTTP_PORT: String(await freePort()) }, logDir);
const archive = new Role("archive", ["archive"], { ...env, AIRTWIN_METRICS_PORT: "0" }, logDir);
const integrations = new Role("integrations", ["integrations", "--providers", "webhook"], { ...env, AIRTWIN_METRICS_PORT: "0", AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1" }, logDir);
const roles = [node1, node2, gateway, archive, integrations];
const partner = await startPartner();

say(`soak: ${minutes} min, ${devices} devices at ${rate} readings/s; output in ${out}`);
await Promise.all([node1.start(), node2.start()]);
await gateway.start();
await Promise.all([archive.start(), integrations.start()]);
const gw = gateway.url!;
const admin = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = admin) => {
  const r = await fetch(`${gw}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await r.text();
  return { status: r.status, json: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>) };
};
say(`system up: gateway ${gw}, NATS ${nats.url}`);

// the fleet: steady load for the whole run
const simLog = createWriteStream(join(logDir, "simulate.log"));
const sim = spawn(
  process.execPath,
  [join(import.meta.dirname, "..", "..", "bin", "airtwin.js"), "simulate", "--gateway", gw, "--admin-token", adminToken, "--devices", String(devices), "--rate", String(rate), "--id-prefix", "soak", "--quiet", "--duration", `${Math.ceil(minutes * 60) + 120}s`],
  { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
);
sim.stdout.pipe(simLog);
sim.stderr.pipe(simLog);

// rules and webhook subscriptions on the first devices, once the simulator registered them
const listed = async () => ((await api("GET", "/v1/devices")).json?.devices as Array<{ deviceId: string }> | undefined) ?? [];
let fleet: Array<{ deviceId: string }> = [];
for (const deadline = Date.now() + 120_000; fleet.length < devices && Date.now() < deadline; await new Promise((r) => setTimeout(r, 1000))) fleet = await listed();
for (const { deviceId } of fleet.slice(0, 10)) {
  await api("POST", `/v1/devices/${deviceId}/commands`, { type: "putRule", rule: { id: "co2", channel: "co2", direction: "above", enter: 900, exit: 800, minDurationMs: 0, clearDurationMs: 0 } });
  await api("POST", `/v1/devices/${deviceId}/commands`, { type: "subscribe", subscription: { id: "hook", provider: "webhook", match: {}, target: `${partner.url}/${deviceId}` } });
}
// the probe device: one reading and one live read each second, timed
await api("POST", "/v1/users", { userId: "soak-probe" });
const probeToken = (await api("POST", "/v1/devices", { deviceId: "soak-probe", ownerId: "soak-probe" })).json!.token as string;
let ingestMs: number[] = [];
let readMs: number[] = [];
let probeFailures = 0;
const probe = setInterval(() => {
  void (async () => {
    try {
      let t0 = performance.now();
      const post = await api("POST", "/v1/devices/soak-probe/readings", { readings: [{ t: Date.now(), pm: 10, co2: 600 }] }, { authorization: `Bearer ${probeToken}`, "content-type": "application/json" });
      if (post.status === 202) ingestMs.push(performance.now() - t0);
      else probeFailures++;
      t0 = performance.now();
      const read = await api("GET", "/v1/devices/soak-probe");
      if (read.status === 200) readMs.push(performance.now() - t0);
      else probeFailures++;
    } catch {
      probeFailures++;
    }
  })();
}, 1000);

// planned moves and faults
let moves = 0;
let faults = 0;
let busy = false;
const faultTargets = [node2, archive, integrations, node1];
const mover = setInterval(() => {
  void (async () => {
    if (busy) return;
    const cluster = (await api("GET", "/v1/ops/cluster")).json as { shards?: Array<{ shard: number; owner: string | null }> } | undefined;
    const shard = cluster?.shards?.[moves % 16];
    if (shard?.owner == null) return;
    const to = shard.owner === "soak-n1" ? "soak-n2" : "soak-n1";
    if ((await api("POST", `/v1/ops/shards/${shard.shard}/move`, { node: to })).status === 200) moves++;
  })().catch(() => undefined);
}, moveEveryMs);
const faulter = setInterval(() => {
  if (busy) return;
  busy = true;
  const target = faultTargets[faults % faultTargets.length]!;
  faults++;
  say(`fault ${faults}: kill -9 ${target.name}, restart`);
  void target.crashAndRestart().catch((err: unknown) => say(`${target.name} did not come back: ${(err as Error).message}`)).finally(() => (busy = false));
}, faultEveryMs);

// sampling
const rows: Row[] = [];
const columns = ["t_s", ...roles.flatMap((r) => [`${r.name}_heap_mb`, `${r.name}_rss_mb`, `${r.name}_cpu`]), "node_lag", "archive_lag", "ingest_p50_ms", "ingest_p99_ms", "read_p50_ms", "read_p99_ms", "accepted_per_s", "deliveries", "moves", "faults"];
const lastCpu = new Map<string, number>();
let lastAccepted: number | undefined;
const started = Date.now();
const csvPath = join(out, "soak.csv");
async function sample(): Promise<void> {
  const row: Row = { t_s: (Date.now() - started) / 1000 };
  let lagNodes = 0;
  for (const r of roles) {
    const proc = r.pid === undefined ? undefined : procFigures(r.pid);
    if (proc !== undefined) {
      row[`${r.name}_rss_mb`] = proc.rssMb;
      const prev = lastCpu.get(r.name);
      // a restarted process is another pid: its CPU counts from 0 again
      if (prev !== undefined && proc.cpuSeconds >= prev) row[`${r.name}_cpu`] = (proc.cpuSeconds - prev) / (sampleMs / 1000);
      lastCpu.set(r.name, proc.cpuSeconds);
    }
    const text = r.metricsUrl === undefined ? undefined : await fetch(r.metricsUrl).then((x) => x.text(), () => undefined);
    if (text === undefined) continue;
    row[`${r.name}_heap_mb`] = heapMb(text);
    if (r === node1 || r === node2) lagNodes += nodeLag(text);
    if (r === archive) row.archive_lag = archiveLag(text);
    if (r === gateway) {
      const accepted = metricValues(text, "airtwin_gateway_readings_accepted_total").reduce((a, b) => a + b, 0);
      if (lastAccepted !== undefined && accepted >= lastAccepted) row.accepted_per_s = (accepted - lastAccepted) / (sampleMs / 1000);
      lastAccepted = accepted;
    }
  }
  row.node_lag = lagNodes;
  const ing = ingestMs.sort((a, b) => a - b);
  const rd = readMs.sort((a, b) => a - b);
  ingestMs = [];
  readMs = [];
  Object.assign(row, { ingest_p50_ms: quantile(ing, 0.5), ingest_p99_ms: quantile(ing, 0.99), read_p50_ms: quantile(rd, 0.5), read_p99_ms: quantile(rd, 0.99), deliveries: partner.deliveries(), moves, faults });
  rows.push(row);
  writeFileSync(csvPath, toCsv(columns, rows));
  const mb = (k: string) => Math.round(row[k] ?? Number.NaN);
  say(`t=${Math.round(row.t_s!)}s RSS n1 ${mb("node-1_rss_mb")} n2 ${mb("node-2_rss_mb")} gw ${mb("gateway_rss_mb")} ar ${mb("archive_rss_mb")} in ${mb("integrations_rss_mb")} MB; lag ${row.node_lag}/${row.archive_lag ?? "?"}; ingest p99 ${Math.round(row.ingest_p99_ms ?? Number.NaN)} ms; ${Math.round(row.accepted_per_s ?? 0)} readings/s; moves ${moves}, faults ${faults}`);
}
const sampler = setInterval(() => void sample().catch((err: unknown) => say(`sample failed: ${(err as Error).message}`)), sampleMs);

await new Promise((r) => setTimeout(r, minutes * 60_000));
for (const t of [probe, mover, faulter, sampler]) clearInterval(t);
while (busy) await new Promise((r) => setTimeout(r, 500));
sim.kill("SIGTERM");
for (const r of [...roles].reverse()) await r.stop();
await nats.stop();
partner.server.close();

const verdicts = steadyState(columns, rows);
const grown = verdicts.filter((v) => v.grew);
const notes = [
  `${minutes} min, ${devices} devices at ${rate} readings/s, a sample every ${sampleMs / 1000} s; ${moves} planned moves, ${faults} faults (kill -9 and restart, in turn: ${faultTargets.map((r) => r.name).join(", ")})`,
  `probe failures (non-2xx or errors): ${probeFailures}; webhook deliveries: ${partner.deliveries()}`,
  `steady state (median of the last third vs the middle third): ${grown.length === 0 ? "nothing grew" : `GREW: ${grown.map((g) => `${g.column} ${g.middle.toFixed(1)} → ${g.last.toFixed(1)}`).join("; ")}`}`,
];
writeFileSync(join(out, "soak.html"), chartHtml(`airtwin soak ${new Date(started).toISOString()}`, columns, rows, notes));
for (const n of notes) say(n);
for (const v of verdicts) say(`  ${v.grew ? "GREW" : "ok  "} ${v.column}: ${v.middle.toFixed(1)} → ${v.last.toFixed(1)}`);
say(`CSV ${csvPath}, chart ${join(out, "soak.html")}`);
process.exit(grown.length === 0 ? 0 : 1);
