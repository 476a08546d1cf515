// Two `airtwin node` OS processes sharing N active twins (default 100,000), default lease settings:
//
// - Planned moves under load: each move goes through the ops API (OpsClient.move), while a load of
//   readings flows to all twins and one twin of the moving shard is probed with back-to-back `get`s;
//   the pause is the longest interval without an answer. Baseline: a `get` round trip.
// - Recovery: `kill -9` of one node (it owns half the shards and twins); time until every one of its
//   shards answers a `get` again. Baseline: the lease TTL, the part no implementation can avoid.
//
//   node bin/bench.js runtime/cluster --nats <url> --prefix <p> [--twins 100000] [--moves 20] [--runs 3]
//                                      [--kill other|coordinator] [--load 5000] [--logs <dir>]
import { writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { errors as natsErrors, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { RuntimeClient } from "../../runtime/client.ts";
import { encode } from "../../runtime/codec.ts";
import { OpsClient } from "../../runtime/ownership/ops.ts";
import { names as namesOf, type Names } from "../../runtime/subjects.ts";
import { flag, int, parseArgs, str } from "../lib/args.ts";
import { CheckpointWatch, deletePrefix } from "../lib/checkpoints.ts";
import { fleet, fleetBatches, prefill, readingsOf, rng, type Fleet } from "../lib/fleet.ts";
import { NodeProcess } from "../lib/node-process.ts";
import { emit, median, note, percentile, round } from "../lib/report.ts";

const SHARDS = 64;
const LEASE_TTL_MS = 5000; // AIRTWIN_LEASE_TTL_MS default, left unset for the nodes

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  const url = str(args, "nats");
  const base = str(args, "prefix");
  const twins = int(args, "twins", quick ? 20_000 : 100_000);
  const moves = int(args, "moves", quick ? 6 : 20);
  const runs = int(args, "runs", quick ? 1 : 3);
  const kill = str(args, "kill", "other") as "other" | "coordinator";
  const loadRps = int(args, "load", 5000);
  const logsDir = typeof args.get("logs") === "string" ? (args.get("logs") as string) : undefined;

  const nc = await connect({ servers: url, noAsyncTraces: true, name: "bench cluster" });
  const pauses: number[] = [];
  const rtts: number[] = [];
  const recoveries: number[] = [];
  const perRun: Array<Record<string, unknown>> = [];
  for (let run = 1; run <= runs; run++) {
    const r = await oneRun(nc, url, `${base}${run}`, { twins, moves, kill, loadRps, logsDir });
    pauses.push(...r.pauses);
    rtts.push(...r.rtts);
    recoveries.push(r.recovery.allServedMs);
    perRun.push({ run, pausesMs: r.pauses.map((p) => round(p)), ...r.recovery, ...r.moveBreakdown });
    note(`cluster run ${run}`, perRun.at(-1));
  }
  const rtt = median(rtts);
  const common = { twins, shards: SHARDS, nodes: 2, runs, loadavg: loadavg().map((x) => round(x, 2)) };
  if (moves > 0) {
    const detail = { ...common, moves: pauses.length, loadReadingsPerS: loadRps, maxMs: round(Math.max(...pauses)), perRun: perRun.map((r) => ({ run: r.run, pausesMs: r.pausesMs, stopMsMedian: r.stopMsMedian, startMsMedian: r.startMsMedian, releasedAfterMoveMsMedian: r.releasedAfterMoveMsMedian, acquiredAfterMoveMsMedian: r.acquiredAfterMoveMsMedian, acquireWaitMsMedian: r.acquireWaitMsMedian, probesUnanswered: r.probesUnanswered })) };
    emit({ suite: "runtime", name: "move.pause.p50", value: round(median(pauses)), unit: "ms", baseline: { name: "get round trip (median)", value: round(rtt) }, detail });
    emit({ suite: "runtime", name: "move.pause.p99", value: round(percentile(pauses, 99)), unit: "ms", baseline: { name: "get round trip (median)", value: round(rtt) }, detail: { target: 500, samples: pauses.length } });
  }
  emit({
    suite: "runtime",
    name: `recovery.kill-9${kill === "coordinator" ? "-coordinator" : ""}`,
    value: round(median(recoveries)),
    unit: "ms",
    baseline: { name: "lease TTL (AIRTWIN_LEASE_TTL_MS default)", value: LEASE_TTL_MS },
    detail: { ...common, target: 10_000, killed: kill, runsMs: recoveries.map((x) => round(x)), perRun: perRun.map(({ pausesMs: _p, ...rest }) => rest) },
  });
  await nc.close();
}

interface RunOptions {
  twins: number;
  moves: number;
  kill: "other" | "coordinator";
  loadRps: number;
  /** Write the nodes' log lines here after the run (for breakdowns beyond the figures). */
  logsDir: string | undefined;
}

async function oneRun(nc: NatsConnection, url: string, prefix: string, o: RunOptions) {
  const names = namesOf(prefix);
  const jsm = await jetstreamManager(nc, { timeout: 60_000 });
  await deletePrefix(jsm, names);
  const env = { NATS_URL: url, AIRTWIN_PREFIX: prefix, AIRTWIN_SHARDS: String(SHARDS), AIRTWIN_MEMORY_BUDGET_MB: "4096" };
  const nodes = [new NodeProcess(`${prefix}-a`, env), new NodeProcess(`${prefix}-b`, env)];
  // the nodes' event-loop stalls, sampled every second (a stall longer than a heartbeat loses leases)
  const lagMax = new Map<string, number>();
  const sampler = setInterval(() => {
    for (const n of nodes) void n.loopLagMaxMs().then((ms) => ms !== undefined && lagMax.set(n.nodeId, Math.max(lagMax.get(n.nodeId) ?? 0, ms)));
  }, 1000);
  try {
    await Promise.all(nodes.map((n) => n.ready));
    const ops = new OpsClient(nc, names, { timeoutMs: 15_000 });
    lagMax.clear();
    await until(() => nodes.every((n) => n.owned.size >= SHARDS / 2 - 1) && nodes[0]!.owned.size + nodes[1]!.owned.size === SHARDS, 120_000, "shards balanced over both nodes");
    note(`${prefix}: both nodes serve`, { owned: nodes.map((n) => n.owned.size), loopLagMaxMs: Object.fromEntries(lagMax) });
    lagMax.clear();

    // N active twins: every twin gets readings, applied and committed
    const f = fleet(o.twins, SHARDS);
    const watch = new CheckpointWatch(nc, names, SHARDS, new Kvm(nc));
    const filled = await prefill(nc, names, SHARDS, fleetBatches(f, 2, 500, Date.now()));
    await watch.reach(filled.lastSeq);
    watch.close();
    note(`${prefix}: ${o.twins} twins applied and committed`, { readings: filled.readings, loopLagMaxMs: Object.fromEntries(lagMax) });
    lagMax.clear();

    const probe = new Prober(nc, names, f);
    const rtts = await probe.roundTrips(200);

    // planned moves under load
    const pauses: number[] = [];
    const stopMs: number[] = [];
    const startMs: number[] = [];
    const timeline: Array<{ releasedMs: number; acquiredMs: number; waitMs: number; gapFromMs: number }> = [];
    let lostProbes = 0;
    if (o.moves > 0) {
      const load = new Load(nc, prefix, f, o.loadRps);
      const moved = new Set<number>();
      for (let k = 0; k < o.moves; k++) {
        const from = nodes[k % 2]!;
        const to = nodes[(k + 1) % 2]!;
        const shard = [...from.owned].find((s) => !moved.has(s) && f.byShard[s]!.length > 0);
        if (shard === undefined) throw new Error(`no shard left to move from ${from.nodeId}`);
        moved.add(shard);
        let t0 = 0;
        const { pauseMs: m, lost, gapFrom } = await probe.pauseDuring(shard, async () => {
          note(`move ${k + 1}: shard ${shard} ${from.nodeId} -> ${to.nodeId}`);
          const acquired = to.next((l) => l.msg === "shard acquired" && l.shard === shard);
          const released = from.next((l) => l.msg === "shard released" && l.shard === shard);
          t0 = performance.now();
          await ops.move(shard, to.nodeId);
          const [rel, acq] = await Promise.all([released, acquired]);
          stopMs.push(Number(rel.stopMs));
          startMs.push(Number(acq.startMs));
          // when each log line reached the bench, from the ops call (pipe latency included)
          timeline.push({ releasedMs: rel.at - t0, acquiredMs: acq.at - t0, waitMs: Number(acq.waitMs), gapFromMs: 0 });
        });
        timeline.at(-1)!.gapFromMs = gapFrom - t0;
        note(`move ${k + 1}: longest gap`, { pauseMs: round(m), fromMs: round(gapFrom - t0), releasedMs: round(timeline.at(-1)!.releasedMs), acquiredMs: round(timeline.at(-1)!.acquiredMs) });
        pauses.push(m);
        lostProbes += lost;
      }
      await load.stop();
      note(`${prefix}: moves`, { pausesMs: pauses.map((p) => round(p)), load: load.sent, loopLagMaxMs: Object.fromEntries(lagMax) });
      lagMax.clear();
    }

    // recovery after kill -9
    const view = await ops.cluster();
    const coordinator = view.coordinator?.nodeId;
    const victim = nodes.find((n) => (o.kill === "coordinator" ? n.nodeId === coordinator : n.nodeId !== coordinator))!;
    const survivor = nodes.find((n) => n !== victim)!;
    const victimShards = view.shards.filter((s) => s.owner === victim.nodeId).map((s) => s.shard);
    const victimTwins = victimShards.reduce((n, s) => n + f.byShard[s]!.length, 0);
    await probe.all(victimShards); // everything answers before the kill
    const acquiredAt = new Map<number, { at: number; waitMs: number; startMs: number }>();
    survivor.on((l) => {
      if (l.msg === "shard acquired" && typeof l.shard === "number") acquiredAt.set(l.shard, { at: l.at, waitMs: Number(l.waitMs), startMs: Number(l.startMs) });
    });
    lagMax.clear();
    const killedAt = performance.now();
    victim.kill("SIGKILL");
    const served = await probe.firstAnswers(victimShards, killedAt, 60_000);
    const acq = victimShards.map((s) => acquiredAt.get(s)).filter((x) => x !== undefined);
    const survivorLagMaxMs = lagMax.get(survivor.nodeId);
    const recovery = {
      survivorLoopLagMaxMs: survivorLagMaxMs === undefined ? undefined : round(survivorLagMaxMs),
      killed: victim.nodeId === coordinator ? "coordinator" : "non-coordinator",
      victimShards: victimShards.length,
      victimTwins,
      allServedMs: Math.max(...served),
      firstServedMs: round(Math.min(...served)),
      medianServedMs: round(median(served)),
      firstAcquiredMs: acq.length ? round(Math.min(...acq.map((a) => a.at - killedAt))) : undefined,
      shardStartMsMedian: acq.length ? round(median(acq.map((a) => a.startMs))) : undefined,
      shardStartMsMax: acq.length ? round(Math.max(...acq.map((a) => a.startMs))) : undefined,
    };
    return {
      pauses,
      rtts,
      recovery,
      moveBreakdown: {
        stopMsMedian: stopMs.length ? round(median(stopMs)) : undefined,
        startMsMedian: startMs.length ? round(median(startMs)) : undefined,
        releasedAfterMoveMsMedian: timeline.length ? round(median(timeline.map((t) => t.releasedMs))) : undefined,
        acquiredAfterMoveMsMedian: timeline.length ? round(median(timeline.map((t) => t.acquiredMs))) : undefined,
        acquireWaitMsMedian: timeline.length ? round(median(timeline.map((t) => t.waitMs))) : undefined,
        probesUnanswered: lostProbes,
      },
    };
  } catch (err) {
    const file = join(tmpdir(), `airtwin-bench-${prefix}-${process.pid}.log`);
    writeFileSync(file, nodes.flatMap((n) => n.logs.map((l) => `${n.nodeId} ${JSON.stringify(l)}`)).join("\n"));
    note(`${prefix}: failed; node logs in ${file}`);
    throw err;
  } finally {
    clearInterval(sampler);
    if (o.logsDir !== undefined) {
      const file = join(o.logsDir, `airtwin-bench-${prefix}-nodes.log`);
      writeFileSync(file, nodes.flatMap((n) => n.logs.map((l) => `${n.nodeId} ${JSON.stringify(l)}`)).join("\n"));
      note(`${prefix}: node logs in ${file}`);
    }
    await Promise.all(nodes.map((n) => n.stop()));
    await deletePrefix(jsm, names).catch(() => undefined);
  }
}

/** `get`s straight to a shard's request subject (no client retry delays hiding the timing). */
class Prober {
  private readonly body = new Map<number, Uint8Array>();
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    f: Fleet,
  ) {
    f.byShard.forEach((devices, s) => {
      if (devices.length > 0) this.body.set(s, encode({ type: TWIN_TYPE, id: f.ids[devices[0]!]!, q: null }));
    });
  }

  /** One get; true when the owner answered (with the twin). */
  async once(shard: number, timeoutMs: number): Promise<boolean> {
    return (await this.ask(shard, timeoutMs)) === "answered";
  }

  /** One get: answered, nobody subscribed (an immediate "no responders"), or no answer in time. */
  async ask(shard: number, timeoutMs: number): Promise<"answered" | "no-responders" | "timeout"> {
    try {
      const m = await this.nc.request(this.names.rpc(shard), this.body.get(shard)!, { timeout: timeoutMs });
      return m.data.length > 0 ? "answered" : "no-responders";
    } catch (err) {
      if (err instanceof natsErrors.NoRespondersError || isNoResponders(err)) return "no-responders";
      if (err instanceof natsErrors.TimeoutError || err instanceof natsErrors.RequestError) return "timeout";
      throw err;
    }
  }

  async roundTrips(n: number): Promise<number[]> {
    const shards = [...this.body.keys()];
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      if (await this.once(shards[i % shards.length]!, 2000)) out.push(performance.now() - t0);
    }
    return out;
  }

  async all(shards: number[]): Promise<void> {
    for (const s of shards) if (!(await this.once(s, 5000))) throw new Error(`shard ${s} does not answer`);
  }

  /**
   * Probes `shard` while `action` runs (and until it has answered again for 100 ms): a new `get` every
   * `everyMs`, each waiting up to 2 s, so one request lost in the hand-off does not hide the others.
   * Returns the longest interval between two consecutive answers, and how many requests got none.
   */
  async pauseDuring(shard: number, action: () => Promise<void>, everyMs = 5): Promise<{ pauseMs: number; lost: number; gapFrom: number }> {
    const answers: number[] = [];
    let lost = 0;
    let running = true;
    const inflight = new Set<Promise<void>>();
    const loop = (async () => {
      while (running) {
        const p = this.ask(shard, 2000).then((r) => {
          if (r === "answered") answers.push(performance.now());
          else if (r === "timeout") lost++; // delivered to an owner that never answered it
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        await sleep(everyMs);
      }
    })();
    await sleep(200);
    const from = answers.length;
    const lostBefore = lost;
    await action();
    const after = performance.now();
    await until(() => answers.length > 0 && answers[answers.length - 1]! > after + 100, 30_000, `shard ${shard} answering after the move`);
    running = false;
    await loop;
    await Promise.all(inflight);
    const window = answers.slice(Math.max(0, from - 1)).sort((a, b) => a - b);
    let pauseMs = 0;
    let gapFrom = 0;
    for (let i = 1; i < window.length; i++) {
      if (window[i]! - window[i - 1]! > pauseMs) [pauseMs, gapFrom] = [window[i]! - window[i - 1]!, window[i - 1]!];
    }
    return { pauseMs, lost: lost - lostBefore, gapFrom };
  }

  /** For each shard, ms from `since` until its first answer; probes all shards concurrently. */
  async firstAnswers(shards: number[], since: number, timeoutMs: number): Promise<number[]> {
    return Promise.all(
      shards.map(async (s) => {
        for (;;) {
          if (performance.now() - since > timeoutMs) throw new Error(`shard ${s} not served within ${timeoutMs} ms`);
          if (await this.once(s, 500)) return performance.now() - since;
          await sleep(20);
        }
      }),
    );
  }
}

/** A steady stream of readings to all twins (one at a time per twin, in order), via the typed client. */
class Load {
  sent = 0;
  private readonly client: RuntimeClient;
  private readonly timer: NodeJS.Timeout;
  private readonly acks: Array<Promise<unknown>> = [];
  private cursor = 0;

  constructor(nc: NatsConnection, prefix: string, private readonly f: Fleet, readingsPerS: number) {
    this.client = new RuntimeClient(nc, { prefix, shards: SHARDS });
    const rand = rng(7);
    const tickMs = 50;
    const perTick = Math.max(1, Math.round((readingsPerS * tickMs) / 1000));
    this.timer = setInterval(() => {
      for (let k = 0; k < perTick; k++) {
        const i = this.cursor++ % f.ids.length;
        this.acks.push(this.client.send(TWIN_TYPE, f.ids[i]!, "readings", readingsOf(f, i, 1, rand)).catch(() => undefined));
        this.sent++;
      }
      if (this.acks.length > 10_000) void Promise.all(this.acks.splice(0));
    }, tickMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.acks.splice(0));
    await this.client.close();
  }
}

function isNoResponders(err: unknown): boolean {
  const e = err as { message?: string; cause?: { message?: string } };
  return /no responders|503/.test(`${e.message ?? ""} ${e.cause?.message ?? ""}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
