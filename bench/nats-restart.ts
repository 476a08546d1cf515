// How long a 3-server JetStream cluster holding airtwin's layout takes to report itself healthy again
// after a `kill -9` of every server (the chaos run's `restart-all`), by the shards' input consumers:
// as shipped (one R3 consumer per shard), with two stale epochs' consumers left per shard (what an
// unswept restart leaves), and at one replica (the change docs/RELIABILITY.md weighs). The cluster setup,
// streams and per-shard snapshot buckets are airtwin's own (runtime/mod.ts), at replicas 3.
//
// With --load, every shard keeps working through the restarts as a running shard does: publish an
// input, pull and acknowledge it, write the twin's snapshot — errors ignored, the client reconnecting.
//
// node bin/bench.js nats-restart [--shards 24] [--streams 2] [--rounds 3] [--variants shipped,stale,r1] [--load]
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { ensureClusterForClients, names as namesOf } from "../runtime/mod.ts";
import { streamOfShard } from "../runtime/subjects.ts";
import { openSnapshotBucket } from "../runtime/snapshot-store.ts";
import { startNatsCluster } from "../test/harness/nats-cluster.ts";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { emit, median, note } from "./lib/report.ts";

const VARIANTS = { shipped: { epochs: [3], replicas: undefined }, stale: { epochs: [1, 2, 3], replicas: undefined }, r1: { epochs: [3], replicas: 1 } } as const;
type Variant = keyof typeof VARIANTS;

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const shards = int(args, "shards", 24);
  const streams = int(args, "streams", 2);
  const rounds = int(args, "rounds", 3);
  const variants = str(args, "variants", "shipped,stale,r1").split(",") as Variant[];
  const load = flag(args, "load");
  for (const v of variants) if (!(v in VARIANTS)) throw new Error(`unknown variant "${v}" (shipped, stale, r1)`);
  const results = new Map<Variant, number[]>();
  for (const variant of variants) {
    const ms = await restarts(variant, { shards, streams, rounds, load });
    results.set(variant, ms);
    note("variant done", { variant, healthyMs: ms });
  }
  const shipped = results.get("shipped");
  for (const [variant, ms] of results) {
    emit({
      suite: "nats-restart",
      name: `healthy-after-restart-all-ms-${variant}`,
      value: median(ms),
      unit: "ms",
      ...(shipped && variant !== "shipped" ? { baseline: { name: "shipped", value: median(shipped) } } : {}),
      detail: { rounds: ms, shards, streams, load, consumersPerShard: VARIANTS[variant].epochs.length },
    });
  }
}

/** One cluster per variant: the layout, then `rounds` restarts of every server, each timed to /healthz 200 on all. */
async function restarts(variant: Variant, o: { shards: number; streams: number; rounds: number; load: boolean }): Promise<number[]> {
  const { epochs, replicas } = VARIANTS[variant];
  const names = namesOf("rs");
  const cluster = await startNatsCluster({ size: 3 });
  try {
    const nc = await connect({ servers: cluster.urls });
    await ensureClusterForClients(nc, names, { shards: o.shards, streams: o.streams, replicas: 3 });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const kvm = new Kvm(js);
    for (let shard = 0; shard < o.shards; shard++) {
      const snapshots = await openSnapshotBucket(kvm, names.snapshotBucket(shard), { replicas: 3 });
      await snapshots.put("twin", new Uint8Array(600));
      for (let i = 0; i < 20; i++) await js.publish(names.input(shard), new Uint8Array(200));
      const stream = names.inputStream(streamOfShard(shard, o.shards, o.streams));
      for (const epoch of epochs) {
        const durable = names.shardConsumer(shard, epoch);
        await jsm.consumers.add(stream, { durable_name: durable, filter_subject: names.input(shard), ack_policy: AckPolicy.All, ...(replicas ? { num_replicas: replicas } : {}) });
        // a consumer that has delivered and acknowledged, as a running shard's has
        (await (await js.consumers.get(stream, durable)).next({ expires: 2000 }))?.ack();
      }
    }
    await nc.close();
    const work = o.load ? await workThrough(cluster.urls, names, o.shards, o.streams, epochs[epochs.length - 1]!) : undefined;
    const healthyMs: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      await Promise.all(cluster.servers.map((m) => m.kill("SIGKILL")));
      await new Promise((r) => setTimeout(r, 2000));
      const started = performance.now();
      await Promise.all(cluster.servers.map((m) => m.restart({ ready: "listening" })));
      await cluster.waitForHealthy(300_000);
      healthyMs.push(Math.round(performance.now() - started));
    }
    await work?.stop();
    return healthyMs;
  } finally {
    await cluster.stop();
  }
}

/** Each shard's loop of a running owner (input, pull + ack, snapshot write) until `stop()`; failures are waited out. */
async function workThrough(urls: string[], names: ReturnType<typeof namesOf>, shards: number, streams: number, epoch: number): Promise<{ stop(): Promise<void> }> {
  const nc = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const js = jetstream(nc, { timeout: 2000 });
  const kvm = new Kvm(js);
  let stopped = false;
  let done = 0;
  const loops = Array.from({ length: shards }, async (_, shard) => {
    const stream = names.inputStream(streamOfShard(shard, shards, streams));
    while (!stopped) {
      try {
        const snapshots = await openSnapshotBucket(kvm, names.snapshotBucket(shard), { replicas: 3 });
        const consumer = await js.consumers.get(stream, names.shardConsumer(shard, epoch));
        while (!stopped) {
          await js.publish(names.input(shard), new Uint8Array(200));
          (await consumer.next({ expires: 1000 }))?.ack();
          await snapshots.put("twin", new Uint8Array(600));
          done++;
        }
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      note("work done meanwhile", { cycles: done });
      await nc.close();
    },
  };
}
