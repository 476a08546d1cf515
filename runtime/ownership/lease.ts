// Shard leases in the cluster bucket: acquire, renew and release, each a compare-and-set on the key's
// revision, so two nodes can never both believe they hold the same epoch of a shard.
//
// Epochs never repeat, even if a lease key is deleted or purged: every lease write satisfies
// epoch ≤ its own revision (a new epoch is the previous + 1, and revisions grow by at least 1 per write),
// so a lease with no previous value can start above the key's delete marker or above the bucket's last
// sequence and still exceed every epoch ever written.
//
// `expiresAt` is written with the owner's clock and read with everyone else's: nodes' clocks must agree
// to well within `leaseSafetyMs` (NTP does). The CAS makes two owners of one epoch impossible whatever the
// clocks say; the clocks only decide how early a lease counts as free, and the owner gives up first.
import type { KV } from "@nats-io/kv";
import { isCasConflict } from "../jetstream-errors.ts";
import type { ShardLease } from "../shard-host.ts";
import type { ClusterState } from "./cluster-state.ts";
import { encodeRecord, leaseKey, type LeaseRecord } from "./records.ts";

/** A lease this node holds: the epoch handed to the host, and the revision the next renewal must match. */
export interface HeldLease extends ShardLease {
  /** KV revision of our last write of this lease. */
  readonly revision: number;
  /** Wall clock (ms) at which others may take it unless renewed. */
  readonly expiresAt: number;
  readonly acquiredAt: number;
}

/** Result of {@link LeaseStore.acquire}. */
export type AcquireResult =
  | { readonly ok: true; readonly lease: HeldLease }
  /** Someone holds it and it has not expired. */
  | { readonly ok: false; readonly reason: "held"; readonly owner: string; readonly epoch: number; readonly expiresAt: number }
  /** The key changed under us (our view was stale); the view is refreshed, try again. */
  | { readonly ok: false; readonly reason: "conflict"; readonly detail: string }
  /** NATS did not answer. */
  | { readonly ok: false; readonly reason: "unavailable"; readonly error: Error };

/** Result of {@link LeaseStore.renew}. */
export type RenewResult =
  | { readonly ok: true; readonly lease: HeldLease }
  /** Definitely lost: the lease now shows another owner or epoch. */
  | { readonly ok: false; readonly reason: "lost"; readonly detail: string }
  /** Not renewed this time (NATS did not answer); the lease may still be ours until it expires. */
  | { readonly ok: false; readonly reason: "unavailable"; readonly error: Error };

/** Options of {@link LeaseStore}. */
export interface LeaseStoreOptions {
  readonly nodeId: string;
  /** Lease duration from each acquire or renewal (ms). */
  readonly ttlMs: number;
  /** Wall clock (ms). */
  readonly now: () => number;
}


/** The last sequence a CAS refusal says the subject has ("wrong last sequence: N"), if it says one. */
export function statedLastSequence(err: unknown): number | undefined {
  if (!isCasConflict(err)) return undefined;
  const m = /wrong last sequence: (\d+)/.exec((err as Error).message);
  return m === null ? undefined : Number(m[1]);
}

/**
 * `kv.update` (a CAS on the key's revision), and once more against the server's own number when the
 * two disagree: nats-server 2.9, after a stream leader change, can count a subject's last message for
 * this check at a constant offset from the revision every read and watch reports (the chaos run: reads
 * said 1966, the check 1959, for every key, for minutes — every lease CAS of a node failed). When a read
 * from the leader still shows the revision we wrote against, nobody wrote since, and the number the
 * refusal states is the same message.
 */
export async function casUpdate(kv: KV, key: string, value: Uint8Array, previous: number): Promise<number> {
  try {
    return await kv.update(key, value, previous);
  } catch (err) {
    const stated = statedLastSequence(err);
    if (stated === undefined || stated === previous) throw err;
    const read = await kv.get(key).catch(() => null);
    if (read === null || read.revision !== previous) throw err;
    return await kv.update(key, value, stated);
  }
}

/** Lease operations of one node. Reads come from the local {@link ClusterState}; every write is a CAS. */
export class LeaseStore {
  constructor(
    private readonly kv: KV,
    private readonly state: ClusterState,
    private readonly options: LeaseStoreOptions,
  ) {}

