// A node reads each input stream once, for all the shards of it that it runs (docs/design.md §7, "the
// message economy"): one consumer per node and stream instead of one per shard, so a message holding
// items of several shards is stored once and delivered once to each node, and a node of 64 shards keeps
// one pull waiting instead of 64. The reader decodes each message once and hands every attached shard its
// items (runtime/shard/shard-input.ts); each shard skips what it has seen (its checkpoint, or what the
// reader handed it before), so the reader can always go back: when a shard arrives with a checkpoint
// behind the reader, when deliveries were lost in transit, when its consumer is gone (a NATS server
// restarted) — it starts again from the lowest position of its shards, and nothing is applied twice.
// One exception: a shard arriving far behind a reader that is live (a move, a restart of one shard) gets
// a catch-up reader of its own, which hands it to the node's reader once it has reached it — going back
// would hold every other shard of the stream while the gap is read again (with snapshots deferred, a
// checkpoint is up to 1½ snapshot intervals of the stream behind: 45 minutes by default).
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { nuid, type NatsConnection } from "@nats-io/nats-core";
import { backoffMs, pause, type Backoff } from "./backoff.ts";
import type { DeadLetterSink } from "./dead-letter.ts";
import { encode } from "./codec.ts";
import { decodeBatch, type InputItem } from "./envelope.ts";
import type { LogFn } from "./log.ts";
import type { RuntimeMetrics } from "./metrics.ts";
import { addReaderConsumer } from "./reader-consumer.ts";
import { ShardInput } from "./shard/shard-input.ts";
import type { ShardRunnerOptions } from "./shard/options.ts";
import { shardOf } from "./shard-id.ts";
import { sliceUsed, yieldTurn } from "./turns.ts";

export interface StreamReaderDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The input stream read. */
  stream: string;
  /** Shards of the cluster (an item's shard is its entity's). */
  shards: number;
  /** The shards this stream holds: an item of another one was sent to the wrong stream (a client told the wrong stream count). */
  streamShards: ReadonlySet<number>;
  options: Pick<ShardRunnerOptions, "fetchBatch" | "pullExpiresMs" | "ackWaitMs" | "maxAckPending">;
  metrics: RuntimeMetrics;
  log: LogFn;
  deadLetters: DeadLetterSink;
}

/** How often the reader acknowledges what it has handed over (AckPolicy.All, flow control only: the input stream keeps its messages by limits). */
const ACK_EVERY_MS = 250;
/** Pauses between attempts to create the reader's consumer (no JetStream leader, NATS unreachable). */
const CREATE_BACKOFF: Backoff = { firstMs: 250, maxMs: 5000 };
/**
 * How far behind a live reader (messages) a shard must arrive to get a catch-up reader rather than have
 * the reader go back for it: a few thousand messages are read again in tens of ms.
 */
export const CATCH_UP_AFTER = 2000;
/**
 * Missed idle heartbeats after which the reader asks the server whether its consumer still exists: made
 * again when the server says it does not, or does not answer (it died with the consumer).
 */
const HEARTBEATS_MISSED_LIMIT = 2;
/**
 * Pull requests a reader's consumer lets wait (`max_waiting`; nats-server's default is 512). The reader
 * has one or two out at a time, but nats.js's consume() pulls afresh whenever two idle heartbeats go
 * missing (a saturated or paused nats-server) while the earlier pulls stay waiting, and each of those,
 * expiring with messages left, makes it pull again: the population never shrank (per shard, before the
 * readers: ~45 waiting after the registration of a million devices; docs/BENCHMARKS.md, "The node at a
 * million twins"). Past the bound the server refuses the new pull (409, which consume() waits out).
 */
export const MAX_WAITING_PULLS = 4;

export class StreamReader {
  private readonly inputs = new Map<number, ShardInput>();
  /** Last stream sequence handed over (or passed over) for every attached shard. */
  private position = 0;
  /** The reading loop runs (see {@link run}: an attach that finds it ending is read for all the same). */
  private running = false;
  private messages: ConsumerMessages | undefined;
  private consumerName: string | undefined;
  /** A shard arrived behind the reader: start again from the lowest position. */
  private rewind = false;
  private closed = false;
  /** The stream's messages not yet delivered to the reader, at its last delivery. */
  private pendingNow = 0;
  /** A consumer-info request on its way (see {@link backlog}). */
  private asking: Promise<number> | undefined;
  /** Messages delivered since the consumer was last made: a reader that has delivered and has little pending is live. */
  private deliveredSinceOpen = 0;
  /** The catch-up readers of shards that arrived far behind (the node's reader only). */
  private readonly catchUps = new Set<StreamReader>();

