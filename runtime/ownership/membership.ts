// Membership: this node's heartbeat, and which nodes are alive. Liveness is the heartbeat's `expiresAt`
// against our clock; nats-server 2.9 has no per-key TTL and no event when a key "expires", so the
// live set is re-evaluated at every change and at the next moment some heartbeat runs out.
import type { KV } from "@nats-io/kv";
import { RuntimeError } from "../errors.ts";
import type { ClusterState } from "./cluster-state.ts";
import type { LogFn } from "../log.ts";
import { drainKey, encodeRecord, nodeKey, type NodeRecord } from "./records.ts";

/** A node as membership sees it. */
export interface NodeInfo {
  readonly nodeId: string;
  /** Its heartbeat has not expired by our clock. */
  readonly live: boolean;
  /** It said so in its heartbeat, or an operator asked it to drain. */
  readonly draining: boolean;
  /** Shutting down and releasing its shards. */
  readonly leaving: boolean;
  /** An operator's drain request is recorded for it. */
  readonly drainRequested: boolean;
  readonly owned: readonly number[];
  /** Shards its host serves (started), when the node reports it. */
  readonly serving?: readonly number[];
  readonly rates: Readonly<Record<number, number>> | undefined;
  /** Entities with decoded state in memory, when the node reports it. */
  readonly resident?: number;
  /** Entities of its shards, resident or passivated, when reported. */
  readonly entities?: number;
  /** Domain units (readings) applied per second, when reported. */
  readonly unitsPerSec?: number;
  /** Input messages not yet consumed per owned shard, when reported. */
  readonly lag?: Readonly<Record<number, number>>;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  readonly expiresAt: number;
}

/** What this node reports in each heartbeat. */
export interface HeartbeatReport {
  readonly owned: number[];
  readonly serving?: number[];
  readonly rates?: Record<number, number>;
  readonly draining: boolean;
  readonly leaving: boolean;
  readonly resident?: number;
  readonly entities?: number;
  readonly unitsPerSec?: number;
  readonly lag?: Record<number, number>;
}

/** Dependencies and timings of {@link Membership}. */
export interface MembershipOptions {
  readonly kv: KV;
  readonly state: ClusterState;
  readonly nodeId: string;
  /** Heartbeat lifetime (ms). */
  readonly nodeTtlMs: number;
  readonly now: () => number;
  readonly log: LogFn;
  readonly report: () => HeartbeatReport;
}

