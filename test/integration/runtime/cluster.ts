// A process-level test cluster: `airtwin node` processes (node-process.ts) against a real nats-server
// started by the harness, a RuntimeClient and an OpsClient for the test, and the cluster bucket read
// directly (leases, assignments, heartbeats) to see who owns what without asking any node.
//
//   const c = await TestCluster.start(server, { prefix: "it1", nodes: ["a", "b", "c"] });
//   await c.waitBalanced();
//   …
//   await c.close();

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, DeliverPolicy, type JetStreamManager, type JsMsg, type OrderedConsumerOptions } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { Packr } from "msgpackr";
import { RuntimeClient } from "../../../runtime/client.ts";
import { decode } from "../../../runtime/codec.ts";
import { openClusterBucket } from "../../../runtime/ownership/meta.ts";
import { OpsClient } from "../../../runtime/ownership/mod.ts";
import { names, type Names } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { CONVERGE_MS, NodeProcess, type NodeProcessOptions } from "./node-process.ts";

/** A `lease.<shard>` record of the cluster bucket (docs/design.md §3.4: KV lease with a monotonically increasing epoch). */
export interface Lease {
  shard: number;
  owner: string | null;
  epoch: number;
  expiresAt: number;
}

/** Options of {@link TestCluster.start}. */
export interface TestClusterOptions {
  prefix: string;
  /** Node ids to start (in parallel). */
  nodes: string[];
  /** Default 16. */
  shards?: number;
  /** Extra environment of every node (e.g. AIRTWIN_OFFLINE_AFTER_MS). */
  env?: Record<string, string>;
  /** Passed to every node. */
  node?: Partial<Pick<NodeProcessOptions, "leaseTtlMs" | "heartbeatMs" | "commitIntervalMs">>;
  /** JetStream replicas of every stream and bucket (`AIRTWIN_REPLICAS`, and the cluster bucket made here). Default 1. */
  replicas?: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
/** How long reading a stream to its end may take (a few thousand messages: seconds at most). */
const READ_TO_END_MS = 60_000;

/** Node processes of one cluster (one subject prefix) plus the test's clients. */
export class TestCluster {
  readonly prefix: string;
  readonly shards: number;
  readonly names: Names;
  readonly logDir: string;
  /** Every process started, by node id (the latest incarnation). */
  readonly nodes = new Map<string, NodeProcess>();
  /** Every incarnation ever started (for log dumps). */
  readonly incarnations: NodeProcess[] = [];
  readonly nc: NatsConnection;
  readonly client: RuntimeClient;
  readonly ops: OpsClient;
  readonly jsm: JetStreamManager;
  readonly kv: KV;
  #natsUrl: string;
  readonly #o: TestClusterOptions;

  private constructor(natsUrl: string, o: TestClusterOptions, nc: NatsConnection, jsm: JetStreamManager, kv: KV, logDir: string) {
    this.#natsUrl = natsUrl;
    this.#o = o;
    this.prefix = o.prefix;
    this.shards = o.shards ?? 16;
    this.names = names(o.prefix);
    this.nc = nc;
    this.jsm = jsm;
    this.kv = kv;
    this.logDir = logDir;
    // a generous ack timeout: this 2-core machine is shared with other suites
    this.client = new RuntimeClient(nc, { prefix: o.prefix, shards: this.shards, ackTimeoutMs: 30_000, maxInFlight: 2048, maxBatchItems: 50 });
    this.ops = new OpsClient(nc, this.names, { timeoutMs: 15_000 });
  }

  /** Starts the nodes (in parallel) and connects the test's clients. The cluster bucket exists once any node is up. */
  static async start(natsUrl: string, o: TestClusterOptions): Promise<TestCluster> {
    const logDir = mkdtempSync(join(tmpdir(), `airtwin-it-${o.prefix}-`));
    const nc = await connect({ servers: natsUrl, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, name: `test ${o.prefix}` });
    const jsm = await jetstreamManager(nc);
    // as a node opens it: with replicas 3 on a loaded machine, creating it can outlast one 5 s request
    const bucket = await openClusterBucket((timeout) => new Kvm(jetstream(nc, { timeout })), names(o.prefix), o.replicas ?? 1);
    const cluster = new TestCluster(natsUrl, o, nc, jsm, bucket, logDir);
    try {
      await Promise.all(o.nodes.map((id) => cluster.startNode(id)));
    } catch (err) {
      await cluster.close({ keepLogs: true });
      throw err;
    }
    return cluster;
  }

  get natsUrl(): string {
    return this.#natsUrl;
  }

