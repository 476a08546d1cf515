// Pipelined JetStream publishing: plain publishes with a reply subject under one wildcard inbox, acks
// matched as they arrive. `js.publish` is a request per message (~25-30k/s at best here); this path
// reaches 2-3x that and lets a commit write thousands of snapshots without a round trip each.
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/nats-core";

/** A JetStream publish acknowledgement. */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** A publish that JetStream refused or did not confirm in time. */
export class PublishError extends Error {
  override readonly name = "PublishError";
  /** JetStream API error code (e.g. 10071 wrong last sequence), 0 for a timeout or a closed connection. */
  readonly jsErrCode: number;
  readonly timedOut: boolean;
  constructor(message: string, jsErrCode: number, timedOut: boolean) {
    super(message);
    this.jsErrCode = jsErrCode;
    this.timedOut = timedOut;
  }
}

/** JetStream's error code for a failed `Nats-Expected-Last-Sequence` (or subject sequence) check. */
export const JS_ERR_WRONG_LAST_SEQUENCE = 10071;
/** JetStream's error code for a failed `Nats-Expected-Last-Msg-Id` check. */
export const JS_ERR_WRONG_LAST_MSG_ID = 10070;

export interface PublishOptions {
  /** `Nats-Msg-Id`: JetStream drops a repeat within the stream's duplicate window. */
  msgId?: string;
  /** `Nats-Expected-Last-Sequence`: the stream refuses the message unless its last sequence is this. */
  expectLastSeq?: number;
  /** `Nats-Expected-Last-Subject-Sequence`: refused unless the subject's last message has this sequence (0: none). */
  expectLastSubjectSeq?: number;
  /** `Nats-Expected-Last-Msg-Id`: refused unless the stream's last message carried this `Nats-Msg-Id`. */
  expectLastMsgId?: string;
  /** Extra headers. */
  headers?: Readonly<Record<string, string>>;
}

export interface PipelinedPublisherOptions {
  /** Publishes awaiting their ack before `publish` waits for room. Default 4096. */
  maxInFlight?: number;
  /** How long an ack may take before the publish fails with a timeout (ms). Default 5000. */
  ackTimeoutMs?: number;
}

interface Pending {
  resolve(ack: PubAck): void;
  reject(err: Error): void;
  deadline: number;
}

const decoder = new TextDecoder();

export class PipelinedPublisher {
  private readonly nc: NatsConnection;
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<number, Pending>();
  private readonly maxInFlight: number;
  private readonly ackTimeoutMs: number;
  private readonly sweep: NodeJS.Timeout;
  private readonly sweepMs: number;
  private lastSweep: number;
  private readonly waiters = new Fifo<() => void>();
  /** Waiters woken for a free slot that have not published yet; new callers queue behind them. */
  private admitted = 0;
  private next = 0;
  private closed = false;

