// Probe for docs/design.md §7, "the message economy at one reading a request": what input messages per
// input stream instead of per shard would save, measured before building it. One process plays the
// gateway (the runtime's InputBatcher with its adaptive linger, keyed by shard or by stream), the node
// (a pull consumer per shard, or one for the stream, acknowledging what it has read once a second as
// the node's commits do at the default AIRTWIN_COMMIT_INTERVAL_MS) and the archive (one durable consumer on every input, an explicit ack a message). Arrivals
// are 1 reading each, Poisson at the given rate, each to a random one of the shards — the fleet at the
// real cadence. Modes alternate on a fresh nats-server each round; printed per round and as medians:
// readings a stored message, nats-server's CPU and this process's CPU per reading, PubAck p50/p99. The
// shards' checkpoint puts (one a shard and commit) are the same in both designs and left out.
// --modes picks the variants (default shard,stream; see MODES: the archive acknowledging all it has read every
// 200 ms instead of each message, or no archive, to price its acknowledgements).
// --cluster: a 3-server cluster, stream and durable consumers with 3 replicas; nats-server CPU summed over the three.
// `node --import tsx bench/input-batching-probe.ts [--rate 1000] [--seconds 20] [--shards 64] [--rounds 3] [--modes shard,stream] [--cluster]`
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { InputBatcher } from "../runtime/input-batcher.ts";
import type { InputItem } from "../runtime/envelope.ts";
import { startNatsCluster } from "../test/harness/nats-cluster.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "20" },
    shards: { type: "string", default: "64" },
    rounds: { type: "string", default: "3" },
    modes: { type: "string", default: "shard,stream" },
    cluster: { type: "boolean", default: false },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const shards = Number(values.shards);
const rounds = Number(values.rounds);
const COMMIT_EVERY_MS = 1000;
/**
 * How the archive acknowledges: "explicit" (a message each, the moment it arrives), "batched" (a message
 * each, all those read sent together every ARCHIVE_FLUSH_MS — as the archive did after each batch's
 * commit before its input streams were read in turns), "all" (AckAll for the last of what it read, every
 * ARCHIVE_FLUSH_MS), "reader" (no acknowledgements: an ephemeral consumer in memory with one replica, as
 * the archive reads an input stream in its turn now), "none" (no archive at all).
 */
const ARCHIVE_FLUSH_MS = 200;
const MODES = {
  shard: { inputs: "shard", archive: "explicit" },
  stream: { inputs: "stream", archive: "explicit" },
  "shard-archive-ackall": { inputs: "shard", archive: "all" },
  "shard-archive-batched": { inputs: "shard", archive: "batched" },
  "shard-archive-reader": { inputs: "shard", archive: "reader" },
  "stream-archive-ackall": { inputs: "stream", archive: "all" },
  "shard-no-archive": { inputs: "shard", archive: "none" },
} as const;
type Mode = keyof typeof MODES;
const modes = values.modes.split(",") as Mode[];
for (const m of modes) if (!(m in MODES)) throw new Error(`unknown mode ${m}; known: ${Object.keys(MODES).join(", ")}`);

const processCpuS = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const ownCpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const quantile = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const median = (xs: number[]) => quantile([...xs], 0.5);

