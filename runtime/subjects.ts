// Subject and resource names of one airtwin cluster, all derived from the prefix (docs/design.md §5).
// Generic: nothing here knows what an entity is about.

/** Names of the NATS subjects, streams, buckets and consumers of a cluster with a given prefix. */
export interface Names {
  readonly prefix: string;
  /** Input subject of one shard: `<prefix>.in.<shard>`. */
  input(shard: number): string;
  /** Input subject of messages holding items of several shards of input stream `k`: `<prefix>.in.g<k>`. */
  inputGroup(streamIndex: number): string;
  /** Input stream holding a shard: `<PREFIX>_IN_<k>` for the k-th contiguous group of shards. */
  inputStream(streamIndex: number): string;
  /** Durable consumer of one shard for one owner epoch (a new name per epoch, so stale acks of an old owner go nowhere). */
  shardConsumer(shard: number, epoch: number): string;
  /** Output subjects root: `<prefix>.out`. */
  readonly outputRoot: string;
  readonly outputStream: string;
  /** Request subject answered by the current owner of a shard. */
  rpc(shard: number): string;
  /** A new owner of a shard tells older ones (lingering or zombie) to stop answering queries. */
  handoff(shard: number): string;
  /** Cluster KV bucket (meta, nodes, coordinator, assignments, leases). */
  readonly clusterBucket: string;
  /** Snapshot KV bucket of one shard; its stream sequence is the shard's fencing token. */
  snapshotBucket(shard: number): string;
  /** Ops requests answered by the elected coordinator. */
  ops(verb: string): string;
  /** Stream of every dead letter (`<prefix>.dlq.>`): `<PREFIX>_DLQ`. */
  readonly deadLetterStream: string;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

export function names(prefix: string): Names {
  if (!TOKEN.test(prefix)) throw new TypeError(`invalid subject prefix "${prefix}"`);
  const upper = prefix.toUpperCase().replace(/-/g, "_");
  return {
    prefix,
    input: (shard) => `${prefix}.in.${shard}`,
    inputGroup: (k) => `${prefix}.in.g${k}`,
    inputStream: (k) => `${upper}_IN_${k}`,
    shardConsumer: (shard, epoch) => `shard-${shard}-e${epoch}`,
    outputRoot: `${prefix}.out`,
    outputStream: `${upper}_OUT`,
    rpc: (shard) => `${prefix}.rpc.${shard}`,
    handoff: (shard) => `${prefix}.handoff.${shard}`,
    clusterBucket: `${prefix}-cluster`,
    snapshotBucket: (shard) => `${prefix}-snap-${shard}`,
    ops: (verb) => `${prefix}.ops.${verb}`,
    deadLetterStream: `${upper}_DLQ`,
  };
}

/** Index of the input stream that holds `shard` when `shards` are split into `streams` contiguous groups. */
export function streamOfShard(shard: number, shards: number, streams: number): number {
  return Math.floor((shard * streams) / shards);
}

/** The shards held by input stream `k`. */
export function shardsOfStream(k: number, shards: number, streams: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < shards; s++) if (streamOfShard(s, shards, streams) === k) out.push(s);
  return out;
}
