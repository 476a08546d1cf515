// Resident memory per active twin: one node (in this process) serving every shard, one small reading
// sent to each of N twins so all are resident, committed, then two forced GCs and
// (heapUsed + arrayBuffers − before) / N. Baseline (`--mode bare`, its own process): the same twins as
// bare domain states in a Map (createTwin + applyInput of the same reading), no runtime. Then every twin
// compacted (runtime/shard/compaction.ts; the node's own sweep is off here) and measured again:
// `memory.compact-twin`.
//
//   node --expose-gc --max-old-space-size=12288 bin/bench.js runtime/memory --mode runtime|bare --twins N [--nats url --prefix p]
import { loadavg } from "node:os";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { deviceTwinBehavior, TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { applyInput, createTwin, encodeTwin, type TwinState } from "../../actors/device-twin/domain/mod.ts";
import { encodeBatch, type InputItem } from "../../runtime/envelope.ts";
import { createNodeRuntime } from "../../runtime/node-runtime.ts";
import { names as namesOf } from "../../runtime/subjects.ts";
import { flag, int, parseArgs, str } from "../lib/args.ts";
import { CheckpointWatch } from "../lib/checkpoints.ts";
import { fleet, prefill, READING_INTERVAL_MS, reading, rng, T0, type InputMessage } from "../lib/fleet.ts";
import { emit, note, round } from "../lib/report.ts";

const gc = (globalThis as { gc?: () => void }).gc;

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export async function main(argv: string[]): Promise<void> {
  if (gc === undefined) throw new Error("run with node --expose-gc");
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  const twins = int(args, "twins", quick ? 100_000 : 1_000_000);
  const mode = str(args, "mode", "runtime");
  if (mode === "bare") return bare(twins);
  return runtime(args, twins);
}

/** The baseline: the same twins as bare domain states in a Map, no runtime. */
async function bare(twins: number): Promise<void> {
  const f = fleet(twins, 64);
  const rand = rng(3);
  const receivedAt = Date.now();
  const before = await settledHeap();
  const map = new Map<string, TwinState>();
  for (let i = 0; i < twins; i++) {
    const id = f.ids[i]!;
    const s = createTwin(id);
    applyInput(s, { type: "readings", readings: [reading(rand, T0)], receivedAt });
    map.set(id, s);
  }
  const after = await settledHeap();
  const snapshotBytes = encodeTwin(map.get(f.ids[0]!)!).length;
  emit({
    suite: "runtime",
    name: "memory.bare-domain-state",
    value: Math.round((after - before) / twins),
    unit: "B/twin",
    detail: { twins, snapshotBytes, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20), loadavg: loadavg().map((x) => round(x, 2)) },
  });
  if (map.size !== twins) throw new Error("lost twins");
}