  /**
   * `mainReader`: this is a catch-up reader, holding one shard until it reaches the node's reader of
   * the stream (see {@link attach}).
   */
  constructor(
    private readonly deps: StreamReaderDeps,
    private readonly mainReader?: StreamReader,
  ) {
    if (mainReader === undefined) void this.renewOnReconnect();
  }

  /**
   * After a reconnect the consumer may be gone with the server that held it (one replica, in memory), and
   * nats.js then asks for its info again and again without a word (no heartbeat is watched meanwhile):
   * the reader makes a new one from where it stands.
   */
  private async renewOnReconnect(): Promise<void> {
    for await (const s of this.deps.nc.status()) {
      if (this.closed) return;
      if (s.type !== "reconnect") continue;
      for (const reader of [this, ...this.catchUps]) {
        if (reader.messages === undefined) continue;
        this.deps.log("info", "input stream reader reconnected, making its consumer again", { stream: this.deps.stream, from: reader.position });
        void reader.messages.close().catch(() => undefined);
      }
    }
  }

  /**
   * A shard starts reading after its checkpoint. A runner of the same shard still attached (superseded)
   * is let go. When the reader is past the checkpoint, it goes back.
   */
  attach(shard: number, checkpoint: number): ShardInput {
    this.inputs.get(shard)?.close();
    for (const c of this.catchUps) c.inputs.get(shard)?.close();
    const input = new ShardInput(shard, checkpoint, (i) => this.detach(i));
    const live = this.running && this.deliveredSinceOpen > 0 && this.pendingNow < CATCH_UP_AFTER;
    if (live && this.position - checkpoint > CATCH_UP_AFTER) {
      const catchUp = new StreamReader(this.deps, this);
      this.catchUps.add(catchUp);
      this.deps.log("info", "shard catching up with its own reader", { stream: this.deps.stream, shard, from: checkpoint, readerAt: this.position });
      catchUp.adopt(input);
      return input;
    }
    this.adopt(input);
    return input;
  }

  /** Reads for `input` from its position: starts reading, or goes back for it. */
  private adopt(input: ShardInput): void {
    input.onClose = (i) => this.detach(i);
    input.backlog = () => this.backlog();
    this.inputs.set(input.shard, input);
    if (!this.running) this.start();
    else if (input.position < this.position) {
      this.rewind = true;
      void this.messages?.close().catch(() => undefined);
    } else if (this.messages !== undefined) {
      input.behind(this.pendingNow); // read on from here: as far behind as the reader (the consumer's count when it was made, see open)
    }
  }

  /** A catch-up reader that has reached the node's reader hands its shard over (the node's reader skips what it was handed). */
  private handOver(main: StreamReader): void {
    for (const input of [...this.inputs.values()]) {
      if (input.position < main.position) continue;
      this.inputs.delete(input.shard);
      main.adopt(input);
      this.deps.log("info", "shard caught up, read with the others", { stream: this.deps.stream, shard: input.shard, at: input.position });
    }
    if (this.inputs.size === 0) {
      main.catchUps.delete(this);
      void this.messages?.close().catch(() => undefined);
    }
  }

  /** The stream's messages not yet delivered to the reader, as the server counts them (ops views; one request for all its shards). */
  backlog(): Promise<number> {
    const name = this.consumerName;
    if (name === undefined) return Promise.resolve(this.pendingNow);
    this.asking ??= this.deps.jsm.consumers
      .info(this.deps.stream, name)
      .then((info) => (this.pendingNow = info.num_pending))
      .finally(() => (this.asking = undefined));
    return this.asking;
  }

  /** Stops reading (the node closes); the shards' inputs end. */
  close(): void {
    this.closed = true;
    for (const c of this.catchUps) c.close();
    for (const input of [...this.inputs.values()]) input.close();
    void this.messages?.close().catch(() => undefined);
  }

  private detach(input: ShardInput): void {
    if (this.inputs.get(input.shard) !== input) return;
    this.inputs.delete(input.shard);
    if (this.inputs.size > 0) return;
    this.mainReader?.catchUps.delete(this);
    void this.messages?.close().catch(() => undefined);
  }

  private get reading(): boolean {
    return !this.closed && this.inputs.size > 0;
  }

