// Per-shard snapshot storage in a KV bucket whose last message is the shard's fencing token.
//
// Every write of an owner carries a `Nats-Msg-Id` naming its epoch (`e<epoch>.<n>`) and
// `Nats-Expected-Last-Msg-Id` of its own previous write: the stream refuses it unless the owner's
// previous write is still the last message. A new owner first writes a fence record (conditional on
// the stream and fence sequences it read), so from that moment every write of an older owner — paused,
// partitioned, a zombie — is refused by JetStream itself, atomically; no clock or lease check can be
// raced. Writes are pipelined: each expects its predecessor's id. (A chain on stream sequence numbers
// would not do: after one refused write, an old owner's later pipelined writes can line up with the
// new owner's sequence numbers and pass. Ids carrying the epoch never line up.)
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Kvm, KV } from "@nats-io/kv";
import { decode, encode } from "./codec.ts";
import { decodeCommandKeys, encodeCommandKeys, type AppliedCommand } from "./command-keys.ts";
import { JS_ERR_WRONG_LAST_MSG_ID, JS_ERR_WRONG_LAST_SEQUENCE, PublishError, type PipelinedPublisher } from "./publisher.ts";

/** Key of the fence record in every snapshot bucket. */
export const FENCE_KEY = "_fence";
/** Key of the shard checkpoint: the input stream sequence up to which all effects are committed. */
export const CHECKPOINT_KEY = "_checkpoint";
/** Header naming the epoch of the owner that wrote a record. */
export const EPOCH_HEADER = "Airtwin-Epoch";

/**
 * What the store keeps per entity: where it is in the input log, when it wants to wake, its state, and
 * the keyed commands it applied last (command-keys.ts).
 */
export interface SnapshotRecord {
  /** Input stream sequence of the last message applied to this entity. */
  appliedSeq: number;
  /** Wall-clock wake-up (ms) the entity asked for, if any. */
  wakeAt: number | undefined;
  /** The behaviour-encoded state. */
  state: Uint8Array;
  /** Keyed commands applied last, oldest first; absent for an entity that never got one. */
  commands?: readonly AppliedCommand[];
}

/**
 * Encodes `[appliedSeq, wakeAt, state]`, with a fourth element `[[key, seq, reply], …]` only when the
 * entity remembers keyed commands: the records of every other entity stay byte for byte what they were
 * (and records written before keys existed decode as "no keyed commands").
 */
export function encodeRecord(r: SnapshotRecord): Uint8Array {
  if (r.commands === undefined || r.commands.length === 0) return encode([r.appliedSeq, r.wakeAt ?? null, r.state]);
  return encode([r.appliedSeq, r.wakeAt ?? null, r.state, encodeCommandKeys(r.commands)]);
}

export function decodeRecord(bytes: Uint8Array): SnapshotRecord {
  const raw = decode(bytes);
  if (!Array.isArray(raw) || typeof raw[0] !== "number" || !(raw[2] instanceof Uint8Array)) {
    throw new TypeError("malformed snapshot record");
  }
  const record: SnapshotRecord = { appliedSeq: raw[0], wakeAt: typeof raw[1] === "number" ? raw[1] : undefined, state: raw[2] };
  if (raw.length > 3) record.commands = decodeCommandKeys(raw[3]);
  return record;
}

/** Snapshot key of an entity: `<type>.<id>`. */
export function entityKey(type: string, entityId: string): string {
  return `${type}.${entityId}`;
}

/** The owner's write was refused: another owner has fenced this shard. */
export class FencedError extends Error {
  override readonly name = "FencedError";
  readonly shard: number;
  readonly epoch: number;
  constructor(shard: number, epoch: number, message: string) {
    super(message);
    this.shard = shard;
    this.epoch = epoch;
  }
}

export interface SnapshotBucketOptions {
  replicas: number;
}