  constructor(nc: NatsConnection, options: PipelinedPublisherOptions = {}) {
    this.nc = nc;
    this.maxInFlight = options.maxInFlight ?? 4096;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.inbox = createInbox();
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => (err ? this.failAll(err) : this.onAck(msg)) });
    // One timer for all publishes instead of one per message.
    this.sweepMs = Math.min(250, this.ackTimeoutMs / 4);
    this.lastSweep = Date.now();
    this.sweep = setInterval(() => this.expire(), this.sweepMs);
    this.sweep.unref();
  }

  /**
   * Publishes and resolves with the PubAck; waits first while `maxInFlight` acks are outstanding.
   * Publishes go out in the order of the calls (a caller that has to wait keeps its place, and later
   * callers queue behind it), so a chain of conditional writes issued in order stays in order.
   */
  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PubAck> {
    if (!this.closed && (this.waiters.length > 0 || this.admitted > 0 || this.pending.size >= this.maxInFlight)) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.admitted--;
      const sent = this.publishNow(subject, data, options);
      this.admit();
      return sent;
    }
    return this.publishNow(subject, data, options);
  }

  /** Publishes without waiting for room (the caller bounds what it sends). */
  publishNow(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PubAck> {
    if (this.closed) return Promise.reject(new PublishError("publisher is closed", 0, false));
    const id = this.next++;
    const promise = new Promise<PubAck>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.ackTimeoutMs });
    });
    try {
      this.nc.publish(subject, data, { reply: `${this.inbox}.${id}`, headers: toHeaders(options) });
    } catch (err) {
      this.settle(id)?.reject(new PublishError(`publish failed: ${(err as Error).message}`, 0, false));
    }
    return promise;
  }

  /** Number of publishes awaiting their ack. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Fails every outstanding publish and stops listening for acks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweep);
    this.failAll(new PublishError("publisher closed before the ack arrived", 0, false));
    this.sub.unsubscribe();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private onAck(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const p = this.settle(id);
    if (p === undefined) return; // timed out already
    if (msg.data.length === 0) {
      // An empty reply with a 503 status means no stream captured the subject.
      p.reject(new PublishError(`no stream answered (${msg.headers?.code ?? "empty ack"})`, 0, false));
      return;
    }
    let body: { stream?: string; seq?: number; duplicate?: boolean; error?: { err_code?: number; description?: string } };
    try {
      body = JSON.parse(decoder.decode(msg.data));
    } catch {
      p.reject(new PublishError("unreadable ack", 0, false));
      return;
    }
    if (body.error !== undefined) {
      p.reject(new PublishError(body.error.description ?? "jetstream error", body.error.err_code ?? 0, false));
    } else {
      p.resolve({ stream: body.stream ?? "", seq: body.seq ?? 0, duplicate: body.duplicate === true });
    }
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    this.admit();
    return p;
  }

  /** Wakes waiters, first come first served, while there is room. */
  private admit(): void {
    while (this.waiters.length > 0 && (this.closed || this.pending.size + this.admitted < this.maxInFlight)) {
      this.admitted++;
      this.waiters.shift()!();
    }
  }

  private expire(): void {
    const now = Date.now();
    // A late sweep means this process did not run (a long synchronous stretch, a GC pause): acks that
    // arrived meanwhile are still unread in the socket, which is read after timers. That time is ours,
    // not the server's — move every deadline by it instead of failing publishes that were answered.
    const stalledMs = now - this.lastSweep - this.sweepMs;
    this.lastSweep = now;
    if (stalledMs > 0) for (const p of this.pending.values()) p.deadline += stalledMs;
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) this.settle(id)?.reject(new PublishError(`no ack within ${this.ackTimeoutMs} ms`, 0, true));
    }
  }

  private failAll(err: Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
    this.admit(); // once closed, every waiter goes on (and is refused by publishNow)
  }
}

/**
 * First-in first-out queue with O(1) `shift`. (Array.prototype.shift copies the array once it is large:
 * a commit of 100,000 snapshots queues ~90,000 waiters, and shifting them one by one was quadratic.)
 */
class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

function toHeaders(options: PublishOptions): MsgHdrs | undefined {
  if (
    options.msgId === undefined &&
    options.expectLastSeq === undefined &&
    options.expectLastSubjectSeq === undefined &&
    options.expectLastMsgId === undefined &&
    options.headers === undefined
  ) {
    return undefined;
  }
  const h = natsHeaders();
  if (options.msgId !== undefined) h.set("Nats-Msg-Id", options.msgId);
  if (options.expectLastSeq !== undefined) h.set("Nats-Expected-Last-Sequence", String(options.expectLastSeq));
  if (options.expectLastMsgId !== undefined) h.set("Nats-Expected-Last-Msg-Id", options.expectLastMsgId);
  if (options.expectLastSubjectSeq !== undefined) h.set("Nats-Expected-Last-Subject-Sequence", String(options.expectLastSubjectSeq));
  for (const [k, v] of Object.entries(options.headers ?? {})) h.set(k, v);
  return h;
}