  /** Starts (or restarts) the node `id` and waits for "node ready". */
  async startNode(id: string, env: Record<string, string> = {}): Promise<NodeProcess> {
    const node = await NodeProcess.start({
      natsUrl: this.#natsUrl,
      nodeId: id,
      prefix: this.prefix,
      shards: this.shards,
      logDir: this.logDir,
      ...this.#o.node,
      env: { AIRTWIN_REPLICAS: String(this.#o.replicas ?? 1), ...this.#o.env, ...env },
    });
    this.nodes.set(id, node);
    this.incarnations.push(node);
    return node;
  }

  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Ids of nodes whose process runs and is not paused. */
  liveIds(): string[] {
    return [...this.nodes.values()].filter((n) => n.running && !n.paused).map((n) => n.nodeId);
  }

  /** Every shard's lease record, straight from the cluster bucket. */
  async leases(): Promise<Lease[]> {
    return Promise.all(
      Array.from({ length: this.shards }, async (_, shard) => {
        const e = await this.kv.get(`lease.${shard}`);
        if (e === null || e.operation !== "PUT" || e.value.length === 0) return { shard, owner: null, epoch: 0, expiresAt: 0 };
        const r = decode<Lease>(e.value);
        return { shard, owner: r.owner, epoch: r.epoch, expiresAt: r.expiresAt };
      }),
    );
  }

  /** Shards held by an unexpired lease, per owner. */
  async ownership(now = Date.now()): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    for (const l of await this.leases()) {
      if (l.owner === null || l.expiresAt <= now) continue;
      const list = out.get(l.owner) ?? [];
      list.push(l.shard);
      out.set(l.owner, list);
    }
    return out;
  }

  /**
   * Waits until every shard is held by one of `nodeIds` (default: the live ones) and each holds
   * shards/n ± 1 (floor..ceil); returns the shards per node.
   */
  async waitBalanced(nodeIds = this.liveIds(), timeoutMs = CONVERGE_MS): Promise<Map<string, number[]>> {
    const lo = Math.floor(this.shards / nodeIds.length);
    const hi = Math.ceil(this.shards / nodeIds.length);
    return waitFor(
      async () => {
        const own = await this.ownership();
        const held = [...own.values()].reduce((n, s) => n + s.length, 0);
        if (held !== this.shards || [...own.keys()].some((id) => !nodeIds.includes(id))) return undefined;
        return nodeIds.every((id) => (own.get(id)?.length ?? 0) >= lo && (own.get(id)?.length ?? 0) <= hi) ? own : undefined;
      },
      { timeoutMs, intervalMs: 100, message: `shards balanced over ${nodeIds.join(",")}` },
    );
  }

  /**
   * Waits until every shard is leased by one of `nodeIds` and its owner answers a live query for
   * `probe(shard)` (a device id in that shard).
   */
  async waitServed(probe: (shard: number) => string, nodeIds = this.liveIds(), timeoutMs = CONVERGE_MS): Promise<void> {
    await waitFor(
      async () => {
        const now = Date.now();
        const leases = await this.leases();
        return leases.every((l) => l.owner !== null && nodeIds.includes(l.owner) && l.expiresAt > now);
      },
      { timeoutMs, intervalMs: 50, message: `every shard leased by one of ${nodeIds.join(",")}` },
    );
    await Promise.all(
      Array.from({ length: this.shards }, (_, shard) =>
        waitFor(async () => (await this.client.get("twin", probe(shard), null, { timeoutMs: 2000 })).ok, {
          timeoutMs,
          intervalMs: 50,
          message: `shard ${shard} answers`,
        }),
      ),
    );
  }

  /** The elected coordinator's node id, from the cluster bucket (undefined when none is elected). */
  async coordinatorId(): Promise<string | undefined> {
    const e = await this.kv.get("coordinator");
    if (e === null || e.operation !== "PUT" || e.value.length === 0) return undefined;
    const r = decode<{ nodeId: string; expiresAt: number }>(e.value);
    return r.expiresAt > Date.now() ? r.nodeId : undefined;
  }

  /**
   * Every message left in a shard's snapshot bucket (the last per key), in stream order, with the epoch
   * of the owner that wrote it (header `Airtwin-Epoch`).
   */
  async snapshotWrites(shard: number): Promise<Array<{ seq: number; key: string; epoch: number }>> {
    const bucket = this.names.snapshotBucket(shard);
    const stream = `KV_${bucket}`;
    const info = await this.jsm.streams.info(stream);
    if (info.state.messages === 0) return [];
    // read up to the stream's last message now: the owner may write on meanwhile (see readToEnd)
    return this.readToEnd(stream, { deliver_policy: DeliverPolicy.All }, `snapshot writes of shard ${shard}`, info.state.last_seq, (m) => ({
      seq: m.seq,
      key: m.subject.slice(`$KV.${bucket}.`.length),
      epoch: Number(m.headers?.get("Airtwin-Epoch") ?? Number.NaN),
    }));
  }

  /** Ids of every alert published on `<prefix>.out.alert.<filter>`, in stream order, from the OUT stream. */
  async alerts(filter: string): Promise<Array<Record<string, unknown>>> {
    const stream = this.names.outputStream;
    const subject = `${this.names.outputRoot}.alert.${filter}`;
    const info = await this.jsm.streams.info(stream, { subjects_filter: subject });
    const expected = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    if (expected === 0) return [];
    return this.readToEnd(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All }, `alerts ${filter}`, undefined, (m) => packr.unpack(m.data) as Record<string, unknown>);
  }

