// The typed client of the runtime: send inputs (micro-batched per input stream, or per shard, pipelined, resolved on PubAck),
// send commands and await their result, query live state from the owner, read committed snapshots.
// Used by the HTTP gateway and by any other service.
import { Kvm, type KV } from "@nats-io/kv";
import { createInbox, errors as natsErrors, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { backoffMs, pause, type Backoff } from "./backoff.ts";
import { idempotencyKeyProblem } from "./command-keys.ts";
import { ERASE_KIND } from "./entity.ts";
import { encodeBatch, type InputItem } from "./envelope.ts";
import { InputBatcher, type PublishedPart } from "./input-batcher.ts";
import { decodeReply, encodeQuery, type EntityReply } from "./protocol.ts";
import { PipelinedPublisher, type PubAck } from "./publisher.ts";
import { shardOf } from "./shard-id.ts";
import { entityKey, readSnapshot, type SnapshotRecord } from "./snapshot-store.ts";
import { names as namesOf, streamOfShard, type Names } from "./subjects.ts";
import { RuntimeError } from "./errors.ts";

export interface RuntimeClientOptions {
  /** Subject prefix of the cluster. Default "airtwin". */
  prefix?: string;
  /** Shard count of the cluster (must match the cluster's; checked against its meta when present). */
  shards: number;
  /**
   * Input streams of the cluster (AIRTWIN_STREAMS; must match the cluster's). Given, the inputs of every
   * shard of a stream share messages (`<prefix>.in.g<k>`): at one reading a request, several requests'
   * readings in one stored message (docs/design.md §7). Not given, one message per shard (`<prefix>.in.<shard>`),
   * which any cluster reads — a client that does not know the stream count must not guess it.
   */
  streams?: number;
  /**
   * Longest an input waits for companions (ms). Default 2. A stream's (or shard's) batch leaves at the end of the
   * event-loop turn when it has no message awaiting its PubAck, so the wait is 0 when idle; while
   * one is in flight it waits for that PubAck, at most this long (see input-batcher.ts).
   */
  lingerMs?: number;
  /**
   * Shortest time between two messages of one stream (or shard) (ms). Default 0: the PubAck round trip
   * alone paces them. A busy client gathers more requests per stored message with it (input-batcher.ts).
   */
  gatherMs?: number;
  /**
   * A stream's (or shard's) batch weighing this much — its inputs' `weight`s summed, 1 each unless
   * {@link SendOptions.weight} says otherwise — leaves without waiting out `gatherMs`. Default: none does.
   */
  gatherWeight?: number;
  /** Most items in one input message. Default 500. */
  maxBatchItems?: number;
  /** Most publishes awaiting PubAck. Default 1024. */
  maxInFlight?: number;
  /** How long JetStream may take to confirm a batch (ms). Default 5000. */
  ackTimeoutMs?: number;
}

/** Options of {@link RuntimeClient.send}. */
export interface SendOptions {
  /** How much the input counts toward a batch's {@link RuntimeClientOptions.gatherWeight} (e.g. its readings). Default 1. */
  weight?: number;
}

/** Options of {@link RuntimeClient.command}. */
export interface CommandOptions {
  /** How long to wait for the entity's reply (ms); the command is applied anyway afterwards. Default 10 000. */
  timeoutMs?: number;
  /**
   * Makes a retry safe: the entity applies the first command it receives under this key and answers
   * every later one with that command's reply (same `seq`, `replayed: true`) without applying it; a
   * later command under the key that differs from the first (its kind or payload, not merely the order
   * of object keys) is not applied either and gets `ok: false` with AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED
   * (command-fingerprint.ts). Keys are per entity; each entity remembers its last 32 keyed commands, at most 16 KiB of them
   * (command-keys.ts); a forgotten key applies again. 1–128 printable ASCII characters, no space at
   * either end; anything else is refused (AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID).
   */
  idempotencyKey?: string;
}

/** Pauses between asking again while no owner answers a query (the shard is moving). */
const QUERY_BACKOFF: Backoff = { firstMs: 20, maxMs: 250 };

/** Most bytes in one NATS message we produce (servers default to 1 MiB max_payload). */
const MAX_MESSAGE_BYTES = 900 * 1024;

export class RuntimeClient {
  readonly names: Names;
  readonly shards: number;
  /** Input streams when inputs are batched per stream (see {@link RuntimeClientOptions.streams}). */
  private readonly streams: number | undefined;
  private readonly nc: NatsConnection;
  private readonly publisher: PipelinedPublisher;
  private readonly kvm: Kvm;
  private readonly buckets = new Map<number, Promise<KV>>();
  private readonly batcher: InputBatcher;
  private readonly replies: Subscription;
  private readonly replyInbox = createInbox();
  private readonly waiting = new Map<number, (reply: EntityReply) => void>();
  private nextReply = 0;

  constructor(nc: NatsConnection, options: RuntimeClientOptions) {
    this.nc = nc;
    this.names = namesOf(options.prefix ?? "airtwin");
    this.shards = options.shards;
    this.streams = options.streams;
    this.publisher = new PipelinedPublisher(nc, { maxInFlight: options.maxInFlight ?? 1024, ackTimeoutMs: options.ackTimeoutMs ?? 5000 });
    this.kvm = new Kvm(nc);
    this.batcher = new InputBatcher((key, items) => this.publishBatch(key, items), {
      lingerMs: options.lingerMs ?? 2,
      maxBatchItems: options.maxBatchItems ?? 500,
      gatherMs: options.gatherMs ?? 0,
      ...(options.gatherWeight === undefined ? {} : { gatherWeight: options.gatherWeight }),
    });
    this.replies = nc.subscribe(`${this.replyInbox}.*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
  }

  /** Shard of an entity. */
  shardOf(entityId: string): number {
    return shardOf(entityId, this.shards);
  }

  /**
   * Appends an input for an entity to the log. Resolves when JetStream stored the message holding it;
   * rejects (PublishError) when it did not confirm in time — the caller may resend safely when the
   * entity de-duplicates (the device twin does, by reading time).
   */
  send(type: string, entityId: string, kind: string, payload: unknown, options?: SendOptions): Promise<PubAck> {
    return this.enqueue({ type, entityId, kind, payload }, options?.weight);
  }

  /**
   * Erases an entity: its state is replaced by a fresh one (history, settings and wake-ups gone) when
   * the owner reaches this point of the log — after every input sent before, before any sent after.
   * Resolves once the request is stored in the log (durable; the owner applies it even if it is down now).
   */
  erase(type: string, entityId: string): Promise<PubAck> {
    return this.send(type, entityId, ERASE_KIND, null);
  }

  /**
   * Sends a command through the log and resolves with the entity's reply once it was applied. Resend it
   * with the same `idempotencyKey` after a timeout or a lost connection: it is applied at most once.
   */
  async command(type: string, entityId: string, kind: string, payload: unknown, options: CommandOptions = {}): Promise<EntityReply> {
    const key = options.idempotencyKey;
    if (key !== undefined) {
      const problem = idempotencyKeyProblem(key);
      if (problem !== undefined) throw new RuntimeError("IDEMPOTENCY_KEY_INVALID", `idempotency key ${problem}`, { details: { field: "idempotencyKey" } });
    }
    const id = this.nextReply++;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const reply = new Promise<EntityReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new RuntimeError("REQUEST_TIMEOUT", `no result within ${timeoutMs} ms (the command is logged and will still be applied)`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    try {
      const item: InputItem = { type, entityId, kind, payload, replyTo: `${this.replyInbox}.${id}` };
      if (key !== undefined) item.idempotencyKey = key;
      await this.enqueue(item);
    } catch (err) {
      this.waiting.delete(id);
      reply.catch(() => undefined);
      throw err;
    }
    return reply;
  }

  /** Asks the entity's current owner; retries while the shard moves, until the deadline. */
  async get(type: string, entityId: string, query: unknown, options: { timeoutMs?: number } = {}): Promise<EntityReply> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    const subject = this.names.rpc(this.shardOf(entityId));
    const body = encodeQuery(type, entityId, query);
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) throw new RuntimeError("REQUEST_TIMEOUT", `no owner answered for ${type} ${entityId}`);
      try {
        const msg = await this.nc.request(subject, body, { timeout: Math.min(left, 2000) });
        return decodeReply(msg.data);
      } catch (err) {
        if (!(err instanceof natsErrors.NoRespondersError || err instanceof natsErrors.TimeoutError || isNoResponders(err))) throw err;
        await pause(Math.min(backoffMs(QUERY_BACKOFF, attempt), Math.max(0, deadline - Date.now())));
      }
    }
  }

  /** Reads the entity's last committed snapshot from KV; needs no owner. */
  async getSnapshot(type: string, entityId: string): Promise<SnapshotRecord | undefined> {
    const kv = await this.bucket(this.shardOf(entityId));
    return readSnapshot(kv, entityKey(type, entityId));
  }

  /** Publishes what is batched, then stops. */
  async close(): Promise<void> {
    this.batcher.flushAll();
    this.batcher.close();
    this.replies.unsubscribe();
    this.publisher.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private bucket(shard: number): Promise<KV> {
    let kv = this.buckets.get(shard);
    if (kv === undefined) {
      kv = this.kvm.open(this.names.snapshotBucket(shard));
      this.buckets.set(shard, kv);
    }
    return kv;
  }

  private enqueue(item: InputItem, weight?: number): Promise<PubAck> {
    const shard = this.shardOf(item.entityId);
    return this.batcher.add(this.streams === undefined ? shard : streamOfShard(shard, this.shards, this.streams), item, weight);
  }

  /** Publishes a batch of a stream (`key` its index) or of a shard. */
  private publishBatch(key: number, items: InputItem[]): PublishedPart[] {
    // No `Nats-Msg-Id`: nothing ever publishes the same input message twice (no retry here; a caller
    // that retries after a failure sends a new message, which a per-message id would not match), so
    // the header only cost its bytes and the server's de-duplication state (an entry per message for
    // the stream's duplicate window). Exactly-once application is the consumer's (`appliedSeq`); a
    // resent reading is de-duplicated by the entity (device, t). See docs/gateway.md, "Ingest".
    const subject = this.streams === undefined ? this.names.input(key) : this.names.inputGroup(key);
    const parts: PublishedPart[] = [];
    for (const part of split(items, Date.now())) {
      parts.push({ count: part.count, ack: this.publisher.publish(subject, part.data) });
    }
    return parts;
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.replyInbox.length + 1));
    const waiter = this.waiting.get(id);
    if (waiter === undefined) return;
    this.waiting.delete(id);
    waiter(decodeReply(msg.data));
  }
}

/** Encodes items into messages under the size limit (halving a batch that is too large). */
function* split(items: InputItem[], acceptedAt: number): Generator<{ data: Uint8Array; count: number }> {
  const data = encodeBatch({ acceptedAt, items });
  if (data.length <= MAX_MESSAGE_BYTES || items.length === 1) {
    yield { data, count: items.length };
    return;
  }
  const half = items.length >> 1;
  yield* split(items.slice(0, half), acceptedAt);
  yield* split(items.slice(half), acceptedAt);
}

function isNoResponders(err: unknown): boolean {
  return err instanceof Error && (err.message.includes("no responders") || (err.cause as Error | undefined)?.message?.includes("503") === true);
}

