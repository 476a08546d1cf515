// The node's local mirror of the cluster bucket, fed by ONE ordered KV watch of the whole bucket.
// One watch instead of one per key family: one consumer per node, and changes arrive in bucket order,
// so the mirror is always a consistent prefix of the bucket's history.
import type { KV, KvEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import {
  COORDINATOR_KEY,
  META_KEY,
  decodeAssign,
  decodeCoordinator,
  decodeDrain,
  decodeLease,
  decodeMeta,
  decodeNode,
  type AssignRecord,
  type CoordinatorRecord,
  type DrainRecord,
  type LeaseRecord,
  type MetaRecord,
  type NodeRecord,
} from "./records.ts";
import { backoffMs, pause } from "../backoff.ts";
import type { LogFn } from "../log.ts";

/** A decoded value with the KV revision it was written at (the CAS token for the next write). */
export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

/** What changed in the mirror. */
export type StateChange =
  | { readonly kind: "meta" }
  | { readonly kind: "node"; readonly nodeId: string }
  | { readonly kind: "coordinator" }
  | { readonly kind: "assign"; readonly shard: number }
  | { readonly kind: "lease"; readonly shard: number }
  | { readonly kind: "drain"; readonly nodeId: string };

/** The subset of a KV entry the mirror needs (a watch entry, a `get` result, or our own write). */
export interface StateEntry {
  readonly key: string;
  readonly operation: "PUT" | "DEL" | "PURGE";
  readonly revision: number;
  readonly value: Uint8Array;
}

/**
 * Typed maps of the bucket. Every key keeps the highest revision seen, so an entry that arrives late (a
 * watch echo of our own write, or a stale `get`) never overwrites newer knowledge.
 */
export class ClusterState {
  meta: Versioned<MetaRecord> | undefined;
  coordinator: Versioned<CoordinatorRecord> | undefined;
  readonly nodes = new Map<string, Versioned<NodeRecord>>();
  readonly assignments = new Map<number, Versioned<AssignRecord>>();
  readonly leases = new Map<number, Versioned<LeaseRecord>>();
  readonly drains = new Map<string, Versioned<DrainRecord>>();
  /** Revision of the delete marker of each deleted key still known. */
  readonly deleted = new Map<string, number>();
  /** Highest revision delivered by the watch: everything up to it is reflected here. */
  watchRevision = 0;
  readonly #revisions = new Map<string, number>();
  readonly #listeners = new Set<(change: StateChange) => void>();
  readonly #waiters = new Set<{ revision: number; resolve: () => void }>();
  readonly #divergenceListeners = new Set<(key: string, known: number, read: number) => void>();

  /** Revision of the latest known write (or delete) of `key`, or 0. */
  revisionOf(key: string): number {
    return this.#revisions.get(key) ?? 0;
  }

  /** Calls `fn` after each applied change; returns the unsubscribe function. */
  onChange(fn: (change: StateChange) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Applies an entry (from the watch when `fromWatch`). Returns false when it was not newer than what we know. */
  apply(entry: StateEntry, fromWatch = false): boolean {
    if (fromWatch && entry.revision > this.watchRevision) {
      this.watchRevision = entry.revision;
      for (const w of this.#waiters) {
        if (w.revision <= entry.revision) {
          this.#waiters.delete(w);
          w.resolve();
        }
      }
    }
    if (entry.revision <= this.revisionOf(entry.key)) return false;
    this.#revisions.set(entry.key, entry.revision);
    const change = this.#store(entry);
    if (change === undefined) return true;
    for (const fn of this.#listeners) fn(change);
    return true;
  }

  /**
   * Applies a `kv.get` result read from the stream's leader (null = the key never existed or was purged
   * away). Revisions of a key only grow, so a read below what the mirror knows means the mirror holds
   * entries the stream no longer has: a NATS server's log diverged from the leader's (seen after kill -9
   * of a server under load). The read wins, and the divergence listeners rebuild the mirror.
   */
  applyGet(key: string, entry: KvEntry | null): void {
    if (entry === null) return;
    const known = this.revisionOf(key);
    if (entry.revision < known) {
      this.#revisions.set(key, entry.revision - 1);
      for (const fn of this.#divergenceListeners) fn(key, known, entry.revision);
    }
    this.apply({ key, operation: entry.operation, revision: entry.revision, value: entry.value });
  }

  /** Calls `fn` when a leader read shows the mirror ahead of the stream (see {@link applyGet}). */
  onDivergence(fn: (key: string, known: number, read: number) => void): () => void {
    this.#divergenceListeners.add(fn);
    return () => this.#divergenceListeners.delete(fn);
  }

  /**
   * Forgets every revision, so the next watch (from the start) re-applies each key's current entry even
   * where the mirror believed it knew a later one. The values stay meanwhile: nothing looks unassigned
   * while the watch reloads.
   */
  forgetRevisions(): void {
    this.#revisions.clear();
    this.watchRevision = 0;
  }

  /** Resolves once the watch has delivered `revision` (e.g. our own write), false after `timeoutMs`. */
  waitForWatch(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.watchRevision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        resolve(false);
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }

  #store(e: StateEntry): StateChange | undefined {
    const del = e.operation !== "PUT";
    if (del) this.deleted.set(e.key, e.revision);
    else this.deleted.delete(e.key);
    // A value no node wrote (undecodable) counts as a delete at its revision: the next CAS write
    // replaces it (and a lease's next epoch stays above every earlier one), instead of a create that
    // the key's existence refuses forever.
    const decoded = <T>(v: T | undefined): T | undefined => {
      if (!del && v === undefined) this.deleted.set(e.key, e.revision);
      return v;
    };
    const dot = e.key.indexOf(".");
    const family = dot < 0 ? e.key : e.key.slice(0, dot);
    const rest = dot < 0 ? "" : e.key.slice(dot + 1);
    switch (family) {
      case META_KEY: {
        const v = del ? undefined : decoded(decodeMeta(e.value));
        this.meta = v && { value: v, revision: e.revision };
        return { kind: "meta" };
      }
      case COORDINATOR_KEY: {
        const v = del ? undefined : decoded(decodeCoordinator(e.value));
        this.coordinator = v && { value: v, revision: e.revision };
        return { kind: "coordinator" };
      }
      case "nodes":
        return setOrDelete(this.nodes, rest, del ? undefined : decoded(decodeNode(e.value)), e.revision) ? { kind: "node", nodeId: rest } : undefined;
      case "drain":
        return setOrDelete(this.drains, rest, del ? undefined : decoded(decodeDrain(e.value)), e.revision) ? { kind: "drain", nodeId: rest } : undefined;
      case "assign": {
        const shard = Number(rest);
        if (!Number.isInteger(shard)) return undefined;
        setOrDelete(this.assignments, shard, del ? undefined : decoded(decodeAssign(e.value)), e.revision);
        return { kind: "assign", shard };
      }
      case "lease": {
        const shard = Number(rest);
        if (!Number.isInteger(shard)) return undefined;
        setOrDelete(this.leases, shard, del ? undefined : decoded(decodeLease(e.value)), e.revision);
        return { kind: "lease", shard };
      }
      default:
        return undefined;
    }
  }
}

/** Stores a decoded value; a delete or an undecodable value removes the key. Always a change. */
function setOrDelete<K, T>(map: Map<K, Versioned<T>>, key: K, value: T | undefined, revision: number): true {
  if (value === undefined) map.delete(key);
  else map.set(key, { value, revision });
  return true;
}

/** Options of {@link ClusterWatch}. */
export interface ClusterWatchOptions {
  /** Pause before re-watching after the watch ended or failed (ms). Default 250. */
  retryMs?: number;
  log: LogFn;
}

/**
 * Keeps a {@link ClusterState} fed from `kv.watch({ key: ">" })`. When the watch ends or is found stale
 * (see {@link restart}), it watches again from the revision after the last one applied, so nothing is
 * missed and nothing is applied twice.
 */
export class ClusterWatch {
  #iter: QueuedIterator<KvEntry> | undefined;
  #closed = false;
  #generation = 0;
  #loop: Promise<void> | undefined;
  #rebuiltAt = -Infinity;
  /** The next watch starts from the beginning with every revision forgotten (see {@link rebuild}). */
  #fromStart = false;

  constructor(
    private readonly kv: KV,
    readonly state: ClusterState,
    private readonly options: ClusterWatchOptions,
  ) {}

  /** Starts watching; resolves once the watch consumer exists (values then stream in). */
  async start(): Promise<void> {
    await this.#open();
  }

  /**
   * Reloads the whole mirror from the stream (the mirror held entries the stream leader does not have):
   * forgets every revision and watches again from the start. At most once per `rebuildGapMs` (10 s).
   */
  rebuild(reason: string): void {
    const now = performance.now();
    if (this.#closed || now - this.#rebuiltAt < 10_000) return;
    this.#rebuiltAt = now;
    this.options.log("warn", "cluster mirror ahead of the stream leader; reloading it", { reason, revision: this.state.watchRevision });
    this.#fromStart = true;
    this.#iter?.stop();
  }

  /** Drops the current watch and opens a new one from the last applied revision (e.g. when it went stale). */
  restart(reason: string): void {
    if (this.#closed) return;
    this.options.log("warn", "cluster watch restarted", { reason, revision: this.state.watchRevision });
    this.#iter?.stop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#iter?.stop();
    await this.#loop;
  }

  async #open(): Promise<void> {
    if (this.#fromStart) {
      this.#fromStart = false;
      this.state.forgetRevisions();
    }
    const from = this.state.watchRevision + 1;
    const iter = await this.kv.watch({ key: ">", ...(from > 1 ? { resumeFromRevision: from } : {}) });
    if (this.#closed) {
      iter.stop();
      return;
    }
    this.#iter = iter;
    const generation = ++this.#generation;
    this.#loop = this.#consume(iter, generation);
  }

  async #consume(iter: QueuedIterator<KvEntry>, generation: number): Promise<void> {
    try {
      for await (const e of iter) this.state.apply(e, true);
    } catch (err) {
      this.options.log("warn", "cluster watch failed", { error: (err as Error).message });
    }
    if (this.#closed || generation !== this.#generation) return;
    // reopen until it works or we are closed
    // growing pauses: a watch that cannot be opened (its consumer create timing out on a loaded or
    // recovering cluster) asked again every 250 ms adds to the very load that makes it time out
    for (let attempt = 0; ; attempt++) {
      await pause(backoffMs({ firstMs: this.options.retryMs ?? 250, maxMs: 5000 }, attempt));
      if (this.#closed) return;
      try {
        await this.#open();
        return;
      } catch (err) {
        this.options.log("warn", "cluster watch could not be reopened", { error: (err as Error).message });
      }
    }
  }
}
