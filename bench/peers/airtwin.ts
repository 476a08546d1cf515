// Peer 5, airtwin as shipped: `airtwin gateway` (HTTP) → JetStream input stream → `airtwin node` (every
// shard's twins, commit protocol of docs/design.md §2: snapshots and checkpoint written about every
// second), on a private nats-server, each a process of its own as in a deployment. The devices are
// registered through the admin API before the round; each request is the device's
// POST /v1/devices/:id/readings with its device token, over undici keep-alive connections (one per
// request in flight). The twins run airtwin's whole domain (statistics, hourly/daily buckets,
// calibration, rules, occupancy, forecasts, reports: docs/design.md §4) — far more than the peers'
// six statistics and pm events — and a built-in pm rule gives the pollution events.
//
// Tuning: none beyond the defaults (`AIRTWIN_INGEST_RATE_MAX` raised so the per-device rate limit
// does not refuse a benchmark's burst, no per-address connection cap: the bench is one address standing
// for a fleet; 64 shards, commit every second).
//
// Latency: request sent → 202, which the gateway answers after JetStream's PubAck: the readings are
// stored in the input stream, from which the twin's state is derived deterministically (a crash
// replays them from the last checkpoint, exactly once). The round ends when every shard's committed
// checkpoint covers the last input: readings/s is to the committed cut, and "commitLagS" is how long
// after the last 202 that took.
// Snapshots: each twin's at most every 30 s (peers.ts passes `--snapshot-interval-ms 30000`, i.e.
// AIRTWIN_SNAPSHOT_INTERVAL_MS; the node's default is 15 min), the log replaying the rest after a crash; `--snapshot-interval-ms 0` (system "airtwin-eager") writes every changed twin at
// every commit, as before issue #16's lever (a). The rate counts to the committed cut (every input
// applied, its outputs stored); CPU counts on until every deferred snapshot is written too ("snapshotsS":
// when that was), so the writes put off are in the CPU per reading — minus the processes' idle CPU over
// that wait (measured for 5 s after it; raw figures in cpuSAtCut, cpuSAtSnapshots, cpuSIdle).
// Variant "airtwin-client" (`--via client`): the same processes, the devices registered the same way,
// but the readings sent by this process through the runtime's own client (`RuntimeClient.send`, what the
// gateway calls for each request, with the gateway's batching options) instead of over HTTP — airtwin
// called by its client library as the Redis and Postgres peers are called by theirs. The gateway keeps
// running (and is metered: idle). Latency: send → the input message's PubAck (the same point as the 202).
// `--replicas 3` (variants "airtwin-r3", "airtwin-client-r3"): a 3-node JetStream cluster on this machine
// instead of one nats-server, AIRTWIN_REPLICAS=3 — the configuration that keeps every acknowledged reading
// through a machine's loss, the durability the other peers are compared at; all three servers metered.
// A crash loses: a node or gateway killed, nothing acknowledged (202 = stored; the next owner replays
// from the checkpoint); the machine (power, kernel) with one nats-server, what JetStream had not
// fsynced: nats-server 2.9 syncs its file store every 2 minutes (no `sync_interval: always` before
// 2.10); a 3-node JetStream cluster (R3 streams) keeps every 202'ed reading through one machine's loss.
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { Pool } from "undici";
import { TWIN_TYPE, TwinInputKinds } from "../../actors/device-twin/behavior.ts";
import { packReadings } from "../../actors/device-twin/domain/mod.ts";
import { DEFAULT_GATHER_MS, DEFAULT_GATHER_READINGS } from "../../gateways/http/config.ts";
import { loadConfig } from "../../runtime/config.ts";
import { RuntimeClient } from "../../runtime/mod.ts";
import { names as namesOf } from "../../runtime/subjects.ts";
import { freePort } from "../../cli/dev.ts";
import { startNatsCluster } from "../../test/harness/nats-cluster.ts";
import { startNatsServer } from "../../test/harness/nats-server.ts";
import { child, stop, untilServing } from "../gateway.ts";
import { benchSystemEnv } from "../lib/bench-system.ts";
import { CheckpointWatch, lastSeqPerShard } from "../lib/checkpoints.ts";
import { deviceId } from "../lib/fleet.ts";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { natsVersion, packageVersion } from "./versions.ts";
import { int, str } from "../lib/args.ts";
import { drive, emitRound, ProcessMeter, self, totalReadings, workloadFrom } from "./workload.ts";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "airtwin.js");
const ADMIN = "peers-admin-token-0123456789abcdef";
const PREFIX = "bp";
const SHARDS = 64;
/** Seconds of idle after the round whose CPU is the processes' idle rate (see the round's end). */
const IDLE_S = 5;

