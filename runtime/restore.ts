// Writing entity snapshots back into a shard's bucket from outside (a restore from the archive), fenced
// like any owner so it can never race one: the restorer takes the shard's lease (epoch + 1; refused
// while a live node holds it), fences the snapshot bucket with that epoch (so even a paused old owner's
// writes are refused from then on), writes the records and the checkpoint through the fenced writer,
// and releases the lease. The next owner takes epoch + 2 and starts from exactly what was written.
// Generic: records are opaque entity snapshots; what they hold is the caller's business.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { openClusterBucket } from "./ownership/meta.ts";
import { decodeLease, encodeRecord as encodeClusterRecord, leaseKey, type LeaseRecord } from "./ownership/records.ts";
import { PipelinedPublisher } from "./publisher.ts";
import { decode } from "./codec.ts";
import { CHECKPOINT_KEY, claimShard, encodeCheckpoint, encodeRecord, openSnapshotBucket, type SnapshotRecord } from "./snapshot-store.ts";
import type { Names } from "./subjects.ts";

/** A live owner holds the shard's lease: stop it (or wait for the lease to expire) and try again. */
export class ShardBusyError extends Error {
  override readonly name = "ShardBusyError";
  constructor(
    readonly shard: number,
    readonly owner: string,
    readonly expiresAt: number,
  ) {
    super(`shard ${shard} is owned by ${owner} (lease until ${new Date(expiresAt).toISOString()})`);
  }
}

/** Options of {@link restoreShard}. */
export interface RestoreShardOptions {
  nc: NatsConnection;
  names: Names;
  shard: number;
  replicas: number;
  /** Who holds the lease meanwhile (shown to ops as the shard's owner). */
  holder: string;
  /** The lease's duration, renewed while writing (ms). Default 30 000. */
  leaseTtlMs?: number;
  /** Entity key (`<type>.<id>`) → record to write. */
  records: Iterable<readonly [string, SnapshotRecord]>;
  /**
   * The shard checkpoint to write (the input stream sequence after which the next owner replays),
   * given the one the bucket holds (undefined: none); returning undefined leaves it as it is.
   */
  checkpoint?: (current: number | undefined) => number | undefined;
  /** Called after each record is stored. */
  onRecord?: () => void;
  now?: () => number;
}

/** Restores records into one shard's bucket under a lease of its own; resolves with the records written. */
export async function restoreShard(o: RestoreShardOptions): Promise<number> {
  const now = o.now ?? Date.now;
  const ttl = o.leaseTtlMs ?? 30_000;
  const cluster = await openClusterBucket((timeout) => new Kvm(jetstream(o.nc, { timeout })), o.names, o.replicas);
  let held = await takeLease(cluster, o.shard, o.holder, ttl, now);
  const publisher = new PipelinedPublisher(o.nc, { maxInFlight: 1024 });
  try {
    const jsm = await jetstreamManager(o.nc);
    const bucket = o.names.snapshotBucket(o.shard);
    const kv = await openSnapshotBucket(new Kvm(jetstream(o.nc)), bucket, { replicas: o.replicas });
    const writer = await claimShard(jsm, kv, publisher, bucket, o.shard, held.record.epoch);
    const pending: Promise<number>[] = [];
    let written = 0;
    for (const [key, record] of o.records) {
      pending.push(
        writer.put(key, encodeRecord(record)).then((seq) => {
          written++;
          o.onRecord?.();
          return seq;
        }),
      );
      if (pending.length >= 512) {
        await Promise.all(pending.splice(0));
        if (held.record.expiresAt - now() < ttl / 2) held = await renewLease(cluster, held, ttl, now);
      }
    }
    await Promise.all(pending);
    const current = await kv.get(CHECKPOINT_KEY);
    const seq = o.checkpoint?.(current !== null && current.operation === "PUT" && current.value.length > 0 ? decodeCheckpoint(current.value) : undefined);
    if (seq !== undefined) await writer.put(CHECKPOINT_KEY, encodeCheckpoint(seq, held.record.epoch));
    return written;
  } finally {
    publisher.close();
    await releaseLease(cluster, held, now).catch(() => undefined);
  }
}

/** Throws {@link ShardBusyError} for the first of `shards` a live owner holds (checked before changing anything). */
export async function assertShardsFree(nc: NatsConnection, names: Names, shards: readonly number[], replicas: number, now: () => number = Date.now): Promise<void> {
  const cluster = await openClusterBucket((timeout) => new Kvm(jetstream(nc, { timeout })), names, replicas);
  for (const shard of shards) {
    const e = await cluster.get(leaseKey(shard));
    const cur = e !== null && e.operation === "PUT" ? decodeLease(e.value) : undefined;
    if (cur !== undefined && cur.owner !== null && cur.expiresAt >= now()) throw new ShardBusyError(shard, cur.owner, cur.expiresAt);
  }
}

interface Held {
  record: LeaseRecord;
  revision: number;
}

async function takeLease(kv: KV, shard: number, holder: string, ttl: number, now: () => number): Promise<Held> {
  const e = await kv.get(leaseKey(shard));
  const cur = e !== null && e.operation === "PUT" ? decodeLease(e.value) : undefined;
  const t = now();
  if (cur !== undefined && cur.owner !== null && cur.owner !== holder && cur.expiresAt >= t) throw new ShardBusyError(shard, cur.owner, cur.expiresAt);
  // epochs never repeat (as in ownership/lease.ts): without a lease, start above every revision the bucket had
  const epoch = cur !== undefined ? cur.epoch + 1 : (await kv.status()).streamInfo.state.last_seq + 1;
  const record: LeaseRecord = { shard, owner: holder, epoch, expiresAt: t + ttl, acquiredAt: t };
  const revision = e === null ? await kv.create(leaseKey(shard), encodeClusterRecord(record)) : await kv.update(leaseKey(shard), encodeClusterRecord(record), e.revision);
  return { record, revision };
}

async function renewLease(kv: KV, held: Held, ttl: number, now: () => number): Promise<Held> {
  const record = { ...held.record, expiresAt: now() + ttl };
  return { record, revision: await kv.update(leaseKey(record.shard), encodeClusterRecord(record), held.revision) };
}

async function releaseLease(kv: KV, held: Held, now: () => number): Promise<void> {
  const record: LeaseRecord = { ...held.record, owner: null, expiresAt: now() };
  await kv.update(leaseKey(record.shard), encodeClusterRecord(record), held.revision);
}

function decodeCheckpoint(bytes: Uint8Array): number | undefined {
  const v = decode(bytes) as { seq?: unknown };
  return typeof v?.seq === "number" ? v.seq : undefined;
}