  private start(): void {
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      await this.readWhileAttached();
    } finally {
      this.running = false;
    }
    // the loop ended a microtask before this one: a shard attached in between found the reader running
    // and would wait, unread, for the next attach
    if (this.reading) this.start();
  }

  private async readWhileAttached(): Promise<void> {
    let failures = 0;
    while (this.reading) {
      this.rewind = false;
      this.deliveredSinceOpen = 0;
      let from = Number.MAX_SAFE_INTEGER;
      for (const input of this.inputs.values()) from = Math.min(from, input.position);
      this.position = from;
      try {
        const messages = await this.open(from);
        failures = 0;
        // a shard arrived behind `from` (or the last one left) while the consumer was made: closed, the
        // reading below ends at once (a close completes only through the iterator: never await it unread)
        if (this.rewind || !this.reading) void messages.close().catch(() => undefined);
        await this.read(messages);
      } catch (err) {
        if (!this.reading) break;
        if (failures++ === 0) this.deps.log("warn", "input stream reader failed, starting again", { stream: this.deps.stream, from: this.position, error: (err as Error).message });
        await pause(backoffMs(CREATE_BACKOFF, failures));
      } finally {
        this.messages = undefined;
        this.dropConsumer();
      }
    }
  }

  /** A consumer of the stream from after `from` (reader-consumer.ts), acknowledged every ACK_EVERY_MS. */
  private async open(from: number): Promise<ConsumerMessages> {
    const { stream, options } = this.deps;
    const name = `node_${nuid.next()}`;
    this.consumerName = name;
    const consumer = await addReaderConsumer(this.deps, stream, {
      name,
      startSeq: from + 1,
      ackWaitMs: options.ackWaitMs,
      maxAckPending: options.maxAckPending,
      maxWaiting: MAX_WAITING_PULLS,
    });
    const batch = Math.max(64, options.fetchBatch * 16);
    const messages = await consumer.consume({
      max_messages: batch,
      threshold_messages: Math.floor(batch / 4),
      expires: options.pullExpiresMs,
      idle_heartbeat: Math.max(500, Math.round(options.pullExpiresMs / 5)),
    });
    this.messages = messages;
    // every shard read from here is at most this far behind (its wake-ups wait for it: ShardInput.wakeClock)
    this.pendingNow = (await consumer.info(true)).num_pending;
    for (const input of this.inputs.values()) input.behind(this.pendingNow);
    void this.watch(messages, name);
    return messages;
  }

  /**
   * Counts the consumer's status notices; a consumer gone (deleted, its server lost) ends the reading,
   * which starts again. Missed heartbeats alone are not proof: a reader held back by its shards (a node
   * replaying after a crash) stops acknowledging, the server stops sending at `max_ack_pending`, and the
   * silence looks the same — taking that for a lost consumer made a node replaying a million twins make
   * its consumer again every ~7 s for 17 minutes, each time reading its last batch again
   * (docs/BENCHMARKS.md, "A node killed in service"). So the server is asked first.
   */
  private async watch(messages: ConsumerMessages, name: string): Promise<void> {
    try {
      for await (const s of messages.status()) {
        this.deps.metrics.consumerStatus.inc({ type: s.type });
        let gone = s.type === "consumer_deleted" || s.type === "consumer_not_found" || s.type === "no_responders";
        if (s.type === "heartbeats_missed" && s.count >= HEARTBEATS_MISSED_LIMIT) gone = !(await this.consumerExists(name));
        if (gone && this.messages === messages) {
          this.deps.log("warn", "input stream reader's consumer gone, starting again", { stream: this.deps.stream, status: s.type, from: this.position });
          void messages.close().catch(() => undefined);
          return;
        }
      }
    } catch {
      // the iterator ends with the consumer
    }
  }

  /** Whether the server still has the reader's consumer; false when it says not, or does not answer in time. */
  private async consumerExists(name: string): Promise<boolean> {
    try {
      await this.deps.jsm.consumers.info(this.deps.stream, name);
      return true;
    } catch {
      return false;
    }
  }

  private async read(messages: ConsumerMessages): Promise<void> {
    let lastDelivery = 0;
    let toAck: JsMsg | undefined;
    const acks = setInterval(() => {
      toAck?.ack();
      toAck = undefined;
    }, ACK_EVERY_MS);
    try {
      for await (const m of messages) {
        if (this.rewind || !this.reading) break;
        // deliveries are numbered 1, 2, 3…: a jump means messages lost in transit (a slow consumer's
        // connection closed by the server): start again after the last one handed over
        if (m.info.deliverySequence !== lastDelivery + 1) {
          this.deps.metrics.deliveryGaps.inc();
          this.deps.log("warn", "input deliveries lost in transit; reading again", { stream: this.deps.stream, from: this.position, deliveries: `${lastDelivery + 1}..${m.info.deliverySequence - 1}` });
          break;
        }
        lastDelivery = m.info.deliverySequence;
        this.pendingNow = m.info.pending;
        this.deliveredSinceOpen++;
        if (m.info.streamSequence > this.position) this.dispatch(m);
        toAck = m;
        if (this.mainReader !== undefined) this.handOver(this.mainReader);
        for (const input of this.inputs.values()) {
          const room = input.whenRoom();
          if (room !== undefined) await room;
        }
        if (sliceUsed()) await yieldTurn();
      }
    } finally {
      clearInterval(acks);
      toAck?.ack();
      void messages.close().catch(() => undefined);
    }
  }

  /** Hands every attached shard its items of the message (or tells it the message had none). */
  private dispatch(m: JsMsg): void {
    const seq = m.info.streamSequence;
    const pending = m.info.pending;
    const storedAt = m.info.timestampNanos / 1e6;
    this.position = seq;
    let batch;
    try {
      batch = decodeBatch(m.data);
    } catch (err) {
      // the node's reader letters it; a catch-up reader reads what that one read before
      if (this.mainReader === undefined) this.deadLetter(m, err as Error);
      for (const input of this.inputs.values()) if (seq > input.position) input.pass(seq, pending, storedAt);
      return;
    }
    const { items, acceptedAt } = batch;
    const shards = this.deps.shards;
    // most messages hold one shard's items (a gateway's batch of one shard, a fleet of one reading a request)
    const first = items.length === 0 ? -1 : shardOf(items[0]!.entityId, shards);
    // each shard of the message checked against the stream's once, as it first appears
    let misrouted = first >= 0 && !this.deps.streamShards.has(first);
    let byShard: Map<number, { items: InputItem[]; indexes: number[] }> | undefined;
    for (let i = 1; i < items.length; i++) {
      const s = shardOf(items[i]!.entityId, shards);
      if (byShard === undefined) {
        if (s === first) continue;
        byShard = new Map([[first, { items: items.slice(0, i), indexes: Array.from({ length: i }, (_, k) => k) }]]);
      }
      let part = byShard.get(s);
      if (part === undefined) {
        byShard.set(s, (part = { items: [], indexes: [] }));
        if (!this.deps.streamShards.has(s)) misrouted = true;
      }
      part.items.push(items[i]!);
      part.indexes.push(i);
    }
    if (misrouted && this.mainReader === undefined) this.misrouted(m, items);
    for (const input of this.inputs.values()) {
      if (seq <= input.position) continue;
      if (byShard === undefined) {
        if (input.shard === first) input.push({ seq, acceptedAt, items, indexes: undefined, storedAt, pending });
        else input.pass(seq, pending, storedAt);
        continue;
      }
      const part = byShard.get(input.shard);
      if (part === undefined) input.pass(seq, pending, storedAt);
      else input.push({ seq, acceptedAt, items: part.items, indexes: part.indexes, storedAt, pending });
    }
  }

  /** An undecodable message: a dead letter, once for every shard of it (its subject's shard, or -1 for a message of a stream's shards). */
  private deadLetter(m: JsMsg, err: Error): void {
    const last = m.subject.slice(m.subject.lastIndexOf(".") + 1);
    const shard = /^\d+$/.test(last) ? Number(last) : -1;
    this.deps.deadLetters.record({ reason: "undecodable", source: "input", subject: m.subject, shard, seq: m.info.streamSequence, error: err.message, data: m.data });
  }

  /**
   * Items of shards another stream holds: no reader of theirs sees them, so they are dead letters, not
   * silently dropped (a client told a stream count the cluster was not created with; nats.js clients of
   * airtwin are checked against the cluster's meta).
   */
  private misrouted(m: JsMsg, items: InputItem[]): void {
    const shards = this.deps.shards;
    const seq = m.info.streamSequence;
    items.forEach((item, index) => {
      const shard = shardOf(item.entityId, shards);
      if (this.deps.streamShards.has(shard)) return;
      this.deps.log("error", "input for a shard of another stream, dead-lettered", { stream: this.deps.stream, subject: m.subject, seq, shard });
      this.deps.deadLetters.record({
        reason: "refused",
        source: "input",
        subject: m.subject,
        shard,
        seq,
        index,
        entity: { type: item.type, id: item.entityId, kind: item.kind },
        error: `shard ${shard} is not held by input stream ${this.deps.stream} (the client's stream count differs from the cluster's)`,
        data: () => encode(item.payload),
      });
    });
  }

  /** Deletes the consumer read (in the background; the server drops it after a minute of inactivity anyway). */
  private dropConsumer(): void {
    const name = this.consumerName;
    this.consumerName = undefined;
    if (name !== undefined) void this.deps.jsm.consumers.delete(this.deps.stream, name).catch(() => false);
  }
}