export async function main(argv: string[]): Promise<void> {
  const { workload: w, args } = workloadFrom(argv);
  const system = str(args, "system", "airtwin");
  const via = str(args, "via", "http");
  if (via !== "http" && via !== "client") throw new Error(`--via must be http or client, not "${via}"`);
  const snapshotIntervalMs = int(args, "snapshot-interval-ms", -1);
  const replicas = int(args, "replicas", 1);
  if (replicas !== 1 && replicas !== 3) throw new Error(`--replicas must be 1 or 3, not ${replicas}`);
  // R3: a 3-node JetStream cluster on this machine, every stream and bucket kept on all three
  await using ns: PeerNats = replicas === 1 ? await singleServer() : await clusterOf3();
  const env = {
    ...benchSystemEnv(ns.url, PREFIX, ADMIN),
    AIRTWIN_REPLICAS: String(replicas),
    ...(snapshotIntervalMs >= 0 ? { AIRTWIN_SNAPSHOT_INTERVAL_MS: String(snapshotIntervalMs) } : {}),
    AIRTWIN_SHARDS: String(SHARDS),
  };
  const port = await freePort("127.0.0.1");
  const node = child([BIN, "node"], { ...env, AIRTWIN_NODE_ID: "peers-node-1" }, "node");
  const gateway = child([BIN, "gateway"], { ...env, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: "127.0.0.1" }, "gateway");
  const url = `http://127.0.0.1:${port}`;
  const nc = await connect({ servers: ns.url.split(","), noAsyncTraces: true, name: "peers airtwin" });
  const pool = new Pool(url, { connections: w.concurrency, pipelining: 1 });
  try {
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    await untilServing(url, admin);
    await fetch(`${url}/v1/users`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "peers" }) });
    const tokens: string[] = new Array<string>(w.devices);
    for (let i = 0; i < w.devices; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, w.devices - i) }, async (_, k) => {
          const r = await pool.request({ method: "POST", path: "/v1/devices", headers: admin, body: JSON.stringify({ deviceId: deviceId(i + k), ownerId: "peers" }) });
          tokens[i + k] = ((await r.body.json()) as { token: string }).token;
        }),
      );
    }
    const names = namesOf(PREFIX);
    const jsm = await jetstreamManager(nc);
    const watch = new CheckpointWatch(nc, names, SHARDS, new Kvm(nc));
    const snapshots = new CheckpointWatch(nc, names, SHARDS, new Kvm(nc), "seq");
    // as the gateway makes its client (gateways/http/gateway.ts), from the same environment
    const config = loadConfig({ ...process.env, ...env });
    const client = via === "http" ? undefined : new RuntimeClient(nc, { prefix: PREFIX, shards: SHARDS, streams: config.streams, ackTimeoutMs: 3000, lingerMs: 2, gatherMs: DEFAULT_GATHER_MS, gatherWeight: DEFAULT_GATHER_READINGS });
    const meter = new ProcessMeter({ [via === "http" ? "bench (HTTP client)" : "bench (runtime client)"]: [self()], gateway: [gateway.proc.pid!], node: [node.proc.pid!], "nats-server": ns.pids });
    let failed = 0;
    const t0 = performance.now();
    const { latencyMs, seconds: sendS } = await drive(
      w,
      client !== undefined
        ? async (r) => {
            await client.send(TWIN_TYPE, r.deviceId, TwinInputKinds.readings, packReadings(r.readings), { weight: r.readings.length });
          }
        : async (r) => {
            const res = await pool.request({
              method: "POST",
              path: `/v1/devices/${r.deviceId}/readings`,
              headers: { authorization: `Bearer ${tokens[r.device]}`, "content-type": "application/json" },
              body: JSON.stringify({ readings: r.readings }),
            });
            await res.body.dump();
            if (res.statusCode !== 202) failed++;
          },
    );
    if (failed > 0) throw new Error(`${failed} requests were not accepted`);
    const target = await lastSeqPerShard(jsm, names, names.inputStream(0), SHARDS);
    await watch.reach(target, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    const atCut = meter.read().cpuS;
    await snapshots.reach(target, 600_000);
    const snapshotsS = (performance.now() - t0) / 1000;
    const atSnapshots = meter.read().cpuS;
    // The wait for the deferred snapshots is mostly idle (heartbeats, pulls, commit timers): its CPU
    // counts minus what the same processes spend idle, measured right after for IDLE_S.
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const { cpuS: afterIdle, peakRssMb } = meter.read();
    const tailS = snapshotsS - seconds;
    const cpuS = Object.fromEntries(
      Object.entries(atCut).map(([k, v]) => {
        const idlePerS = (afterIdle[k]! - atSnapshots[k]!) / IDLE_S;
        return [k, Math.round((v + Math.max(0, atSnapshots[k]! - v - idlePerS * tailS)) * 1000) / 1000];
      }),
    );
    watch.close();
    snapshots.close();
    await client?.close();
    emitRound(w, {
      system,
      readings: totalReadings(w),
      seconds,
      latencyMs,
      latencyIs:
        via === "http"
          ? "sent → HTTP 202 (readings stored in JetStream; the state derived from them is replayed exactly once after a crash)"
          : "sent → PubAck of the input message (readings stored in JetStream, as behind a 202)",
      cpuS,
      peakRssMb,
      crashLoses:
        replicas === 1
          ? "node, gateway or nats-server killed: nothing acknowledged; machine crash with one nats-server: what JetStream had not fsynced (2.9: every 2 min); R3 cluster: nothing on one machine's loss"
          : "a node, the gateway or any one nats-server killed: nothing acknowledged (every input is on two of the three servers before its PubAck); the servers on three machines, one machine lost: nothing (here all three share one machine)",
      versions: { airtwin: packageVersion("../"), "nats-server": natsVersion(), undici: packageVersion("undici") },
      extra: { replicas, sendS: Math.round(sendS * 1000) / 1000, commitLagS: Math.round((seconds - sendS) * 1000) / 1000, snapshotsS: Math.round(snapshotsS * 1000) / 1000, cpuSAtCut: atCut, cpuSAtSnapshots: atSnapshots, cpuSIdle: afterIdle, inputMessages: (await jsm.streams.info(names.inputStream(0))).state.messages },
    });
  } finally {
    await pool.close();
    await nc.close();
    await stop(gateway.proc);
    await stop(node.proc);
  }
}

/** The peer's NATS: one server, or a 3-node cluster (its URLs comma-separated, as NATS_URL takes them); `pids` to meter. */
interface PeerNats extends AsyncDisposable {
  url: string;
  pids: number[];
}

async function singleServer(): Promise<PeerNats> {
  const server = await startNatsServer();
  return { url: server.url, pids: [server.pid], [Symbol.asyncDispose]: () => server.stop() };
}

async function clusterOf3(): Promise<PeerNats> {
  const cluster = await startNatsCluster({ size: 3, name: "airtwin-peers" });
  return { url: cluster.urls.join(","), pids: cluster.servers.map((m) => m.pid), [Symbol.asyncDispose]: () => cluster.stop() };
}