  /**
   * Every message of `stream` matching `config`, read with an ordered consumer until one with nothing
   * pending after it, or the one at `untilSeq` or past it. A stream that drops messages by key (a KV
   * bucket, one per key) needs `untilSeq`: nats-server 2.9 counts a message dropped after the consumer
   * was made (its key written again) as still pending, so while the bucket is written the last message
   * can arrive with 1–3 "pending" and nothing after it (seen at every pass in a loop against a rewritten
   * bucket). Fails after READ_TO_END_MS saying how far it got, rather than hang the test.
   */
  private async readToEnd<T>(stream: string, config: Partial<OrderedConsumerOptions>, what: string, untilSeq: number | undefined, map: (m: JsMsg) => T): Promise<T[]> {
    const consumer = await jetstream(this.nc).consumers.get(stream, config);
    const out: T[] = [];
    const messages = await consumer.consume({ max_messages: 1000 });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void messages.close();
    }, READ_TO_END_MS);
    try {
      for await (const m of messages) {
        out.push(map(m));
        if (m.info.pending === 0 || (untilSeq !== undefined && m.seq >= untilSeq)) break;
      }
    } finally {
      clearTimeout(timer);
      await messages.close();
    }
    if (timedOut) throw new Error(`${what}: ${out.length} messages read from ${stream}, the last one not reached within ${READ_TO_END_MS} ms`);
    return out;
  }

  /** Messages per subject in the OUT stream under `<prefix>.out.<filter>`. */
  async outputCounts(filter: string): Promise<Record<string, number>> {
    const info = await this.jsm.streams.info(this.names.outputStream, { subjects_filter: `${this.names.outputRoot}.${filter}` });
    return info.state.subjects ?? {};
  }

  /**
   * The pause of a planned hand-off of `shard` away from the lease of epoch `fromEpoch`, from the nodes'
   * logs: from the moment the old owner began to stop (its "shard released" time minus `stopMs`) until
   * the next owner's runner served it ("shard started" of the next epoch). Undefined when the old owner
   * did not release it in a planned way (it lost the lease instead).
   */
  handoffPause(shard: number, fromEpoch: number): { pauseMs: number; stopMs: number; from: string; to: string; epoch: number } | undefined {
    let released: { at: number; stopMs: number; node: string } | undefined;
    let started: { at: number; node: string; epoch: number } | undefined;
    for (const n of this.incarnations) {
      for (const e of n.logEntries()) {
        if (e.shard !== shard || typeof e.epoch !== "number") continue;
        if (e.msg === "shard released" && e.epoch === fromEpoch) {
          released = { at: Date.parse(String(e.time)), stopMs: Number(e.stopMs), node: n.nodeId };
        } else if (e.msg === "shard started" && e.epoch > fromEpoch && (started === undefined || e.epoch < started.epoch)) {
          started = { at: Date.parse(String(e.time)), node: n.nodeId, epoch: e.epoch };
        }
      }
    }
    if (released === undefined || started === undefined) return undefined;
    return { pauseMs: started.at - (released.at - released.stopMs), stopMs: released.stopMs, from: released.node, to: started.node, epoch: started.epoch };
  }

  /** The last `lines` log lines of every node incarnation, for failure messages. */
  dumpLogs(lines = 25): string {
    return this.incarnations.map((n) => `--- ${n.nodeId} (pid ${n.pid}, ${n.running ? "running" : "ended"}) ${n.logFile}\n${n.logTail(lines)}`).join("\n");
  }

  /** Kills what still runs, closes the clients and removes the logs (kept when asked, or with AIRTWIN_TEST_KEEP=1). */
  async close(o: { keepLogs?: boolean } = {}): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.kill("SIGKILL")));
    await this.client.close().catch(() => undefined);
    await this.nc.close().catch(() => undefined);
    if (!o.keepLogs && process.env.AIRTWIN_TEST_KEEP !== "1") rmSync(this.logDir, { recursive: true, force: true });
  }
}

/** For each shard, the first id of `ids` that hashes to it (probes for {@link TestCluster.waitServed}). */
export function probesByShard(client: RuntimeClient, ids: readonly string[]): (shard: number) => string {
  const byShard = new Map<number, string>();
  for (const id of ids) {
    const s = client.shardOf(id);
    if (!byShard.has(s)) byShard.set(s, id);
  }
  return (shard) => {
    const id = byShard.get(shard);
    if (id === undefined) throw new Error(`no device in shard ${shard}`);
    return id;
  };
}

/** p-th percentile (0..100) of `xs`, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
