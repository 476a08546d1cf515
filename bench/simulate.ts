// The simulator as a load generator (`npm run bench -- simulate [--quick]`): how many requests a second
// `airtwin simulate`'s machinery (the model, the runner's per-device queues, the undici transport) can
// send, next to autocannon — a raw HTTP load generator — against the same server in the same run, so
// the ratio says how much of a load test's budget the simulator spends on being realistic.
//
// The server is a bare node:http process answering every POST with 202 {"accepted":1} (no airtwin
// behind it: the point is the generator). Three figures, each 1 reading per request, 16 connections:
// - model: synthetic readings generated per second by sim/model alone (no I/O), 1,000 devices;
// - runner: requests/s of SimRunner + HttpTransport with uploads always due (the model out of the way);
// - simulate: requests/s of the whole thing (model + runner + transport), a backlog always due;
// each next to autocannon's requests/s against the same server with the same body.
import { spawn } from "node:child_process";
import autocannon from "autocannon";
import { SimClock } from "../sim/clock.ts";
import { HttpTransport } from "../sim/http-transport.ts";
import { Fleet } from "../sim/model/fleet.ts";
import type { Upload } from "../sim/model/device.ts";
import type { UploadSource } from "../sim/model/fleet.ts";
import { SimRunner } from "../sim/runner.ts";
import { flag, parseArgs } from "./lib/args.ts";
import { emit, median, note, round } from "./lib/report.ts";

const SERVER = `
const http = require("node:http");
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => { res.writeHead(202, { "content-type": "application/json" }); res.end('{"accepted":1}'); });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(String(server.address().port) + "\\n"));
`;

async function startServer(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["-e", SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<string>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

const DEVICES = 200;
const CONNECTIONS = 16;
const ids = Array.from({ length: DEVICES }, (_, i) => `b-${i}`);
const tokens = new Map(ids.map((id) => [id, "token-0123456789"]));
const body = JSON.stringify({ readings: [{ t: Date.UTC(2026, 0, 5), pm: 12.5, co2: 640, voc: 120, tmp: 21.3, hum: 41, allpollu: 18 }] });

/** Uploads of one reading, round robin over the devices, always due. */
class AlwaysDue implements UploadSource {
  readonly deviceIds = ids;
  private i = 0;
  peekSendAt(): number {
    return Number.NEGATIVE_INFINITY;
  }
  next(): Upload {
    const n = this.i++;
    return { deviceId: ids[n % DEVICES]!, sendAt: Number.NEGATIVE_INFINITY, readings: [{ t: Date.UTC(2026, 0, 5) + n, pm: 12.5, co2: 640 }], kind: "live" };
  }
}

/** Requests per second and this process's CPU per request (µs): the generator's own cost, which a busy machine disturbs less than the rate. */
interface Measured {
  rps: number;
  cpuUs: number;
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function simRequestsPerSecond(url: string, source: UploadSource, durationMs: number): Promise<Measured> {
  const cpu0 = cpuNow();
  const transport = new HttpTransport({ gatewayUrl: url, tokens, connections: CONNECTIONS });
  // a batch of 1: the per-device gap of 0 lets each device send its next reading alone
  const runner = new SimRunner({ source, transport, clock: new SimClock({ startEventMs: Date.now(), speed: 1 }), minRequestGapMs: 0, maxInFlight: CONNECTIONS, maxReadingsPerRequest: 1, durationMs });
  const stats = await runner.run();
  await transport.close();
  return { rps: stats.requests / (stats.elapsedMs / 1000), cpuUs: (cpuNow() - cpu0) / stats.requests };
}

async function autocannonRequestsPerSecond(url: string, durationS: number): Promise<Measured> {
  const cpu0 = cpuNow();
  const result = await autocannon({
    url: `${url}/v1/devices/b-0/readings`,
    method: "POST",
    headers: { authorization: "Bearer token-0123456789", "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: durationS,
  });
  return { rps: result.requests.total / durationS, cpuUs: (cpuNow() - cpu0) / result.requests.total };
}

function modelReadingsPerSecond(uploads: number): number {
  const fleet = new Fleet({ seed: 1, devices: 1000, idPrefix: "m", startMs: Date.UTC(2026, 0, 5), intervalMs: 300_000, faults: { outagesPerDay: 0.15, duplicateProbability: 0.01 } });
  const started = performance.now();
  let readings = 0;
  for (let i = 0; i < uploads; i++) readings += fleet.next()!.readings.length;
  return readings / ((performance.now() - started) / 1000);
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  const runs = quick ? 1 : 3;
  const durationS = quick ? 3 : 8;
  const server = await startServer();
  try {
    const model = modelReadingsPerSecond(quick ? 50_000 : 300_000);
    emit({ suite: "simulate", name: "model readings/s (1,000 devices, no I/O)", value: round(model), unit: "readings/s" });
    const sim: Measured[] = [];
    const full: Measured[] = [];
    const raw: Measured[] = [];
    for (let r = 0; r < runs; r++) {
      note(`run ${r + 1}/${runs}`);
      raw.push(await autocannonRequestsPerSecond(server.url, durationS));
      sim.push(await simRequestsPerSecond(server.url, new AlwaysDue(), durationS * 1000));
      // an hour of backlog for 200 devices at 1-s intervals: always due, generated as it is sent
      const fleet = new Fleet({ seed: 2, devices: DEVICES, idPrefix: "b", startMs: Date.now() - 3_600_000, intervalMs: 1000, faults: false, warmUpMs: 60_000 });
      const fleetIds = new Set(fleet.deviceIds);
      for (const id of fleetIds) tokens.set(id, "token-0123456789");
      full.push(await simRequestsPerSecond(server.url, fleet, durationS * 1000));
    }
    const med = (xs: Measured[], k: keyof Measured) => round(median(xs.map((x) => x[k])));
    const baseline = { name: "autocannon, same server and body", value: med(raw, "rps") };
    const cpuBaseline = { name: "autocannon, same server and body", value: med(raw, "cpuUs") };
    const detail = { runs, durationS, connections: CONNECTIONS, readingsPerRequest: 1, note: "shared 2-core machine, busy with other work" };
    emit({ suite: "simulate", name: "runner + HTTP transport requests/s", value: med(sim, "rps"), unit: "requests/s", baseline, detail: { ...detail, ratio: round(med(sim, "rps") / med(raw, "rps")), all: sim.map((x) => round(x.rps)), autocannon: raw.map((x) => round(x.rps)) } });
    emit({ suite: "simulate", name: "runner + HTTP transport CPU per request", value: med(sim, "cpuUs"), unit: "µs", baseline: cpuBaseline, detail: { ratio: round(med(sim, "cpuUs") / med(raw, "cpuUs")) } });
    emit({ suite: "simulate", name: "simulate (model + runner + transport) requests/s", value: med(full, "rps"), unit: "requests/s", baseline, detail: { ratio: round(med(full, "rps") / med(raw, "rps")), all: full.map((x) => round(x.rps)) } });
    emit({ suite: "simulate", name: "simulate (model + runner + transport) CPU per request", value: med(full, "cpuUs"), unit: "µs", baseline: cpuBaseline, detail: { ratio: round(med(full, "cpuUs") / med(raw, "cpuUs")) } });
  } finally {
    server.stop();
  }
}