/** Creates the shard's snapshot bucket if it does not exist (idempotent). */
export async function openSnapshotBucket(kvm: Kvm, bucket: string, options: SnapshotBucketOptions): Promise<KV> {
  return kvm.create(bucket, { history: 1, replicas: options.replicas });
}

/** The stream behind a KV bucket. */
export function bucketStream(bucket: string): string {
  return `KV_${bucket}`;
}

/** The bucket as the fence found it; only the new owner writes after the fence, so this stays exact. */
export interface ClaimedBucket {
  /** Epoch of the fence replaced: the previous claimer, whose input consumer may still exist. */
  readonly previousEpoch: number | undefined;
  /** Keys the bucket holds with the fence in place (what a full scan must see). */
  readonly keys: number | undefined;
}

/**
 * The single writer of one shard's snapshots for one epoch. Obtain it with {@link claimShard}.
 * All writes go through `put`, in order; a refused write means the shard was taken over.
 */
export class FencedWriter {
  private lastMsgId: string;
  private written = 0;
  private broken: Error | undefined;

  constructor(
    private readonly publisher: PipelinedPublisher,
    private readonly bucket: string,
    readonly shard: number,
    readonly epoch: number,
    /** This claim's tag (unique per start of the shard in this process): the ids of its writes carry it. */
    readonly claim: string,
    fenceMsgId: string,
    /** What the claim saw of the bucket (see {@link ClaimedBucket}). */
    readonly claimed: ClaimedBucket = { previousEpoch: undefined, keys: undefined },
  ) {
    this.lastMsgId = fenceMsgId;
  }

  /** Writes a record; resolves with its stream sequence; rejects with FencedError once fenced. */
  put(key: string, value: Uint8Array): Promise<number> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const expectLastMsgId = this.lastMsgId;
    const msgId = writeId(this.epoch, this.claim, ++this.written);
    this.lastMsgId = msgId;
    // `publish` (not `publishNow`): a commit of many snapshots waits for room in the node-wide
    // in-flight window, in call order, so the chain stays ordered and no ack times out in a queue.
    return this.publisher
      .publish(`$KV.${this.bucket}.${key}`, value, { msgId, expectLastMsgId, headers: { [EPOCH_HEADER]: String(this.epoch) } })
      .then(
        (ack) => {
          if (ack.duplicate) throw new FencedError(this.shard, this.epoch, `shard ${this.shard}: write ${msgId} reported as duplicate`);
          return ack.seq;
        },
        (err: unknown) => {
          this.broken ??= isFencingRefusal(err)
            ? new FencedError(this.shard, this.epoch, `shard ${this.shard} epoch ${this.epoch}: write refused, another owner fenced it`)
            : (err as Error);
          throw this.broken;
        },
      );
  }

  /** Set after a write failed; the shard must stop (fenced) or re-verify (other errors). */
  get failed(): Error | undefined {
    return this.broken;
  }
}

/** Distinguishes successive claims of one epoch (a runner restarted after a storage failure). */
let claims = 0;
const processTag = Date.now().toString(36);

function writeId(epoch: number, claim: string, n: number): string {
  return `e${epoch}.${claim}.${n}`;
}

function isFencingRefusal(err: unknown): boolean {
  return err instanceof PublishError && (err.jsErrCode === JS_ERR_WRONG_LAST_MSG_ID || err.jsErrCode === JS_ERR_WRONG_LAST_SEQUENCE);
}

/**
 * Fences the shard for `epoch`: writes the fence record with an expected last sequence, retrying while
 * an older owner's writes land in between. Refuses if a newer epoch already fenced it.
 */