async function round(mode: Mode) {
  const { inputs, archive: archiveAcks } = MODES[mode];
  // --cluster: three servers, the stream and the durable consumers with three replicas (production's shape)
  await using ns = values.cluster ? await startNatsCluster({ size: 3 }) : await startNatsServer();
  const pids = "servers" in ns ? ns.servers.map((m) => m.pid) : [ns.pid];
  const natsCpuS = () => pids.reduce((sum, pid) => sum + processCpuS(pid), 0);
  const nc = await connect({ servers: "urls" in ns ? ns.urls : ns.url });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: "IN", subjects: ["in.>"], num_replicas: pids.length });
  const subjectOf = (key: number) => (inputs === "shard" ? `in.${key}` : "in.g0");
  const readers = inputs === "shard" ? shards : 1;
  const stops: (() => void)[] = [];
  let read = 0;
  for (let k = 0; k < readers; k++) {
    const name = `node-${k}`;
    await jsm.consumers.add("IN", { durable_name: name, ack_policy: AckPolicy.All, filter_subject: subjectOf(k) });
    const messages = await (await js.consumers.get("IN", name)).consume({ max_messages: 64, threshold_messages: 16 });
    let last: JsMsg | undefined;
    const commit = setInterval(() => {
      last?.ack();
      last = undefined;
    }, COMMIT_EVERY_MS);
    stops.push(() => clearInterval(commit));
    void (async () => {
      for await (const m of messages) {
        read += m.data.length > 0 ? 1 : 0;
        last = m;
      }
    })();
  }
  if (archiveAcks !== "none") {
    if (archiveAcks === "reader") await jsm.consumers.add("IN", { name: "archive", ack_policy: AckPolicy.None, filter_subject: "in.>", mem_storage: true, num_replicas: 1 });
    else await jsm.consumers.add("IN", { durable_name: "archive", ack_policy: archiveAcks === "all" ? AckPolicy.All : AckPolicy.Explicit, filter_subject: "in.>" });
    const archive = await (await js.consumers.get("IN", "archive")).consume({ max_messages: 256, threshold_messages: 64 });
    let last: JsMsg | undefined;
    const held: JsMsg[] = [];
    if (archiveAcks === "all" || archiveAcks === "batched") {
      const flush = setInterval(() => {
        last?.ack();
        last = undefined;
        for (const m of held.splice(0)) m.ack();
      }, ARCHIVE_FLUSH_MS);
      stops.push(() => clearInterval(flush));
    }
    void (async () => {
      for await (const m of archive) {
        if (archiveAcks === "all") last = m;
        else if (archiveAcks === "batched") held.push(m);
        else m.ack();
      }
    })();
  }

  let messages = 0;
  const batcher = new InputBatcher(
    (key, items) => {
      messages++;
      // ~150 bytes an item, the size of one reading's input
      return [{ count: items.length, ack: js.publish(subjectOf(key), new Uint8Array(150 * items.length)) }];
    },
    { lingerMs: 2, maxBatchItems: 100 },
  );
  await new Promise((r) => setTimeout(r, 1000));
  const total = rate * seconds;
  const pubAckMs: number[] = [];
  const pending: Promise<unknown>[] = [];
  const nats0 = natsCpuS();
  const own0 = ownCpuS();
  const t0 = performance.now();
  let due = t0;
  for (let i = 0; i < total; i++) {
    due += -Math.log(1 - Math.random()) * (1000 / rate);
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const shard = Math.floor(Math.random() * shards);
    const sent = performance.now();
    pending.push(batcher.add(inputs === "shard" ? shard : 0, { shard } as unknown as InputItem).then(() => pubAckMs.push(performance.now() - sent)));
  }
  await Promise.all(pending);
  while (read < messages) await new Promise((r) => setTimeout(r, 20));
  const natsCpu = natsCpuS() - nats0;
  const ownCpu = ownCpuS() - own0;
  for (const stop of stops) stop();
  batcher.close();
  await nc.close();
  return {
    mode,
    readingsPerMessage: +(total / messages).toFixed(2),
    natsUsPerReading: Math.round((natsCpu * 1e6) / total),
    clientsUsPerReading: Math.round((ownCpu * 1e6) / total),
    pubAckP50Ms: +quantile(pubAckMs, 0.5).toFixed(2),
    pubAckP99Ms: +quantile(pubAckMs, 0.99).toFixed(2),
  };
}

const results: Awaited<ReturnType<typeof round>>[] = [];
for (let r = 0; r < rounds; r++) {
  for (const mode of modes) {
    const res = await round(mode);
    results.push(res);
    process.stdout.write(`${JSON.stringify({ round: r + 1, rate, shards, ...res })}\n`);
  }
}
for (const mode of modes) {
  const of = results.filter((x) => x.mode === mode);
  const med = (f: (x: (typeof of)[number]) => number) => median(of.map(f));
  process.stdout.write(
    `${JSON.stringify({ median: mode, rate, shards, readingsPerMessage: med((x) => x.readingsPerMessage), natsUsPerReading: med((x) => x.natsUsPerReading), clientsUsPerReading: med((x) => x.clientsUsPerReading), pubAckP99Ms: med((x) => x.pubAckP99Ms) })}\n`,
  );
}
