// A node killed with SIGKILL in service and started again at once, as a supervisor would, while the load
// goes on: what the crash costs the fleet. Measured from outside the node, on what a user would see —
// each shard's committed checkpoint (its `applied`: state current, outputs stored) against the input
// streams' last messages:
// - the replay it owes: from each stream's earliest replay start (the checkpoints' `seq`, before which
//   every input is in its twin's snapshot) to the last message at the kill, in messages and in minutes
//   of input (the age of the first message to replay);
// - when the restarted node holds every shard (its lease, after the dead node's heartbeat expired);
// - when every input accepted before the kill is applied and committed ("the crash covered");
// - when the state is live again: every shard's checkpoint within LIVE_S of its input, held for a few
//   polls in a row (the figure a user cares about: alerts and reads current again);
// - the servers' CPU from the restart until then, the restarted node's peak RSS.
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { names as namesOf, shardsOfStream, type Names } from "../../runtime/subjects.ts";
import { ProcessMeter } from "../peers/workload.ts";
import { lastSeqPerShard, readCheckpoints } from "./checkpoints.ts";
import { note, round } from "./report.ts";

/** The state counts as live when every shard's checkpoint covers its input of this many seconds ago. */
const LIVE_S = 5;
/** … at this many polls (a second apart) in a row. */
const LIVE_POLLS = 3;

export interface NodeCrash {
  natsUrl: string;
  prefix: string;
  shards: number;
  streams: number;
  /** Kills the node (SIGKILL) and resolves once it is gone. */
  kill: () => Promise<void>;
  /** Starts the node again (same id, same environment); its pid. */
  restart: () => number;
  /** The restarted node's /metrics. */
  metricsUrl: string;
  /** The other servers to meter from the restart. */
  servers: Record<string, number[]>;
  timeoutMs?: number;
}

export interface NodeCrashFigures {
  /** Messages between the streams' replay starts and their last message at the kill. */
  replayMessages: number;
  /** Age of the oldest message to replay, at the kill (minutes of input). */
  replayMinutes: number;
  /** Seconds from the kill: the restarted node holds every shard. */
  allShardsS: number | null;
  /** … every input accepted before the kill is applied and committed. */
  crashCoveredS: number | null;
  /** … every shard's checkpoint within LIVE_S s of its input, LIVE_POLLS polls in a row (the first of them). */
  liveS: number | null;
  /** CPU seconds of each server from the restart to `liveS` (or the timeout). */
  cpuS: Record<string, number>;
  /** Peak RSS (MB) of each server as read at the end. */
  peakRssMb: Record<string, number>;
}

/** Every shard's last input sequence, each read from its own stream. */
async function lastSeqOfEveryShard(jsm: JetStreamManager, names: Names, shards: number, streams: number): Promise<number[]> {
  const out = new Array<number>(shards).fill(0);
  for (let k = 0; k < streams; k++) {
    const last = await lastSeqPerShard(jsm, names, names.inputStream(k), shards, k);
    for (const s of shardsOfStream(k, shards, streams)) out[s] = last[s]!;
  }
  return out;
}

async function shardsOwned(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return Number(/^airtwin_shards_owned(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text)?.[1] ?? 0);
}

export async function measureNodeCrash(o: NodeCrash): Promise<NodeCrashFigures> {
  const nc = await connect({ servers: o.natsUrl, noAsyncTraces: true, name: "fleet node-crash" });
  try {
    const jsm = await jetstreamManager(nc);
    const kvm = new Kvm(nc);
    const names = namesOf(o.prefix);
    const replayFrom = await readCheckpoints(kvm, names, o.shards, undefined, "seq");
    const t0 = performance.now();
    const killedAt = Date.now();
    await o.kill();
    const atKill = await lastSeqOfEveryShard(jsm, names, o.shards, o.streams);
    const pid = o.restart();
    const meter = new ProcessMeter({ ...o.servers, node: [] });
    meter.add("node", pid); // from its start

    // the replay owed: per stream, from its shards' earliest checkpoint to its last message at the kill
    let replayMessages = 0;
    let oldest = killedAt;
    for (let k = 0; k < o.streams; k++) {
      const shards = shardsOfStream(k, o.shards, o.streams);
      const from = Math.min(...shards.map((s) => replayFrom[s]!));
      const to = Math.max(...shards.map((s) => atKill[s]!));
      replayMessages += Math.max(0, to - from);
      const first = await jsm.streams.getMessage(names.inputStream(k), { seq: from + 1 }).catch(() => null);
      if (first !== null) oldest = Math.min(oldest, first.time.getTime());
    }
    const replayMinutes = round((killedAt - oldest) / 60_000);
    note("node killed", { replayMessages, replayMinutes });

    const since = () => round((performance.now() - t0) / 1000);
    let allShardsS: number | null = null;
    let crashCoveredS: number | null = null;
    let liveS: number | null = null;
    let liveRun = 0;
    let noted = 0;
    const lastSeen: Array<{ at: number; last: number[] }> = [{ at: performance.now(), last: atKill }];
    const deadline = performance.now() + (o.timeoutMs ?? 1_200_000);
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      const [owned, applied, last] = await Promise.all([
        shardsOwned(o.metricsUrl).catch(() => 0),
        readCheckpoints(kvm, names, o.shards),
        lastSeqOfEveryShard(jsm, names, o.shards, o.streams),
      ]);
      const now = performance.now();
      lastSeen.push({ at: now, last });
      while (lastSeen.length > 1 && lastSeen[1]!.at <= now - LIVE_S * 1000) lastSeen.shift();
      if (allShardsS === null && owned === o.shards) allShardsS = since();
      if (crashCoveredS === null && applied.every((a, s) => a >= atKill[s]!)) crashCoveredS = since();
      // the input as it was LIVE_S ago (the oldest reading kept, at least that old once the window is full)
      const ago = lastSeen[0]!;
      const live = crashCoveredS !== null && now - ago.at >= LIVE_S * 1000 - 100 && applied.every((a, s) => a >= ago.last[s]!);
      liveRun = live ? liveRun + 1 : 0;
      if (liveRun === 1) liveS = since();
      if (liveRun === 0) liveS = null;
      if (liveRun >= LIVE_POLLS) break;
      if (since() >= noted + 15) {
        noted = since();
        note("recovering", { s: noted, owned, shardsBehindTheKill: applied.filter((a, s) => a < atKill[s]!).length });
      }
    }
    const { cpuS, peakRssMb } = meter.read();
    return { replayMessages, replayMinutes, allShardsS, crashCoveredS, liveS: liveRun >= LIVE_POLLS ? liveS : null, cpuS, peakRssMb };
  } finally {
    await nc.close();
  }
}