export async function claimShard(
  jsm: JetStreamManager,
  kv: KV,
  publisher: PipelinedPublisher,
  bucket: string,
  shard: number,
  epoch: number,
): Promise<FencedWriter> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // read concurrently: if they disagree (a write in between), the conditional fence below is refused
    // and we read again; if it is accepted, both describe the bucket just before the fence
    const [fence, info] = await Promise.all([kv.get(FENCE_KEY), jsm.streams.info(bucketStream(bucket))]);
    const fenceRevision = fence?.revision ?? 0;
    let previousEpoch: number | undefined;
    if (fence !== null && fence.operation === "PUT" && fence.value.length > 0) {
      previousEpoch = decodeFenceEpoch(fence.value);
      if (previousEpoch > epoch) throw new FencedError(shard, epoch, `shard ${shard} already fenced by epoch ${previousEpoch}`);
    }
    const last = info.state.last_seq;
    const claim = `${processTag}${(claims++).toString(36)}`;
    const fenceMsgId = writeId(epoch, claim, 0);
    try {
      await publisher.publishNow(`$KV.${bucket}.${FENCE_KEY}`, encodeFence(epoch, Date.now()), {
        msgId: fenceMsgId,
        expectLastSeq: last,
        // also conditional on the fence we read: a slower claimer of an older epoch cannot overwrite ours
        expectLastSubjectSeq: fenceRevision,
        headers: { [EPOCH_HEADER]: String(epoch) },
      });
      const subjects = info.state.num_subjects;
      const keys = subjects === undefined ? undefined : subjects + (fenceRevision === 0 ? 1 : 0);
      return new FencedWriter(publisher, bucket, shard, epoch, claim, fenceMsgId, { previousEpoch, keys });
    } catch (err) {
      if (!(err instanceof PublishError && err.jsErrCode === JS_ERR_WRONG_LAST_SEQUENCE)) throw err;
      // an older owner wrote in between: read again and retry
    }
  }
  throw new FencedError(shard, epoch, `shard ${shard}: could not place the fence for epoch ${epoch}`);
}

/** Everything a shard's bucket holds, read in one ordered pass (bulk load at acquisition). */
export interface ShardScan {
  checkpoint: number;
  /** The checkpoint's last applied input (≥ checkpoint): outputs of inputs up to it are stored. */
  applied: number;
  entities: Map<string, SnapshotRecord>;
  /**
   * Keys whose last value could not be decoded (written by something other than an owner): left out of
   * `entities` (such an entity starts afresh), or a checkpoint read as 0 (the whole log is replayed;
   * entities skip what their snapshots hold). The caller dead-letters them.
   */
  undecodable: Array<{ key: string; data: Uint8Array; error: string }>;
}

/** A scan pass that receives nothing for this long ends (see scanOnce). */
export const SCAN_SILENCE_MS = 15_000;

/** Reads the last record of every key of the bucket with an ordered consumer (one pass, no request per key). */
export async function scanShard(js: JetStreamClient, jsm: JetStreamManager, bucket: string, knownKeys?: number): Promise<ShardScan> {
  // Only this owner writes the bucket now (it is fenced), so one pass must see every key the stream
  // holds. A pass that saw fewer (an ordered consumer reset under load) is repeated: starting a shard
  // from an incomplete scan would take known entities for new ones and overwrite their snapshots.
  // `knownKeys` (counted by the claim) saves asking the stream for the first pass.
  for (let attempt = 1; ; attempt++) {
    const expected = attempt === 1 && knownKeys !== undefined ? knownKeys : (await jsm.streams.info(bucketStream(bucket))).state.num_subjects;
    if (expected === 0) return { checkpoint: 0, applied: 0, entities: new Map(), undecodable: [] };
    const scan = await scanOnce(js, bucket);
    if (expected === undefined || scan.keys >= expected) return { checkpoint: scan.checkpoint, applied: scan.applied, entities: scan.entities, undecodable: scan.undecodable };
    if (attempt >= 5) throw new Error(`scan of ${bucket} saw ${scan.keys} of ${expected} keys`);
  }
}

