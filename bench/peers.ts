// `npm run bench -- peers [--quick] [--rounds R] [--systems floor,postgres,redis,effect-cluster,airtwin[,airtwin-client,airtwin-r3,airtwin-client-r3,airtwin-eager,redis-http]]
//                         [--devices N] [--per-device U] [--per-request K] [--concurrency C] [--pg-pool P]`
//
// airtwin next to the systems a team would pick instead (issue #16 §1), each in bench/peers/<system>.ts
// (its header says how it is tuned and what a crash loses), all given the same seeded workload
// (bench/peers/workload.ts: N devices × U uploads of K six-channel readings, C requests in flight) and
// keeping each device's count/mean/stddev/min/max/EWMA and pm pollution events current and durable.
// Each system runs in a process of its own, round after round in turn so all see the same background
// load; one JSON line per round, then per system the medians, and airtwin's ratio to each peer.
import { cpus, totalmem } from "node:os";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { emit, median, note, round, type Figure } from "./lib/report.ts";
import { child } from "./runtime.ts";

const SYSTEMS = ["floor", "postgres", "redis", "effect-cluster", "airtwin"];
/** airtwin itself runs with snapshots deferred 30 s (AIRTWIN_SNAPSHOT_INTERVAL_MS, off by default): issue #16 lever (a). */
const AIRTWIN = ["peers/airtwin", "--snapshot-interval-ms", "30000"];
/**
 * Variants run only when named (bench/peers/airtwin.ts): airtwin fed through its runtime client instead
 * of HTTP, as the Redis and Postgres peers are called by their client libraries; either on a 3-node R3
 * JetStream cluster (a machine's loss loses nothing acknowledged); airtwin with every changed twin
 * snapshotted at every commit (before issue #16's lever a).
 */
const VARIANTS: Record<string, string[]> = {
  "airtwin-client": [...AIRTWIN, "--system", "airtwin-client", "--via", "client"],
  "airtwin-r3": [...AIRTWIN, "--system", "airtwin-r3", "--replicas", "3"],
  "airtwin-client-r3": [...AIRTWIN, "--system", "airtwin-client-r3", "--via", "client", "--replicas", "3"],
  "airtwin-eager": ["peers/airtwin", "--system", "airtwin-eager", "--snapshot-interval-ms", "0"],
  // the Redis-centric peer behind an HTTP front door of its own (fastify, device tokens, a JSON schema):
  // airtwin over HTTP against it is like for like
  "redis-http": ["peers/redis", "--system", "redis-http", "--via", "http"],
};

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const systems = str(args, "systems", SYSTEMS.join(",")).split(",");
  for (const s of systems) if (!SYSTEMS.includes(s) && VARIANTS[s] === undefined) throw new Error(`unknown system "${s}" (${[...SYSTEMS, ...Object.keys(VARIANTS)].join(", ")})`);
  const rounds = int(args, "rounds", flag(args, "quick") ? 1 : 3);
  const passThrough = argv.filter((a, i) => !["--systems", "--rounds"].includes(a) && !["--systems", "--rounds"].includes(argv[i - 1] ?? ""));
  note("machine", { cpus: cpus().length, model: cpus()[0]?.model, memGb: round(totalmem() / 2 ** 30), node: process.version });
  const results = new Map<string, Figure[]>(systems.map((s) => [s, []]));
  for (let r = 1; r <= rounds; r++) {
    for (const s of systems) {
      note(`round ${r}: ${s}`);
      try {
        const figures = await child([], [...(VARIANTS[s] ?? (s === "airtwin" ? AIRTWIN : [`peers/${s}`])), ...passThrough]);
        for (const f of figures) if (f.name === `round.${s}`) results.get(s)!.push({ ...f, detail: { ...f.detail, round: r } });
      } catch (err) {
        note(`${s} failed`, { error: String(err) });
      }
    }
  }
  for (const [s, figures] of results) {
    if (figures.length === 0) continue;
    const d = (k: string) => figures.map((f) => Number(f.detail![k]));
    const rate = median(figures.map((f) => f.value));
    const last = figures[figures.length - 1]!.detail!;
    emit({
      suite: "peers",
      name: `readings-per-s.${s}`,
      value: round(rate),
      unit: "readings/s",
      detail: {
        rounds: figures.length,
        perRound: figures.map((f) => f.value),
        p99Ms: round(median(d("p99Ms"))),
        p50Ms: round(median(d("p50Ms"))),
        latencyIs: last.latencyIs,
        cpuSPerMillionReadings: round(median(d("cpuSPerMillionReadings"))),
        peakRssMbTotal: round(median(d("peakRssMbTotal"))),
        peakRssMb: last.peakRssMb,
        crashLoses: last.crashLoses,
        versions: last.versions,
        workload: last.workload,
        load: figures.map((f) => f.detail!.load),
      },
    });
  }
  // airtwin (and its client-fed variant) against each peer within the same round (the same background
  // load), median over the rounds both finished; and the same in CPU per reading (steadier on a shared machine)
  const byRound = (s: string) => new Map(results.get(s)!.map((f) => [Number(f.detail!.round), f]));
  for (const ours of ["airtwin", "airtwin-client", "airtwin-r3", "airtwin-client-r3"]) {
    if (!results.has(ours)) continue;
    const a = byRound(ours);
    for (const s of systems) {
      if (s === ours || (ours !== "airtwin" && s.startsWith("airtwin"))) continue; // airtwin's own variants: against airtwin only
      const pairs = [...byRound(s)].flatMap(([r, f]) => (a.has(r) ? [[a.get(r)!, f] as const] : []));
      if (pairs.length === 0) continue;
      const cpu = (f: Figure) => Number(f.detail!.cpuSPerMillionReadings);
      emit({
        suite: "peers",
        name: `${ours}-over.${s}`,
        value: round(median(pairs.map(([x, y]) => x.value / y.value))),
        unit: "x readings/s, same round",
        baseline: { name: s, value: round(median(pairs.map(([, y]) => y.value))) },
        detail: { rounds: pairs.length, perRound: pairs.map(([x, y]) => round(x.value / y.value)), cpuPerReadingRatio: round(median(pairs.map(([x, y]) => cpu(y) / cpu(x)))) },
      });
    }
  }
}
