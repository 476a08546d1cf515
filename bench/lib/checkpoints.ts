// Watching and resetting a benchmark cluster's committed state: the `_checkpoint` record of every
// `<prefix>-snap-<shard>` bucket (seen as it is published, confirmed by a read), and clean-up between runs.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { Kvm } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { decode } from "../../runtime/codec.ts";
import { bucketStream, CHECKPOINT_KEY } from "../../runtime/snapshot-store.ts";
import type { Names } from "../../runtime/subjects.ts";

/**
 * The last input a checkpoint record commits: its `applied` (the cut's last input — its outputs stored,
 * its effects in snapshots or replayed from the log after them), else its `seq`.
 */
function committedUpTo(bytes: Uint8Array, field: CheckpointField = "applied"): number {
  const cp = decode<{ seq: number; applied?: number }>(bytes);
  return field === "seq" ? cp.seq : (cp.applied ?? cp.seq);
}

/**
 * Which number of a checkpoint a watch follows: "applied", the last input committed (state current,
 * outputs stored); "seq", where a replay would start (every input up to it in its twin's snapshot).
 */
export type CheckpointField = "applied" | "seq";

/** Follows every shard's checkpoint from the KV publishes themselves (no polling). */
export class CheckpointWatch {
  readonly seq: number[];
  private readonly sub: Subscription;
  private waiters: Array<() => void> = [];

  constructor(
    nc: NatsConnection,
    private readonly names: Names,
    shards: number,
    private readonly kvm: Kvm,
    private readonly field: CheckpointField = "applied",
  ) {
    this.seq = new Array<number>(shards).fill(0);
    const prefix = `${names.snapshotBucket(0).slice(0, -1)}`; // "<prefix>-snap-"
    this.sub = nc.subscribe(`$KV.*.${CHECKPOINT_KEY}`, {
      callback: (err, msg) => {
        if (err) return;
        const bucket = msg.subject.split(".")[1]!;
        if (!bucket.startsWith(prefix)) return;
        const shard = Number(bucket.slice(prefix.length));
        const cp = committedUpTo(msg.data, this.field);
        if (shard < this.seq.length && cp > this.seq[shard]!) this.seq[shard] = cp;
        for (const w of this.waiters.splice(0)) w();
      },
    });
  }

  /**
   * Resolves once every shard's stored checkpoint is at least `target[shard]`. A publish seen on the
   * subject is only a hint — JetStream may have refused it (a fenced or failed writer's pipelined
   * write is still delivered to subscribers) — so reaching is confirmed by reading the stored values,
   * and the lagging shards are also read every `readEveryMs`.
   */
  async reach(target: readonly number[], timeoutMs = 900_000, readEveryMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let nextRead = Date.now() + readEveryMs;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`checkpoints not reached: ${this.lagging(target).join(",")}`);
      const hinted = target.every((t, s) => this.seq[s]! >= t);
      if (hinted || Date.now() >= nextRead) {
        nextRead = Date.now() + readEveryMs;
        const stored = await readCheckpoints(this.kvm, this.names, this.seq.length, undefined, this.field);
        for (let s = 0; s < stored.length; s++) {
          if (stored[s]! > this.seq[s]!) this.missedPublishes++;
          if (stored[s]! < this.seq[s]!) this.seenNotStored++;
          this.seq[s] = stored[s]!;
        }
        if (target.every((t, s) => this.seq[s]! >= t)) return;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
  }

  /** Stored checkpoints ahead of what the subscription showed. */
  missedPublishes = 0;
  /**
   * Reads that found a lower stored checkpoint than a publish seen on the subject: JetStream refused it (a
   * writer that failed or was fenced) or had not stored it yet (subscribers get a publish before the
   * stream's ack) — the watch then goes on from the stored value.
   */
  seenNotStored = 0;


  lagging(target: readonly number[]): number[] {
    return target.flatMap((t, s) => (this.seq[s]! >= t ? [] : [s]));
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

/** Reads the stored checkpoint of `only` (default: every shard); 0 when the bucket or the key is missing. */
export async function readCheckpoints(kvm: Kvm, names: Names, shards: number, only?: readonly number[], field: CheckpointField = "applied"): Promise<number[]> {
  const want = new Set(only ?? Array.from({ length: shards }, (_, s) => s));
  return Promise.all(
    Array.from({ length: shards }, async (_, s) => {
      if (!want.has(s)) return 0;
      try {
        const kv = await kvm.open(names.snapshotBucket(s));
        const e = await kv.get(CHECKPOINT_KEY);
        return e === null || e.value.length === 0 ? 0 : committedUpTo(e.value, field);
      } catch {
        return 0;
      }
    }),
  );
}

/**
 * Up to where each shard's checkpoint must reach for all its input to be applied (0: none): the last
 * message of its own subject, or of the stream's messages of several shards (`in.g<k>`, the gateway's),
 * whichever is later — a node's reader moves an idle shard's checkpoint past other shards' messages.
 */
export async function lastSeqPerShard(jsm: JetStreamManager, names: Names, stream: string, shards: number, streamIndex = 0): Promise<number[]> {
  const last = (subject: string) => jsm.streams.getMessage(stream, { last_by_subj: subject }).then((m) => m?.seq ?? 0, () => 0);
  const group = await last(names.inputGroup(streamIndex));
  return Promise.all(Array.from({ length: shards }, async (_, s) => Math.max(group, await last(names.input(s)))));
}

/**
 * Forgets all committed state (snapshot buckets, shard consumers, outputs) so a run starts from scratch.
 * Every deletion is confirmed: a bucket that survived (a delete that timed out on a loaded server) would
 * hand the next run its predecessor's checkpoint, and the run would "finish" without applying anything.
 */
export async function resetRuntimeState(jsm: JetStreamManager, names: Names, stream: string, shards: number): Promise<void> {
  const streams = [...Array.from({ length: shards }, (_, s) => bucketStream(names.snapshotBucket(s))), names.outputStream];
  await Promise.all(streams.map((name) => deleteStream(jsm, name)));
  const consumers: string[] = [];
  for await (const ci of jsm.consumers.list(stream)) if (ci !== null) consumers.push(ci.name);
  await Promise.all(consumers.map((c) => jsm.consumers.delete(stream, c).catch(() => false)));
  for await (const ci of jsm.consumers.list(stream)) if (ci !== null) throw new Error(`consumer ${ci.name} of ${stream} survived the reset`);
}

/** Deletes a stream and makes sure it is gone (retrying a delete that failed or timed out). */
async function deleteStream(jsm: JetStreamManager, name: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await jsm.streams.delete(name).catch(() => false);
    const exists = await jsm.streams.info(name).then(
      () => true,
      (err: unknown) => !/not found/i.test(String((err as Error).message)),
    );
    if (!exists) return;
  }
  throw new Error(`stream ${name} could not be deleted`);
}

/** Deletes every stream of a prefix (inputs, outputs, snapshot buckets, cluster bucket). */
export async function deletePrefix(jsm: JetStreamManager, names: Names): Promise<void> {
  const doomed: string[] = [];
  const upper = names.prefix.toUpperCase().replace(/-/g, "_");
  for await (const si of jsm.streams.list()) {
    const n = si.config.name;
    if (n.startsWith(`${upper}_`) || n.startsWith(`KV_${names.prefix}-`)) doomed.push(n);
  }
  await Promise.all(doomed.map((n) => jsm.streams.delete(n).catch(() => false)));
}
