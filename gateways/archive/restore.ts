// Restore from the archive (`airtwin archive restore`): the registry entries first (created only where
// missing, so a newer entry is never overwritten), then every shard's twins through runtime/restore.ts
// (under the shard's lease, fenced like an owner). Sequences: a snapshot whose input stream still
// exists (same generation) keeps its applied sequence and the shard its checkpoint, so the next owner
// replays exactly what came after; when the input stream was recreated, the records start at 0 and the
// next owner applies everything the new stream holds on top of the restored state. Resumable: a run
// per arguments and input stream generations, and the shards it finished (restore-source.ts).
import { createHash } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { deviceTwinBehavior, TWIN_TYPE } from "../../actors/device-twin/behavior.ts";
import { validateDeviceId } from "../../actors/device-twin/domain/mod.ts";
import {
  askAgain,
  assertShardsFree,
  decode,
  decodeRecord,
  ensureClusterForClients,
  isCasConflict,
  isStreamNotFound,
  names as namesOf,
  replayRecord,
  restoreShard,
  RuntimeError,
  shardOf,
  ShardBusyError,
  START_PATIENCE_MS,
  type EntityBehavior,
  type SnapshotRecord,
} from "../../runtime/mod.ts";
import { GatewayError } from "../errors.ts";
import { openBucket, registryBucket } from "../registry/registry.ts";
import { migrate, type Database } from "./db/mod.ts";
import { archivedInputs, isAfter, type ArchivedInput, type LogPosition } from "./restore-inputs.ts";
import {
  archivedCheckpoint,
  archivedCheckpoints,
  archivedRegistry,
  archivedShards,
  archivedSnapshots,
  countSnapshots,
  finishRestoreRun,
  openRestoreRun,
  shardRestored,
} from "./restore-source.ts";
import { ARCHIVE_MIGRATIONS } from "./schema.ts";

export type RestoreTarget = { all: true } | { deviceId: string };

/** Options of {@link restoreFromArchive}. */
export interface RestoreOptions {
  nc: NatsConnection;
  db: Database;
  prefix: string;
  shards: number;
  streams: number;
  replicas: number;
  target: RestoreTarget;
  /** Lease holder name shown while restoring. Default `restore-<pid>`. */
  holder?: string;
  /** Called once with the records to write, then after each. */
  onStart?: (total: number, resumed: boolean) => void;
  onRecord?: () => void;
  /** Shards restored at once. Default 8. */
  concurrency?: number;
  /**
   * The twins' behaviour, configured as the nodes run it (the archived inputs after each snapshot are
   * applied with it). Default: the device twin with its default options.
   */
  behavior?: EntityBehavior;
}

/** What a restore did. */
export interface RestoreResult {
  registryEntries: number;
  shards: number;
  records: number;
  /** Archived inputs applied on top of the snapshots (their input stream was lost). */
  replayedInputs: number;
  /** Twins rebuilt from archived inputs alone (no archived snapshot). */
  rebuiltTwins: number;
  /** Shards skipped because an interrupted run with the same arguments had done them. */
  skippedShards: number;
  resumed: boolean;
}

