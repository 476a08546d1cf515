// The cluster bucket and its `meta` record: created once (create-if-absent), after which every node must
// agree with it on the shard and stream counts, since both fix where every entity's data lives.
import type { KV, Kvm } from "@nats-io/kv";
import { askAtStart, noJetStreamLeader, START_PATIENCE_MS } from "../backoff.ts";
import { RuntimeError } from "../errors.ts";
import type { Names } from "../subjects.ts";
import { isCasConflict } from "../jetstream-errors.ts";
import { META_KEY, META_VERSION, decodeMeta, encodeRecord, type MetaRecord } from "./records.ts";

/** Per-attempt timeouts of creating the cluster bucket (ms); see {@link openClusterBucket}. */
const CREATE_TIMEOUTS_MS = [2000, 5000, 10_000, 20_000];

/**
 * Opens the cluster bucket, creating it (history 1, `replicas`) if missing. Nodes starting together race
 * to create it, and nats-server 2.9 handles the race badly: a single server may answer the loser
 * "subjects overlap with an existing stream", and a cluster may not answer the loser's create at all.
 * So each attempt has a short timeout, and a retry finds the bucket the winner created and opens it.
 * While the cluster has no JetStream leader at all (no quorum yet), it asks again for up to a minute.
 * `kvmFor(timeoutMs)` gives a KV client with that request timeout.
 */
export async function openClusterBucket(kvmFor: (timeoutMs: number) => Kvm, names: Names, replicas = 1): Promise<KV> {
  const started = performance.now();
  for (let failed = 0; ; ) {
    const timeoutMs = CREATE_TIMEOUTS_MS[Math.min(failed, CREATE_TIMEOUTS_MS.length - 1)]!;
    try {
      return await kvmFor(timeoutMs).create(names.clusterBucket, { history: 1, replicas });
    } catch (err) {
      if (noJetStreamLeader(err) && performance.now() - started < START_PATIENCE_MS) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      if (++failed >= CREATE_TIMEOUTS_MS.length) throw err;
      await new Promise((r) => setTimeout(r, 50 * failed));
    }
  }
}

/**
 * Writes `meta` unless it exists, then checks that it matches `shards` and `streams`.
 * @throws RuntimeError AIRTWIN_ERR_SHARDS_MISMATCH when the cluster was created with other counts
 *   (details: configured and cluster values); AIRTWIN_ERR_CLUSTER_META_INVALID for an unreadable record.
 */
export async function ensureClusterMeta(kv: KV, want: { shards: number; streams: number }, now: number): Promise<MetaRecord> {
  const record: MetaRecord = { version: META_VERSION, shards: want.shards, streams: want.streams, createdAt: now };
  // a bucket another node has just created can answer "no responders" for a moment on nats-server 2.9
  // (the stream exists, its subject is not listened to yet), and a cluster without quorum does not
  // answer at all: asked again, with growing pauses, for up to a minute
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await kv.create(META_KEY, encodeRecord(record));
      return record;
    } catch (err) {
      if (isCasConflict(err)) break;
      if (attempt >= 10 && performance.now() - started >= START_PATIENCE_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(25 * attempt, 1000)));
    }
  }
  const entry = await askAtStart(() => kv.get(META_KEY));
  const meta = entry === null || entry.operation !== "PUT" ? undefined : decodeMeta(entry.value);
  if (meta === undefined || meta.version !== META_VERSION) {
    throw new RuntimeError("CLUSTER_META_INVALID", `the cluster meta record is unreadable or of version ${String(meta?.version)} (this node knows ${META_VERSION})`, {
      details: { version: meta?.version },
    });
  }
  if (meta.shards !== want.shards || meta.streams !== want.streams) {
    throw new RuntimeError(
      "SHARDS_MISMATCH",
      `this node is configured with ${want.shards} shards and ${want.streams} streams, but the cluster was created with ` +
        `${meta.shards} shards and ${meta.streams} streams (AIRTWIN_SHARDS, AIRTWIN_STREAMS are fixed at creation)`,
      { details: { shards: want.shards, streams: want.streams, clusterShards: meta.shards, clusterStreams: meta.streams } },
    );
  }
  return meta;
}