/** Heartbeats of this node and the live view of all nodes. */
export class Membership {
  readonly startedAt: number;
  #signature = "";
  #expiryTimer: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<() => void>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(private readonly o: MembershipOptions) {
    this.startedAt = o.now();
    this.#unsubscribe = o.state.onChange((c) => {
      if (c.kind === "node" || c.kind === "drain") this.evaluate();
    });
  }

  /**
   * Waits until no other live process heartbeats under our node id (a crashed predecessor's heartbeat
   * runs out within nodeTtlMs), and clears an operator's drain request left for a previous incarnation.
   * @throws RuntimeError AIRTWIN_ERR_CLUSTER_NODE_ID_IN_USE when another process keeps renewing it.
   */
  async claim(): Promise<void> {
    const { kv, nodeId, now } = this.o;
    const key = nodeKey(nodeId);
    let seen: number | undefined;
    for (;;) {
      const entry = await kv.get(key);
      this.o.state.applyGet(key, entry);
      const rec = this.o.state.nodes.get(nodeId)?.value;
      if (rec === undefined || rec.expiresAt < now()) break;
      if (seen !== undefined && rec.heartbeatAt !== seen) {
        throw new RuntimeError("CLUSTER_NODE_ID_IN_USE", `node id "${nodeId}" is in use by another live process (heartbeat at ${rec.heartbeatAt})`, {
          details: { nodeId, heartbeatAt: rec.heartbeatAt, expiresAt: rec.expiresAt },
        });
      }
      seen = rec.heartbeatAt;
      this.o.log("info", "waiting for the previous heartbeat of this node id to expire", { nodeId, expiresAt: rec.expiresAt });
      await new Promise((r) => setTimeout(r, Math.max(1, rec.expiresAt - now() + 1)));
    }
    const drain = await kv.get(drainKey(nodeId));
    if (drain !== null && drain.operation === "PUT") await kv.delete(drainKey(nodeId));
  }

  /** Writes this node's heartbeat; returns its revision. */
  async heartbeat(): Promise<number> {
    const { kv, nodeId, nodeTtlMs, now, state } = this.o;
    const t = now();
    const report = this.o.report();
    const rec: NodeRecord = {
      nodeId,
      startedAt: this.startedAt,
      heartbeatAt: t,
      expiresAt: t + nodeTtlMs,
      draining: report.draining,
      owned: report.owned,
    };
    if (report.leaving) rec.leaving = true;
    if (report.serving !== undefined) rec.serving = report.serving;
    if (report.rates !== undefined) rec.rates = report.rates;
    if (report.resident !== undefined) rec.resident = report.resident;
    if (report.entities !== undefined) rec.entities = report.entities;
    if (report.unitsPerSec !== undefined) rec.unitsPerSec = report.unitsPerSec;
    if (report.lag !== undefined) rec.lag = report.lag;
    const value = encodeRecord(rec);
    const revision = await kv.put(nodeKey(nodeId), value);
    state.apply({ key: nodeKey(nodeId), operation: "PUT", revision, value });
    return revision;
  }

  /** Deletes this node's heartbeat (clean shutdown: the others see it gone at once). */
  async leave(): Promise<void> {
    await this.o.kv.delete(nodeKey(this.o.nodeId));
  }

  /** Every node with a heartbeat record, live or not, sorted by id. */
  nodes(now = this.o.now()): NodeInfo[] {
    const { state } = this.o;
    const out: NodeInfo[] = [];
    for (const [nodeId, { value: r }] of state.nodes) {
      const drainRequested = state.drains.has(nodeId);
      out.push({
        nodeId,
        live: r.expiresAt > now,
        draining: r.draining || drainRequested || r.leaving === true,
        leaving: r.leaving === true,
        drainRequested,
        owned: r.owned,
        ...(r.serving === undefined ? {} : { serving: r.serving }),
        rates: r.rates,
        ...(r.resident === undefined ? {} : { resident: r.resident }),
        ...(r.entities === undefined ? {} : { entities: r.entities }),
        ...(r.unitsPerSec === undefined ? {} : { unitsPerSec: r.unitsPerSec }),
        ...(r.lag === undefined ? {} : { lag: r.lag }),
        startedAt: r.startedAt,
        heartbeatAt: r.heartbeatAt,
        expiresAt: r.expiresAt,
      });
    }
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Live nodes, sorted by id. */
  liveNodes(now = this.o.now()): NodeInfo[] {
    return this.nodes(now).filter((n) => n.live);
  }

  isLive(nodeId: string, now = this.o.now()): boolean {
    const r = this.o.state.nodes.get(nodeId)?.value;
    return r !== undefined && r.expiresAt > now;
  }

  /** Calls `fn` whenever the set of live nodes or their draining/leaving flags change. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Re-evaluates liveness now, notifies on change, and schedules the next evaluation at the next expiry. */
  evaluate(): void {
    if (this.#closed) return;
    const now = this.o.now();
    const live = this.liveNodes(now);
    const signature = live.map((n) => `${n.nodeId}:${n.draining ? 1 : 0}${n.leaving ? 1 : 0}`).join(",");
    clearTimeout(this.#expiryTimer);
    if (live.length > 0) {
      const next = Math.min(...live.map((n) => n.expiresAt));
      this.#expiryTimer = setTimeout(() => this.evaluate(), Math.max(1, next - now + 1));
    }
    if (signature === this.#signature) return;
    this.#signature = signature;
    for (const fn of this.#listeners) fn();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#expiryTimer);
    this.#unsubscribe();
  }
}