export async function restoreFromArchive(o: RestoreOptions): Promise<RestoreResult> {
  const names = namesOf(o.prefix);
  const deviceId = "deviceId" in o.target ? o.target.deviceId : undefined;
  if (deviceId !== undefined && validateDeviceId(deviceId) !== undefined) {
    throw new GatewayError("ARCHIVE_RESTORE_INVALID", `invalid device id ${JSON.stringify(deviceId)}`, { details: [{ field: "--device", message: "1-64 characters of [A-Za-z0-9_-]" }] });
  }
  await migrate(o.db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
  // streams (and the cluster meta) as on a fresh cluster: the restore writes into them
  await ensureClusterForClients(o.nc, names, { shards: o.shards, streams: o.streams, replicas: o.replicas });
  const jsm = await jetstreamManager(o.nc);
  const inGens: number[] = [];
  for (let k = 0; k < o.streams; k++) inGens.push(Date.parse((await jsm.streams.info(names.inputStream(k))).created));

  // 0. the inputs of lost input streams after each shard's archived checkpoint (replayed below)
  const behavior = o.behavior ?? (deviceTwinBehavior() as EntityBehavior);
  const replay = await lostInputs(o.db, inGens, o.shards, o.streams, deviceId);
  const shardList =
    deviceId !== undefined ? [shardOf(deviceId, o.shards)] : [...new Set([...(await archivedShards(o.db)), ...replay.byShard.keys()])].sort((a, b) => a - b);
  await busyAsCoded(() => assertShardsFree(o.nc, names, shardList, o.replicas)); // refused before anything changes

  // 1. the registry: devices and users with their hashed credentials
  const registry = await openBucket(new Kvm(jetstream(o.nc)), registryBucket(o.prefix), o.replicas);
  let keys: string[] | undefined;
  if (deviceId !== undefined) {
    const device = await archivedRegistry(o.db, [`devices.${deviceId}`]);
    const ownerId = device[0] === undefined ? undefined : (decode(device[0].value) as { ownerId?: string }).ownerId;
    keys = [`devices.${deviceId}`, ...(ownerId === undefined ? [] : [`users.${ownerId}`])];
  }
  let registryEntries = 0;
  for (const { key, value } of await archivedRegistry(o.db, keys)) {
    // a key present already holds the live entry, newer than the archive's; any other failure (a bucket
    // just created by a gateway starting meanwhile can answer "stream not found") is asked again, then
    // fails the restore: an entry skipped silently would be a device that cannot post after it
    const create = () => registry.create(key, value).then(() => true, (err: unknown) => (isCasConflict(err) ? false : Promise.reject(err)));
    const created = await askAgain(create, { withinMs: START_PATIENCE_MS, alsoWhen: isStreamNotFound }).catch((err: unknown) => {
      throw new RuntimeError("NATS_UNAVAILABLE", `cannot restore the registry entry ${key}: ${(err as Error).message}`, { cause: err });
    });
    if (created) registryEntries++;
  }

  // 2. the twins, shard by shard
  const twinKeys = deviceId === undefined ? undefined : [`${TWIN_TYPE}.${deviceId}`];
  const args = JSON.stringify({ target: o.target, prefix: o.prefix, inGens });
  const runId = createHash("sha256").update(args).digest("hex").slice(0, 32);
  const run = await openRestoreRun(o.db, runId, args, Date.now());
  const todo = shardList.filter((s) => !run.done.has(s));
  o.onStart?.(await countSnapshots(o.db, todo, twinKeys), run.resumed);
  let records = 0;
  let replayedInputs = 0;
  let rebuiltTwins = 0;
  // a few shards at once: each is a pipelined stream of fenced writes into its own bucket
  const queue = [...todo];
  const restoreOne = async (shard: number): Promise<void> => {
    const inGen = inGens[Math.floor((shard * o.streams) / o.shards)]!;
    const rows = await archivedSnapshots(o.db, shard, twinKeys);
    // the archived inputs after the snapshots, by device (only where their input stream was lost)
    const start = replay.startOf.get(shard);
    const inputs = new Map<string, ArchivedInput[]>();
    for (const input of replay.byShard.get(shard) ?? []) {
      let list = inputs.get(input.deviceId);
      if (list === undefined) inputs.set(input.deviceId, (list = []));
      list.push(input);
    }
    /** The record brought forward by the archived inputs after `from` (the snapshot's position), or undefined when there are none. */
    const replayed = (id: string, record: SnapshotRecord | undefined, from: LogPosition | undefined): SnapshotRecord | undefined => {
      const after = (inputs.get(id) ?? []).filter((i) => start !== undefined && isAfter(i, from ?? start));
      inputs.delete(id);
      if (after.length === 0) return undefined;
      replayedInputs += after.length;
      if (record === undefined) rebuiltTwins++;
      return replayRecord(behavior, id, record, after, { prefix: o.prefix, appliedSeq: 0 });
    };
    const restored: [string, SnapshotRecord][] = rows.map((r) => {
      const record = decodeRecord(r.record);
      if (r.inGen === inGen) return [r.key, record];
      // sequences of another (lost) input stream mean nothing in this one: start the twin's log over,
      // after applying what the archive kept of that stream past the snapshot
      const id = r.key.startsWith(`${TWIN_TYPE}.`) ? r.key.slice(TWIN_TYPE.length + 1) : undefined;
      const forward = id === undefined ? undefined : replayed(id, record, { gen: r.inGen, seq: record.appliedSeq });
      return [r.key, forward ?? { ...record, appliedSeq: 0 }];
    });
    // twins with archived inputs and no archived snapshot (never written, or written after the loss)
    for (const id of [...inputs.keys()]) {
      const record = replayed(id, undefined, undefined);
      if (record !== undefined) restored.push([`${TWIN_TYPE}.${id}`, record]);
    }
    const cp = await archivedCheckpoint(o.db, shard);
    const lowest = restored.reduce((min, [, r]) => Math.min(min, r.appliedSeq), Number.MAX_SAFE_INTEGER);
    const written = await busyAsCoded(() =>
      restoreShard({
        nc: o.nc,
        names,
        shard,
        replicas: o.replicas,
        holder: o.holder ?? `restore-${process.pid}`,
        records: restored,
        ...(o.onRecord === undefined ? {} : { onRecord: o.onRecord }),
        checkpoint: (current) =>
          deviceId === undefined
            ? cp !== undefined && cp.inGen === inGen ? cp.seq : 0
            : // one twin: replay from its own position (the others skip what their snapshots hold)
              Math.min(current ?? 0, lowest),
      }),
    );
    records += written; // after the await: concurrent shards must not overwrite each other's count
    await shardRestored(o.db, runId, shard, restored.length, Date.now());
  };
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency ?? 8, queue.length) }, async () => {
      for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) await restoreOne(shard);
    }),
  );
  await finishRestoreRun(o.db, runId, Date.now());
  return { registryEntries, shards: todo.length, records, replayedInputs, rebuiltTwins, skippedShards: shardList.length - todo.length, resumed: run.resumed };
}