async function runtime(args: ReturnType<typeof parseArgs>, twins: number): Promise<void> {
  const url = str(args, "nats");
  const prefix = str(args, "prefix");
  const shards = int(args, "shards", 64);
  const perMessage = int(args, "per-message", 500);
  const names = namesOf(prefix);
  const nodeNc = await connect({ servers: url, noAsyncTraces: true, name: "bench memory node" });
  const watchNc = await connect({ servers: url, noAsyncTraces: true, name: "bench memory watch" });
  const warnings: string[] = [];
  const rt = await createNodeRuntime(nodeNc, {
    prefix,
    shards,
    streams: 1,
    replicas: 1,
    behaviors: [deviceTwinBehavior()],
    defaultMetrics: false,
    memoryBudgetBytes: 2 ** 50, // never passivate: every twin must stay resident
    runner: { compactAfterMs: 0 }, // decoded until compacted below, all at once
    log: (level, msg, fields) => {
      if (level === "info") return;
      warnings.push(msg);
      if (warnings.length <= 3) note(`node ${level}: ${msg}`, fields);
    },
  });
  await Promise.all(Array.from({ length: shards }, (_, shard) => rt.host.start({ shard, epoch: 1, owner: "bench" })));
  const watch = new CheckpointWatch(watchNc, names, shards, new Kvm(watchNc));
  const before = await settledHeap();
  note("node serving; sending one reading to each twin", { twins, shards });

  // one small reading per twin, packed like the client's micro-batches (500 items per message)
  const f = fleet(twins, shards);
  const acceptedAt = Date.now();
  // in waves of `wave` twins, each applied before the next is sent: a backlog of 1M twins at once makes
  // the node's connection a slow consumer (see "input lost after a slow-consumer disconnect")
  function* messages(round = 0, from = 0, to = twins): Generator<InputMessage> {
    const rand = rng(3 + from);
    for (let s = 0; s < shards; s++) {
      const devices = f.byShard[s]!.filter((d) => d >= from && d < to);
      for (let i = 0; i < devices.length; i += perMessage) {
        const items: InputItem[] = devices.slice(i, i + perMessage).map((d) => ({ type: TWIN_TYPE, entityId: f.ids[d]!, kind: "readings", payload: [reading(rand, T0 + round * READING_INTERVAL_MS)] }));
        yield { shard: s, data: encodeBatch({ acceptedAt, items }), readings: items.length };
      }
    }
  }
  const fillNc = await connect({ servers: url, noAsyncTraces: true, name: "bench memory fill" });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // GC pauses count in the event-loop delay; keep them apart
  let gcMaxMs = 0;
  let gcTotalMs = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMaxMs = Math.max(gcMaxMs, e.duration);
      gcTotalMs += e.duration;
    }
  });
  gcs.observe({ entryTypes: ["gc"] });
  const t0 = performance.now();
  const wave = int(args, "wave", 100_000);
  let lastSeq = new Array<number>(shards).fill(0);
  for (let from = 0; from < twins; from += wave) {
    const filled = await prefill(fillNc, names, shards, messages(0, from, Math.min(twins, from + wave)));
    lastSeq = lastSeq.map((x, s) => Math.max(x, filled.lastSeq[s]!));
    await watch.reach(lastSeq);
  }
  const seconds = (performance.now() - t0) / 1000;
  // A shard that failed a write restarts from its last commit with its twins passivated (bytes only);
  // touch every twin once more so all are resident again (counted in the figure's detail).
  let rounds = 1;
  while (((await rt.metrics.residentEntities.get()).values[0]?.value ?? 0) < twins && rounds < 3) {
    rounds++;
    note("not every twin is resident after shard restarts; one more reading to each", { warnings: warnings.length });
    const again = await prefill(fillNc, names, shards, messages(rounds - 1));
    await watch.reach(again.lastSeq);
  }
  await fillNc.close();
  loop.disable();
  gcs.disconnect();
  const resident = (await rt.metrics.residentEntities.get()).values[0]?.value ?? 0;
  if (resident !== twins) throw new Error(`${resident} twins resident, expected ${twins}`);
  const after = await settledHeap();
  const perTwin = (after - before) / twins;
  // what one full GC costs with every twin decoded (compare memory.compact-twin's)
  const decodedGcStarted = performance.now();
  gc!();
  const decodedFullGcMs = performance.now() - decodedGcStarted;
  const rss = process.memoryUsage().rss;
  const bareBytes = int(args, "bare-bytes", 0);
  emit({
    suite: "runtime",
    name: "memory.resident-twin",
    value: Math.round(perTwin),
    unit: "B/twin",
    ...(bareBytes > 0 ? { baseline: { name: "bare domain state in a Map (createTwin + applyInput), no runtime", value: bareBytes } } : {}),
    detail: { fullGcMs: round(decodedFullGcMs), runtimeOverheadBytes: bareBytes > 0 ? Math.round(perTwin - bareBytes) : undefined, target: 4096, twins, shards, resident, heapMb: Math.round(after / 2 ** 20), rssMb: Math.round(rss / 2 ** 20), ingestAndCommitS: round(seconds), waveTwins: wave, rounds, nodeWarnings: warnings.length, loopDelayMaxMs: round(loop.max / 1e6), loopDelayP99Ms: round(loop.percentile(99) / 1e6), gcMaxMs: round(gcMaxMs), gcTotalMs: round(gcTotalMs), loadavg: loadavg().map((x) => round(x, 2)) },
  });
  // every twin compacted at once (as the sweep would after AIRTWIN_COMPACT_AFTER_MS idle)
  const t1 = performance.now();
  const compacted = rt.host.compactIdle(0);
  const compactS = (performance.now() - t1) / 1000;
  const compactHeap = await settledHeap();
  const compactBytes = (await rt.metrics.compactBytes.get()).values[0]?.value ?? 0;
  const gcStarted = performance.now();
  gc!();
  const fullGcMs = performance.now() - gcStarted;
  emit({
    suite: "runtime",
    name: "memory.compact-twin",
    value: Math.round((compactHeap - before) / twins),
    unit: "B/twin",
    baseline: { name: "the same twins decoded (memory.resident-twin)", value: Math.round(perTwin) },
    detail: { target: 2048, twins, compacted, encodedBytesPerTwin: Math.round(compactBytes / Math.max(1, compacted)), compactAllS: round(compactS), fullGcMs: round(fullGcMs), heapMb: Math.round(compactHeap / 2 ** 20), rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) },
  });
  watch.close();
  await rt.host.stopAll();
  rt.close();
  await nodeNc.close();
  await watchNc.close();
}