async function scanOnce(js: JetStreamClient, bucket: string): Promise<ShardScan & { keys: number }> {
  const entities = new Map<string, SnapshotRecord>();
  const undecodable: ShardScan["undecodable"] = [];
  const seen = new Set<string>();
  let checkpoint = 0;
  let applied = 0;
  const consumer = await js.consumers.get(bucketStream(bucket), {
    filter_subjects: `$KV.${bucket}.>`,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const prefixLength = `$KV.${bucket}.`.length;
  const messages = await consumer.consume({ max_messages: 1000 });
  // A pass that stops receiving (its consumer lost with a NATS server, and the ordered consumer's reset
  // refused) would otherwise wait forever and hold the shard unserved: it ends after a silence, and the
  // caller's key count sends it round again or fails the start, which ownership retries.
  let silence: NodeJS.Timeout | undefined;
  const listen = () => {
    clearTimeout(silence);
    silence = setTimeout(() => void messages.close().catch(() => undefined), SCAN_SILENCE_MS);
  };
  listen();
  for await (const m of messages) {
    listen();
    const key = m.subject.slice(prefixLength);
    seen.add(key);
    const op = m.headers?.get("KV-Operation");
    if (op !== "DEL" && op !== "PURGE" && m.data.length > 0) {
      try {
        if (key === CHECKPOINT_KEY) {
          ({ seq: checkpoint, applied } = decodeCheckpointSeqs(m.data));
        } else if (key !== FENCE_KEY) {
          entities.set(key, decodeRecord(m.data));
        }
      } catch (err) {
        // a value no owner wrote must not keep the shard from starting
        if (key === CHECKPOINT_KEY) checkpoint = applied = 0;
        else entities.delete(key);
        undecodable.push({ key, data: m.data, error: (err as Error).message });
      }
    } else {
      entities.delete(key);
    }
    if (m.info.pending === 0) break;
  }
  clearTimeout(silence);
  await messages.close();
  return { checkpoint, applied, entities, undecodable, keys: seen.size };
}

/** Reads one entity's committed record without any owner (snapshot consistency). */
export async function readSnapshot(kv: KV, key: string): Promise<SnapshotRecord | undefined> {
  const e = await kv.get(key);
  if (e === null || e.operation !== "PUT" || e.value.length === 0) return undefined;
  return decodeRecord(e.value);
}

/**
 * Encodes the shard checkpoint record `{ seq, epoch, applied }`: `seq`, the input stream sequence after
 * which a new owner replays (every input up to it is in its twin's snapshot); `applied` (≥ seq, left out
 * when equal), the last input of the committed cut — its outputs are stored, so a replay up to it
 * publishes none of them again.
 */
export function encodeCheckpoint(seq: number, epoch: number, applied = seq): Uint8Array {
  return encode(applied > seq ? { seq, epoch, applied } : { seq, epoch });
}

/** Encodes the fence record `{ epoch, at }` (`at`: wall-clock ms of the claim, for people reading the bucket). */
export function encodeFence(epoch: number, at: number): Uint8Array {
  return encode({ epoch, at });
}

/** The epoch a fence record names (0 if it names none, or is not a fence record: the claim's CAS still guards). */
export function decodeFenceEpoch(bytes: Uint8Array): number {
  try {
    const epoch = decode<{ epoch?: unknown } | null>(bytes)?.epoch;
    return typeof epoch === "number" && Number.isSafeInteger(epoch) && epoch >= 0 ? epoch : 0;
  } catch {
    return 0;
  }
}

/** The stream sequences a checkpoint record names (`applied`: `seq` when absent). @throws on anything but a checkpoint record. */
export function decodeCheckpointSeqs(bytes: Uint8Array): { seq: number; applied: number } {
  const r = decode<{ seq?: unknown; applied?: unknown } | null>(bytes);
  const seq = r?.seq;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) throw new TypeError("malformed checkpoint record");
  const applied = r?.applied;
  return { seq, applied: typeof applied === "number" && Number.isSafeInteger(applied) && applied > seq ? applied : seq };
}

/** Opens a KV handle of an existing bucket without creating it. */
export async function bindBucket(kvm: Kvm, bucket: string): Promise<KV> {
  return kvm.open(bucket);
}