/**
 * The archived inputs of lost input streams (generations older than the live one) after each shard's
 * archived checkpoint — everything before it is in the shard's snapshots (an owner writes the
 * checkpoint only after them, and the archive stores the bucket in order) — by shard. A shard whose
 * checkpoint refers to the live stream replays nothing (its owner's log is there); one without a
 * checkpoint replays its lost streams from their start. One read per input stream.
 */
async function lostInputs(
  db: Database,
  inGens: readonly number[],
  shards: number,
  streams: number,
  deviceId: string | undefined,
): Promise<{ startOf: Map<number, LogPosition>; byShard: Map<number, ArchivedInput[]> }> {
  const checkpoints = await archivedCheckpoints(db);
  const startOf = new Map<number, LogPosition>();
  const byShard = new Map<number, ArchivedInput[]>();
  const streamOf = (shard: number) => Math.floor((shard * streams) / shards);
  for (let shard = 0; shard < shards; shard++) {
    if (deviceId !== undefined && shard !== shardOf(deviceId, shards)) continue;
    const cp = checkpoints.get(shard);
    if (cp === undefined) startOf.set(shard, { gen: 0, seq: 0 });
    else if (cp.inGen !== inGens[streamOf(shard)]) startOf.set(shard, { gen: cp.inGen, seq: cp.seq });
  }
  for (let k = 0; k < streams; k++) {
    const starts = [...startOf].filter(([shard]) => streamOf(shard) === k).map(([, p]) => p);
    if (starts.length === 0) continue;
    const from = starts.reduce((a, b) => (isAfter(a, b) ? b : a));
    for (const input of await archivedInputs(db, k, from, inGens[k]!, TWIN_TYPE)) {
      if (deviceId !== undefined && input.deviceId !== deviceId) continue;
      const shard = shardOf(input.deviceId, shards);
      const start = startOf.get(shard);
      if (start === undefined || !isAfter(input, start)) continue;
      let list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, (list = []));
      list.push(input);
    }
  }
  return { startOf, byShard };
}

/** A shard owned by a live node, as the coded error the CLI reports. */
async function busyAsCoded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ShardBusyError) {
      throw new GatewayError("ARCHIVE_RESTORE_BUSY", `${err.message}: stop the nodes (or wait for the lease to expire), then run restore again — it resumes`, {
        details: { shard: err.shard, owner: err.owner, expiresAt: err.expiresAt },
      });
    }
    throw err;
  }
}
