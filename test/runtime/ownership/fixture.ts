// Several ownership instances in one process against one real nats-server, each on its own connection,
// with short test timings. Every test uses its own subject prefix, so tests share a server safely.
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startOwnership, type Ownership } from "../../../runtime/ownership/mod.ts";
import type { LogFn } from "../../../runtime/log.ts";
import type { OwnershipOptions } from "../../../runtime/ownership/options.ts";
import { names, type Names } from "../../../runtime/subjects.ts";
import { FakeHost, HolderRegistry } from "./fake-host.ts";

/** Test timings: heartbeat 200 ms, node and lease TTL 1000 ms, KV requests time out after 1000 ms. */
export const FAST: OwnershipOptions = {
  heartbeatMs: 200,
  nodeTtlMs: 1000,
  leaseTtlMs: 1000,
  rebalanceIntervalMs: 200,
  closeTimeoutMs: 5000,
  requestTimeoutMs: 1000,
};

export interface TestNode {
  readonly id: string;
  readonly nc: NatsConnection;
  readonly host: FakeHost;
  readonly ownership: Ownership;
}

let counter = 0;

export class OwnershipFixture implements AsyncDisposable {
  readonly registry = new HolderRegistry();
  readonly nodes = new Map<string, TestNode>();
  readonly names: Names;
  readonly logs: Array<{ node: string; level: string; msg: string; fields?: Record<string, unknown> }> = [];
  readonly #connections: NatsConnection[] = [];

  constructor(
    readonly url: string,
    readonly shards: number,
    readonly options: OwnershipOptions = FAST,
    readonly streams = 1,
    /** Replicas of the cluster bucket. */
    readonly replicas = 1,
  ) {
    this.names = names(`own${process.pid}x${++counter}`);
  }

  async connect(): Promise<NatsConnection> {
    const nc = await connect({ servers: this.url.split(","), noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    this.#connections.push(nc);
    return nc;
  }

  logFor(node: string): LogFn {
    return (level, msg, fields) => {
      this.logs.push({ node, level, msg, ...(fields ? { fields } : {}) });
      if (process.env.OWNERSHIP_TEST_LOG === "1") console.log(node, level, msg, fields ?? "");
    };
  }

  async start(id: string, options: OwnershipOptions = {}, shards = this.shards, streams = this.streams): Promise<TestNode> {
    const nc = await this.connect();
    const host = new FakeHost(id, this.registry);
    const ownership = await startOwnership({
      nc,
      names: this.names,
      nodeId: id,
      shards,
      streams,
      replicas: this.replicas,
      host,
      options: { ...this.options, log: this.logFor(id), ...options },
    });
    const node = { id, nc, host, ownership };
    this.nodes.set(id, node);
    return node;
  }

  get(id: string): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no test node ${id}`);
    return n;
  }

  /** Running shards per node from the hosts' point of view, every node listed. */
  counts(ids: readonly string[] = [...this.nodes.keys()]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const id of ids) out[id] = this.get(id).host.running.size;
    return out;
  }

  /** True when every shard runs on exactly one of `ids`, the lease view agrees, and counts differ by ≤ 1. */
  settled(ids: readonly string[]): boolean {
    const running = ids.flatMap((id) => [...this.get(id).host.running.keys()]);
    if (running.length !== this.shards || new Set(running).size !== this.shards) return false;
    const counts = ids.map((id) => this.get(id).host.running.size);
    if (Math.max(...counts) - Math.min(...counts) > 1) return false;
    const view = this.get(ids[0]!).ownership.view();
    return view.shards.every((s) => s.owner !== null && s.owner === s.assigned && ids.includes(s.owner));
  }

  /** True when every shard runs on one of `ids` and the lease view agrees (balanced or not). */
  settledOn(ids: readonly string[]): boolean {
    const running = ids.flatMap((id) => [...this.get(id).host.running.keys()]);
    if (new Set(running).size !== this.shards || running.length !== this.shards) return false;
    const view = this.get(ids[0]!).ownership.view();
    return view.shards.every((s) => s.owner !== null && s.owner === s.assigned && ids.includes(s.owner));
  }

  /** The node currently coordinating, among the open ones. */
  coordinator(): TestNode | undefined {
    return [...this.nodes.values()].find((n) => n.ownership.isCoordinator());
  }

  async closeNode(id: string): Promise<void> {
    const n = this.get(id);
    await n.ownership.close();
    this.nodes.delete(id);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.ownership.close().catch(() => undefined)));
    await Promise.all(this.#connections.map((nc) => nc.close().catch(() => undefined)));
  }
}
