// The cluster bucket's keys and values: meta, node heartbeats, coordinator, assignments, leases, drains.
// Values are msgpack plain maps; decoders validate and return undefined for anything malformed.
import { decode, encode } from "../codec.ts";

/** Version of the `meta` record this code writes and understands. */
export const META_VERSION = 1;

export const META_KEY = "meta";
export const COORDINATOR_KEY = "coordinator";
/** `nodes.<nodeId>`: a node's heartbeat. */
export const nodeKey = (nodeId: string): string => `nodes.${nodeId}`;
/** `assign.<shard>`: which node should own a shard (written by the coordinator). */
export const assignKey = (shard: number): string => `assign.${shard}`;
/** `lease.<shard>`: who owns a shard now, and the epoch (never deleted, so epochs only grow). */
export const leaseKey = (shard: number): string => `lease.${shard}`;
/** `drain.<nodeId>`: an operator asked this node to hand over all its shards (cleared when it restarts). */
export const drainKey = (nodeId: string): string => `drain.${nodeId}`;

/** Node ids become one KV key token: 1–64 chars of `[A-Za-z0-9_-]`. */
export const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Written once, when the cluster is first created; fixes the shard and stream counts. */
export interface MetaRecord {
  version: number;
  shards: number;
  streams: number;
  /** Wall clock (ms). */
  createdAt: number;
}

/** A node's heartbeat, put every `heartbeatMs`; the node is live while `expiresAt` (ms) is in the future. */
export interface NodeRecord {
  nodeId: string;
  startedAt: number;
  heartbeatAt: number;
  expiresAt: number;
  /** Takes no new shards; its shards move off. */
  draining: boolean;
  /** Shutting down: its shards are being released now and should be reassigned at once. */
  leaving?: boolean;
  /** Shards whose lease it holds. */
  owned: number[];
  /**
   * Of those, the shards its host has started and serves (absent from nodes that predate it). The
   * coordinator tells a shard on its way from one a node cannot start by this list, not by the lease.
   */
  serving?: number[];
  /** Messages per second per owned shard, as last measured. */
  rates?: Record<number, number>;
  /** Entities with decoded state in memory (for operators). */
  resident?: number;
  /** Entities of its shards, resident or passivated (for operators). */
  entities?: number;
  /** Domain units applied per second, e.g. readings (for operators). */
  unitsPerSec?: number;
  /** Input messages not yet consumed per owned shard (for operators). */
  lag?: Record<number, number>;
}

/** The elected coordinator; taken over by anyone once `expiresAt` (ms) has passed. */
export interface CoordinatorRecord {
  nodeId: string;
  /** Increases with every change of coordinator. */
  epoch: number;
  expiresAt: number;
}

/** Why an assignment was written: a planner reason, or an operator's explicit move. */
export type AssignReason = "orphan" | "drain" | "rebalance" | "move" | "stalled";

/** Which node should own a shard. */
export interface AssignRecord {
  node: string | null;
  /** Wall clock (ms) of the decision. */
  at: number;
  /** Coordinator node id that wrote it. */
  by: string;
  reason?: AssignReason;
  /** Placed by an operator: automatic rebalancing leaves it where it is. */
  pinned?: boolean;
}

/** A shard lease. Free when `owner` is null or `expiresAt` (ms) has passed; every new owner takes `epoch + 1`. */
export interface LeaseRecord {
  shard: number;
  owner: string | null;
  epoch: number;
  expiresAt: number;
  acquiredAt: number;
}

/** An operator's drain request. */
export interface DrainRecord {
  nodeId: string;
  at: number;
  by: string;
}

export function encodeRecord(value: object): Uint8Array {
  return encode(value);
}

function unpack(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = decode(bytes);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isShard = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isStrOrNull = (v: unknown): v is string | null => v === null || typeof v === "string";

export function decodeMeta(bytes: Uint8Array): MetaRecord | undefined {
  const r = unpack(bytes);
  if (!r || !isNum(r.version) || !isShard(r.shards) || !isShard(r.streams) || !isNum(r.createdAt)) return undefined;
  return { version: r.version, shards: r.shards, streams: r.streams, createdAt: r.createdAt };
}

export function decodeNode(bytes: Uint8Array): NodeRecord | undefined {
  const r = unpack(bytes);
  if (!r || typeof r.nodeId !== "string" || !isNum(r.startedAt) || !isNum(r.heartbeatAt) || !isNum(r.expiresAt)) return undefined;
  const owned = Array.isArray(r.owned) ? r.owned.filter(isShard) : [];
  const rec: NodeRecord = {
    nodeId: r.nodeId,
    startedAt: r.startedAt,
    heartbeatAt: r.heartbeatAt,
    expiresAt: r.expiresAt,
    draining: r.draining === true,
    owned,
  };
  if (r.leaving === true) rec.leaving = true;
  if (Array.isArray(r.serving)) rec.serving = r.serving.filter(isShard);
  const rates = shardMap(r.rates);
  if (rates !== undefined) rec.rates = rates;
  const lag = shardMap(r.lag);
  if (lag !== undefined) rec.lag = lag;
  if (isNum(r.resident)) rec.resident = r.resident;
  if (isNum(r.entities)) rec.entities = r.entities;
  if (isNum(r.unitsPerSec)) rec.unitsPerSec = r.unitsPerSec;
  return rec;
}

/** A `{ [shard]: number }` map, its malformed entries dropped; undefined when absent. */
function shardMap(v: unknown): Record<number, number> | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const out: Record<number, number> = {};
  for (const [k, n] of Object.entries(v)) if (isShard(Number(k)) && isNum(n)) out[Number(k)] = n;
  return out;
}

export function decodeCoordinator(bytes: Uint8Array): CoordinatorRecord | undefined {
  const r = unpack(bytes);
  if (!r || typeof r.nodeId !== "string" || !isNum(r.epoch) || !isNum(r.expiresAt)) return undefined;
  return { nodeId: r.nodeId, epoch: r.epoch, expiresAt: r.expiresAt };
}

const ASSIGN_REASONS = new Set(["orphan", "drain", "rebalance", "move", "stalled"]);

export function decodeAssign(bytes: Uint8Array): AssignRecord | undefined {
  const r = unpack(bytes);
  if (!r || !isStrOrNull(r.node) || !isNum(r.at) || typeof r.by !== "string") return undefined;
  const rec: AssignRecord = { node: r.node, at: r.at, by: r.by };
  if (typeof r.reason === "string" && ASSIGN_REASONS.has(r.reason)) rec.reason = r.reason as AssignReason;
  if (r.pinned === true) rec.pinned = true;
  return rec;
}

export function decodeLease(bytes: Uint8Array): LeaseRecord | undefined {
  const r = unpack(bytes);
  if (!r || !isShard(r.shard) || !isStrOrNull(r.owner) || !isShard(r.epoch) || !isNum(r.expiresAt) || !isNum(r.acquiredAt)) {
    return undefined;
  }
  return { shard: r.shard, owner: r.owner, epoch: r.epoch, expiresAt: r.expiresAt, acquiredAt: r.acquiredAt };
}

export function decodeDrain(bytes: Uint8Array): DrainRecord | undefined {
  const r = unpack(bytes);
  if (!r || typeof r.nodeId !== "string" || !isNum(r.at) || typeof r.by !== "string") return undefined;
  return { nodeId: r.nodeId, at: r.at, by: r.by };
}
