// Throughput: readings/s from a pre-filled input stream to committed state (every shard's checkpoint
// covers its last message, all snapshots written), on one node with all shards — against the FLOOR:
// one plain JetStream consumer over the same messages that decodes them and keeps count/mean/min/max
// per device and channel in a Map, persisting nothing. Next to it the DOMAIN BOUND: the same consumer
// applying the real twin domain (outputs dropped, nothing persisted), the best any runtime could do
// with this twin. Runs alternate (floor, domain bound, runtime, …); medians.
//
// Twins' snapshots are deferred as `airtwin node` defaults say (AIRTWIN_SNAPSHOT_INTERVAL_MS's default,
// 15 min; `--snapshot-interval-ms N` for another, 0 for every commit); the time stops once the checkpoints
// cover every message AND every snapshot put off is written (a commit of every dirty twin), so deferring
// hides no writes.
//
//   node bin/bench.js runtime/throughput --nats <url> --prefix <p> --shape device|fleet [--runs 3] [--snapshot-interval-ms N]
import { monitorEventLoopDelay } from "node:perf_hooks";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { deviceTwinBehavior, TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { applyInput, createTwin, decodeTwin, type LoggedReading, type Reading, type TwinState } from "../../actors/device-twin/domain/mod.ts";
import { ensureStreams } from "../../runtime/cluster-setup.ts";
import { loadConfig } from "../../runtime/config.ts";
import { decodeBatch } from "../../runtime/envelope.ts";
import { createNodeRuntime } from "../../runtime/node-runtime.ts";
import { entityKey, readSnapshot } from "../../runtime/snapshot-store.ts";
import { names as namesOf, type Names } from "../../runtime/subjects.ts";
import { flag, int, parseArgs, str } from "../lib/args.ts";
import { CheckpointWatch, lastSeqPerShard, resetRuntimeState } from "../lib/checkpoints.ts";
import { deviceBatches, fleet, fleetBatches, prefill } from "../lib/fleet.ts";
import { emit, median, note, round } from "../lib/report.ts";

const CHANNELS = ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const;

interface Sizes {
  devices: number;
  rounds: number;
  perMessage: number;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const url = str(args, "nats");
  const prefix = str(args, "prefix");
  const shape = str(args, "shape", "device") as "device" | "fleet";
  const shards = int(args, "shards", 64);
  const runs = int(args, "runs", 3);
  // the node's default (the runner's own option stays 0 for embedders)
  const snapshotIntervalMs = int(args, "snapshot-interval-ms", loadConfig({}).snapshotIntervalMs);
  const only = str(args, "only", "both");
  const quick = flag(args, "quick");
  const sizes: Sizes =
    shape === "device"
      ? { devices: int(args, "devices", quick ? 1000 : 10_000), rounds: int(args, "rounds", 2), perMessage: int(args, "per-message", 100) }
      : { devices: int(args, "devices", quick ? 1000 : 10_000), rounds: int(args, "rounds", quick ? 50 : 100), perMessage: int(args, "per-message", 100) };
  const names = namesOf(prefix);
  const stream = names.inputStream(0);

  const nc = await connect({ servers: url, noAsyncTraces: true, name: "bench throughput" });
  const jsm = await jetstreamManager(nc, { timeout: 60_000 });
  await ensureStreams(jsm, names, { shards, streams: 1, replicas: 1 });
  const info = await jsm.streams.info(stream);
  let total: { messages: number; readings: number };
  if (info.state.messages === 0) {
    note(`pre-filling ${stream}`, { shape, ...sizes });
    const f = fleet(sizes.devices, shards);
    const acceptedAt = Date.now();
    const gen = shape === "device" ? deviceBatches(f, sizes.rounds, sizes.perMessage, acceptedAt) : fleetBatches(f, sizes.rounds, sizes.perMessage, acceptedAt);
    const t0 = performance.now();
    const filled = await prefill(nc, names, shards, gen);
    note("pre-filled", { messages: filled.messages, readings: filled.readings, mb: round(filled.bytes / 2 ** 20), s: round((performance.now() - t0) / 1000) });
    total = filled;
  } else {
    total = { messages: info.state.messages, readings: sizes.devices * sizes.rounds * (shape === "device" ? sizes.perMessage : 1) };
  }
  const lastSeq = await lastSeqPerShard(jsm, names, stream, shards);

  const floor: number[] = [];
  const runtime: number[] = [];
  // CPU µs of this process per reading: steadier than wall time on a shared machine (nats-server excluded)
  const floorCpu: number[] = [];
  // the floor's consumer applying the real twin domain, outputs dropped, nothing persisted (see domainBoundRun)
  const domain: number[] = [];
  const domainCpu: number[] = [];
  const runtimeCpu: number[] = [];
  const applied: number[] = [];
  let extra: Record<string, unknown> = {};
  for (let run = 1; run <= runs; run++) {
    if (only !== "runtime") {
      const c0 = process.cpuUsage();
      const r = await floorRun(nc, stream, total.messages);
      floorCpu.push(cpuMicros(c0) / total.readings);
      floor.push(total.readings / r.seconds);
      note(`floor run ${run}`, { readingsPerS: round(total.readings / r.seconds), s: round(r.seconds), devices: r.devices });
      const d0 = process.cpuUsage();
      const d = await domainBoundRun(nc, stream, total.messages);
      domainCpu.push(cpuMicros(d0) / total.readings);
      domain.push(total.readings / d.seconds);
      note(`domain-bound run ${run}`, { readingsPerS: round(total.readings / d.seconds), s: round(d.seconds), devices: d.devices, outputsDropped: d.outputs });
    }
    if (only !== "floor") {
      await resetRuntimeState(jsm, names, stream, shards);
      note(`runtime run ${run}: state reset, starting ${shards} shards`);
      const c0 = process.cpuUsage();
      const r = await runtimeRun(url, names, shards, total.messages, lastSeq, sizes, shape, snapshotIntervalMs);
      runtimeCpu.push(cpuMicros(c0) / total.readings);
      runtime.push(total.readings / r.committedS);
      applied.push(total.readings / r.appliedS);
      extra = r.extra;
      note(`runtime run ${run}`, { readingsPerS: round(total.readings / r.committedS), committedS: round(r.committedS), appliedS: round(r.appliedS), ...r.extra });
      await verify(nc, names, shards, sizes, shape);
    }
  }

  const detail = { shape, ...sizes, messages: total.messages, readings: total.readings, shards, runs, floorRuns: floor.map((x) => round(x)), runtimeRuns: runtime.map((x) => round(x)), ...extra };
  const label = shape === "device" ? "device-batches" : "fleet-batches";
  const floorName = "floor: plain pull consumer, decode, count/mean/min/max per device+channel in a Map";
  if (only === "both") {
    emit({ suite: "runtime", name: `throughput.${label}`, value: round(median(runtime)), unit: "readings/s", baseline: { name: floorName, value: round(median(floor)) }, detail });
    emit({ suite: "runtime", name: `throughput.${label}.applied`, value: round(median(applied)), unit: "readings/s", baseline: { name: floorName, value: round(median(floor)) }, detail: { note: "until every message was applied in memory, before the last commit" } });
    emit({ suite: "runtime", name: `throughput.${label}.ratio`, value: round(median(runtime) / median(floor)), unit: "× floor", baseline: { name: "target", value: 0.5 } });
    // What the domain alone leaves of the target: the best ratio any runtime could reach with this twin.
    emit({
      suite: "runtime",
      name: `throughput.${label}.domain-bound`,
      value: round(median(domain)),
      unit: "readings/s",
      baseline: { name: floorName, value: round(median(floor)) },
      detail: { ratioToFloor: round(median(domain) / median(floor)), runtimeToDomainBound: round(median(runtime) / median(domain)), runs: domain.map((x) => round(x)), cpuUsPerReading: round(median(domainCpu)) },
    });
    emit({
      suite: "runtime",
      name: `throughput.${label}.cpu-per-reading`,
      value: round(median(runtimeCpu)),
      unit: "µs CPU/reading (node process)",
      baseline: { name: "floor, same process", value: round(median(floorCpu)) },
      detail: { runtimeRuns: runtimeCpu.map((x) => round(x)), floorRuns: floorCpu.map((x) => round(x)), domainBound: round(median(domainCpu)), domainBoundRuns: domainCpu.map((x) => round(x)) },
    });
    // §4's figure: the runtime's own CPU per reading, each runtime run less the domain-bound run beside it
    const own = runtimeCpu.map((x, i) => x - domainCpu[i]!);
    emit({ suite: "runtime", name: `throughput.${label}.own-cpu-per-reading`, value: round(median(own)), unit: "µs CPU/reading, runtime run − domain-bound run of the same round", baseline: { name: "target", value: 2 }, detail: { runs: own.map((x) => round(x)) } });
  } else if (only === "runtime") {
    emit({ suite: "runtime", name: `throughput.${label}.runtime-only`, value: round(median(runtime)), unit: "readings/s", detail });
  }
  await nc.close();
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return c.user + c.system;
}

/** One ordered consumer over the whole stream: decode each message, hand every readings item to `apply`. */
async function consumeAll(nc: NatsConnection, stream: string, messages: number, apply: (entityId: string, readings: LoggedReading[], acceptedAt: number) => void): Promise<number> {
  const js = jetstream(nc);
  const t0 = performance.now();
  const consumer = await js.consumers.get(stream);
  const iter = await consumer.consume({ max_messages: 1000 });
  let n = 0;
  for await (const m of iter) {
    const batch = decodeBatch(m.data);
    for (const item of batch.items) if (item.kind === "readings") apply(item.entityId, item.payload as LoggedReading[], batch.acceptedAt);
    if (++n === messages) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  await iter.close();
  return seconds;
}

/** The floor: decode, simple statistics (count/mean/min/max per device and channel) in a Map. */
async function floorRun(nc: NatsConnection, stream: string, messages: number): Promise<{ seconds: number; devices: number }> {
  const stats = new Map<string, Float64Array>();
  const seconds = await consumeAll(nc, stream, messages, (entityId, readings) => {
    let s = stats.get(entityId);
    if (s === undefined) {
      s = new Float64Array(CHANNELS.length * 4);
      for (let c = 0; c < CHANNELS.length; c++) {
        s[c * 4 + 2] = Infinity;
        s[c * 4 + 3] = -Infinity;
      }
      stats.set(entityId, s);
    }
    for (const r of readings) {
      for (let c = 0; c < CHANNELS.length; c++) {
        const x = r[c + 1];
        if (x === undefined || x === null) continue;
        const o = c * 4;
        const count = ++s[o]!;
        s[o + 1]! += (x - s[o + 1]!) / count;
        if (x < s[o + 2]!) s[o + 2] = x;
        if (x > s[o + 3]!) s[o + 3] = x;
      }
    }
  });
  return { seconds, devices: stats.size };
}

/**
 * The domain bound: the floor's consumer, but each device's readings go through the twin's own
 * `applyInput` (every statistic, bucket, calibration and rule of docs/design.md §4) and its outputs are dropped;
 * nothing is persisted or published. No runtime can beat this with this domain: it is what is left of
 * the floor/runtime gap once all of the runtime's own work (activation, outputs, commits, acks) is free.
 */
async function domainBoundRun(nc: NatsConnection, stream: string, messages: number): Promise<{ seconds: number; devices: number; outputs: number }> {
  const twins = new Map<string, TwinState>();
  let outputs = 0;
  const seconds = await consumeAll(nc, stream, messages, (entityId, readings, acceptedAt) => {
    let twin = twins.get(entityId);
    if (twin === undefined) twins.set(entityId, (twin = createTwin(entityId)));
    outputs += applyInput(twin, { type: "readings", readings: asReadings(readings), receivedAt: acceptedAt }).outputs.length;
  });
  return { seconds, devices: twins.size, outputs };
}

/**
 * The logged arrays as the twin's readings, unchecked: the domain bound pays for the conversion, as the
 * twin does, but not for the check of logged readings — that stays in the runtime's own cost.
 */
function asReadings(logged: readonly LoggedReading[]): Reading[] {
  const out: Reading[] = new Array(logged.length);
  for (let i = 0; i < logged.length; i++) {
    const a = logged[i]!;
    out[i] = { t: a[0], pm: a[1] ?? undefined, co2: a[2] ?? undefined, voc: a[3] ?? undefined, tmp: a[4] ?? undefined, hum: a[5] ?? undefined, allpollu: a[6] ?? undefined };
  }
  return out;
}

/** One node, every shard started at once; done when every checkpoint covers its shard's last message. */
async function runtimeRun(url: string, names: Names, shards: number, messages: number, lastSeq: number[], sizes: Sizes, shape: "device" | "fleet", snapshotIntervalMs: number) {
  const watchNc = await connect({ servers: url, noAsyncTraces: true, name: "bench watch" });
  const nodeNc = await connect({ servers: url, noAsyncTraces: true, name: "bench node" });
  const watch = new CheckpointWatch(watchNc, names, shards, new Kvm(watchNc));
  const warnings: string[] = [];
  const rt = await createNodeRuntime(nodeNc, {
    prefix: names.prefix,
    shards,
    streams: 1,
    replicas: 1,
    behaviors: [deviceTwinBehavior()],
    defaultMetrics: false,
    memoryBudgetBytes: 64 * 2 ** 30,
    ...(snapshotIntervalMs >= 0 ? { runner: { snapshotIntervalMs } } : {}),
    log: (level, msg, fields) => {
      if (level === "info") return;
      warnings.push(`${level} ${msg} ${JSON.stringify(fields)}`);
      if (warnings.length <= 10) note(`node ${level}: ${msg}`, fields);
    },
  });
  // Event-loop delay during the run: what a live query, a lease renewal or a commit timer waits for.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  // this process's CPU (ms) by phase: the shards' start, applying and committing, the last commit of every
  // snapshot put off — the first and last are per run, not per reading
  const cpu0 = process.cpuUsage();
  const cpuMs = () => {
    const c = process.cpuUsage(cpu0);
    return (c.user + c.system) / 1000;
  };
  // a start that fails (a JetStream request timing out under load) is retried after a heartbeat, as
  // ownership would; it counts in the time, and in `startRetries`
  let startRetries = 0;
  await Promise.all(
    Array.from({ length: shards }, async (_, shard) => {
      for (;;) {
        try {
          return await rt.host.start({ shard, epoch: 1, owner: "bench" });
        } catch (err) {
          if (++startRetries > 3 * shards) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }),
  );
  const startedS = (performance.now() - t0) / 1000;
  const startCpuMs = cpuMs();
  let appliedS = 0;
  const appliedDone = (async () => {
    for (;;) {
      const v = (await rt.metrics.messagesApplied.get()).values[0]?.value ?? 0;
      if (v >= messages) return void (appliedS = (performance.now() - t0) / 1000);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  // a run that stops making progress fails with what it knows instead of hanging
  let lastProgress = "";
  let stuckRounds = 0;
  let stuck!: (err: Error) => void;
  const stalled = new Promise<never>((_, reject) => (stuck = reject));
  stalled.catch(() => undefined); // raced below; unhandled only if nothing waits any more
  const progress = setInterval(() => {
    void rt.metrics.messagesApplied.get().then((m) => {
      const state = { s: round((performance.now() - t0) / 1000), applied: m.values[0]?.value ?? 0, of: messages, lagging: watch.lagging(lastSeq) };
      note("still waiting", { ...state, lagging: state.lagging.length });
      const key = `${state.applied}/${state.lagging.join(",")}`;
      stuckRounds = key === lastProgress ? stuckRounds + 1 : 0;
      lastProgress = key;
      if (stuckRounds === 4) {
        const owned = new Set(rt.host.owned());
        const notServed = Array.from({ length: shards }, (_, i) => i).filter((i) => !owned.has(i));
        void verify(watchNc, names, shards, sizes, shape, false).then(
          (badShards) => stuck(new Error(`no progress for 2 minutes: ${JSON.stringify({ ...state, notServed, shardsWithWrongCommittedState: badShards })}; node warnings (${warnings.length}): ${warnings.slice(0, 40).join(" | ")}`)),
          (err: unknown) => stuck(err as Error),
        );
      }
    });
  }, 30_000);
  await Promise.race([watch.reach(lastSeq), stalled]);
  // the snapshots put off are written too before the time stops
  const reachedCpuMs = cpuMs();
  await rt.host.commitAll();
  const committedCpuMs = cpuMs();
  loop.disable();
  const committedS = (performance.now() - t0) / 1000;
  await Promise.race([appliedDone, stalled]);
  clearInterval(progress);
  const sum = async (h: { get(): Promise<{ values: Array<{ metricName?: string; value: number }> }> }, suffix: string) =>
    (await h.get()).values.find((v) => v.metricName?.endsWith(suffix))?.value ?? 0;
  const extra = {
    startS: round(startedS),
    cpuMs: { start: Math.round(startCpuMs), apply: Math.round(reachedCpuMs - startCpuMs), lastCommit: Math.round(committedCpuMs - reachedCpuMs) },
    startRetries,
    loopDelayP99Ms: round(loop.percentile(99) / 1e6),
    loopDelayMaxMs: round(loop.max / 1e6),
    snapshotIntervalMs: snapshotIntervalMs >= 0 ? snapshotIntervalMs : "default",
    snapshotsWritten: await sum(rt.metrics.commitRecords, "_sum"),
    commits: await sum(rt.metrics.commitRecords, "_count"),
    outputs: (await rt.metrics.outputsPublished.get()).values[0]?.value ?? 0,
    warnings: warnings.length,
    checkpointsSeenNotStored: watch.seenNotStored,
    // what the node's connection carried: its output and snapshot bytes are most of what the floor does not write
    nodeConnection: connectionStats(nodeNc.stats()),
  };
  if (warnings.length > 0) note("runtime warnings", { first: warnings.slice(0, 3) });
  watch.close();
  await rt.host.stopAll();
  rt.close();
  await nodeNc.close();
  await watchNc.close();
  return { committedS, appliedS, extra };
}

function connectionStats(s: { inBytes: number; outBytes: number; inMsgs: number; outMsgs: number }) {
  return { inMb: round(s.inBytes / 2 ** 20), outMb: round(s.outBytes / 2 ** 20), inMsgs: s.inMsgs, outMsgs: s.outMsgs };
}

/** Every device has exactly the readings it was sent in its committed snapshot; returns the shards that do not. */
async function verify(nc: NatsConnection, names: Names, shards: number, sizes: Sizes, shape: "device" | "fleet", strict = true): Promise<number[]> {
  const f = fleet(sizes.devices, shards);
  const kvm = new Kvm(nc);
  const expected = shape === "device" ? sizes.rounds * sizes.perMessage : sizes.rounds;
  const bad = new Map<number, string>();
  await Promise.all(
    Array.from({ length: shards }, async (_, s) => {
      const kv = await kvm.open(names.snapshotBucket(s));
      for (const i of f.byShard[s]!) {
        const rec = await readSnapshot(kv, entityKey(TWIN_TYPE, f.ids[i]!));
        const got = rec === undefined ? -1 : decodeTwin(rec.state).readings;
        if (got !== expected) {
          bad.set(s, `${f.ids[i]} has ${got} readings committed, expected ${expected}`);
          return;
        }
      }
    }),
  );
  if (bad.size > 0 && strict) throw new Error(`verification failed in shards ${[...bad.keys()].join(",")}: ${[...bad.values()][0]}`);
  return [...bad.keys()];
}