  /** Takes the lease of `shard` if it is free (no owner, or expired by our clock), with epoch = previous + 1. */
  async acquire(shard: number): Promise<AcquireResult> {
    const { nodeId, ttlMs, now } = this.options;
    const key = leaseKey(shard);
    const cur = this.state.leases.get(shard);
    const t = now();
    if (cur !== undefined && cur.value.owner !== null && cur.value.expiresAt >= t) {
      return { ok: false, reason: "held", owner: cur.value.owner, epoch: cur.value.epoch, expiresAt: cur.value.expiresAt };
    }
    let epoch: number;
    let previous: number;
    if (cur !== undefined) {
      epoch = cur.value.epoch + 1;
      previous = cur.revision;
    } else if (this.state.deleted.has(key)) {
      previous = this.state.deleted.get(key)!;
      epoch = previous + 1;
    } else {
      previous = 0;
      try {
        epoch = (await this.kv.status()).streamInfo.state.last_seq + 1;
      } catch (err) {
        return { ok: false, reason: "unavailable", error: err as Error };
      }
    }
    const record: LeaseRecord = { shard, owner: nodeId, epoch, expiresAt: t + ttlMs, acquiredAt: t };
    try {
      const revision = previous === 0 ? await this.kv.create(key, encodeRecord(record)) : await casUpdate(this.kv, key, encodeRecord(record), previous);
      return { ok: true, lease: this.#remember(record, revision) };
    } catch (err) {
      const mine = await this.#refresh(shard, record.epoch);
      if (mine) return { ok: true, lease: mine };
      if (isCasConflict(err)) {
        const now = this.state.leases.get(shard);
        const detail = `${(err as Error).message}; wrote against revision ${previous}, read back ${now === undefined ? "no lease" : `revision ${now.revision} (${describe(now.value)})`}`;
        return { ok: false, reason: "conflict", detail };
      }
      return { ok: false, reason: "unavailable", error: err as Error };
    }
  }

  /** Extends a held lease by `ttlMs` from now. */
  async renew(held: HeldLease): Promise<RenewResult> {
    const known = this.state.leases.get(held.shard);
    if (known !== undefined && known.revision > held.revision && !isOurs(known.value, held)) {
      return { ok: false, reason: "lost", detail: describe(known.value) };
    }
    const t = this.options.now();
    const record: LeaseRecord = { shard: held.shard, owner: held.owner, epoch: held.epoch, expiresAt: t + this.options.ttlMs, acquiredAt: held.acquiredAt };
    return this.#write(held, record, (lease) => ({ ok: true, lease }));
  }

  /** Gives a held lease up at once (owner null, same epoch), so the next owner need not wait for expiry. */
  async release(held: HeldLease): Promise<boolean> {
    const t = this.options.now();
    const record: LeaseRecord = { shard: held.shard, owner: null, epoch: held.epoch, expiresAt: t, acquiredAt: held.acquiredAt };
    const r = await this.#write(held, record, () => ({ ok: true, lease: held }));
    return r.ok;
  }

  async #write(held: HeldLease, record: LeaseRecord, done: (lease: HeldLease) => RenewResult): Promise<RenewResult> {
    const key = leaseKey(held.shard);
    let revision = held.revision;
    // at most one retry: after a timeout our previous write may have landed, which moved the revision
    for (let attempt = 0; ; attempt++) {
      try {
        const rev = await casUpdate(this.kv, key, encodeRecord(record), revision);
        return done(this.#remember(record, rev));
      } catch (err) {
        if (!isCasConflict(err)) return { ok: false, reason: "unavailable", error: err as Error };
        const mine = attempt === 0 ? await this.#refresh(held.shard, held.epoch, held.owner) : undefined;
        if (mine === undefined) {
          const now = this.state.leases.get(held.shard)?.value;
          return { ok: false, reason: "lost", detail: now === undefined ? "lease key changed" : describe(now) };
        }
        revision = mine.revision;
      }
    }
  }

  /** Reads the lease; returns it as ours if it shows us as owner with `epoch` (a write of ours that landed). */
  async #refresh(shard: number, epoch: number, owner: string | null = this.options.nodeId): Promise<HeldLease | undefined> {
    try {
      const e = await this.kv.get(leaseKey(shard));
      this.state.applyGet(leaseKey(shard), e);
    } catch {
      return undefined;
    }
    const cur = this.state.leases.get(shard);
    if (cur === undefined || cur.value.owner !== owner || cur.value.epoch !== epoch || owner === null) return undefined;
    return { shard, owner, epoch, revision: cur.revision, expiresAt: cur.value.expiresAt, acquiredAt: cur.value.acquiredAt };
  }

  #remember(record: LeaseRecord, revision: number): HeldLease {
    this.state.apply({ key: leaseKey(record.shard), operation: "PUT", revision, value: encodeRecord(record) });
    return { shard: record.shard, owner: record.owner ?? this.options.nodeId, epoch: record.epoch, revision, expiresAt: record.expiresAt, acquiredAt: record.acquiredAt };
  }
}

function isOurs(rec: LeaseRecord, held: HeldLease): boolean {
  return rec.owner === held.owner && rec.epoch === held.epoch;
}

function describe(rec: LeaseRecord): string {
  return rec.owner === null ? `released at epoch ${rec.epoch}` : `held by ${rec.owner} at epoch ${rec.epoch}`;
}
