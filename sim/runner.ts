// Drives a source of uploads against a transport: takes the uploads whose event time has come, keeps
// each device's readings in order, and sends them at most once per `minRequestGapMs` per device — what
// is due meanwhile joins the next request (up to 1000 readings), which is how a backfill honours the
// gateway's rate limit. A 429 waits for its Retry-After, a 503 or a lost connection backs off and sends
// again; any other refusal is counted as rejected. Stops at the end of the source, after `durationMs`,
// or on `signal`, after the requests in flight have answered.
import { MAX_READINGS_PER_REQUEST, type Reading } from "../actors/device-twin/domain/mod.ts";
import type { SimClock } from "./clock.ts";
import { MinHeap } from "./model/heap.ts";
import type { UploadSource } from "./model/fleet.ts";
import type { Transport } from "./transport.ts";

export interface SimStats {
  /** Readings handed to the transport (each once, however often it was retried). */
  sent: number;
  accepted: number;
  rejected: number;
  /** Readings sent again after a 429, a 503 or a lost connection. */
  retried: number;
  requests: number;
  /** Readings sent a second time on purpose (a device resending an upload whose answer it lost). */
  resent: number;
  /** Readings uploaded late: after a network outage, or a CSV replayed as a backfill. */
  backfilled: number;
  /** Rejected readings by error code. */
  rejectedByCode: Record<string, number>;
  /** Retries by error code. */
  retriedByCode: Record<string, number>;
  lastRejection: string | undefined;
  /** Readings taken from the source but not sent yet. */
  pending: number;
  inFlight: number;
  /** Current event time (ms). */
  eventTime: number;
  elapsedMs: number;
}

export interface RunnerOptions {
  source: UploadSource & { setIntervalMs?(ms: number): void };
  transport: Transport;
  clock: SimClock;
  /** Least wall time between two requests of one device (ms). Default 600 (100 a minute; the gateway allows 120). */
  minRequestGapMs?: number;
  /** Most requests awaiting an answer. Default 64. */
  maxInFlight?: number;
  /** Most readings in one request. Default 1000 (the gateway's limit). */
  maxReadingsPerRequest?: number;
  /** Stop after this much wall time (ms). */
  durationMs?: number;
  signal?: AbortSignal;
  /** With a catch-up clock: the sampling interval once event time follows the wall clock (ms). */
  liveIntervalMs?: number;
  /** Called about every `checkpointEveryMs` and at the end with the event time before which everything was answered. */
  onCheckpoint?: (eventMs: number) => void;
  checkpointEveryMs?: number;
}

interface DeviceQueue {
  deviceId: string;
  readings: Reading[];
  /** Leading readings already counted in `sent` (they come back after a retry). */
  counted: number;
  inFlight: Reading[] | undefined;
  readyAt: number;
  queued: boolean;
  failures: number;
}

/** Most readings held between the source and the transport before the source is paused (at least what four rounds of full requests take). */
const MAX_PENDING = 200_000;
const MIN_PENDING = 5_000;
/** Most uploads taken from the source in one turn, so sending never waits for a long backlog to be generated. */
const MAX_PULL_PER_TURN = 2000;

export class SimRunner {
  readonly stats: SimStats = {
    sent: 0, accepted: 0, rejected: 0, retried: 0, requests: 0, resent: 0, backfilled: 0,
    rejectedByCode: {}, retriedByCode: {}, lastRejection: undefined, pending: 0, inFlight: 0, eventTime: 0, elapsedMs: 0,
  };
  private readonly queues = new Map<string, DeviceQueue>();
  private readonly ready = new MinHeap<DeviceQueue>();
  private wake: (() => void) | undefined;
  private readonly minGap: number;
  private readonly maxInFlight: number;
  private readonly maxReadings: number;
  private readonly maxPending: number;

  constructor(private readonly o: RunnerOptions) {
    this.minGap = o.minRequestGapMs ?? 600;
    this.maxInFlight = o.maxInFlight ?? 64;
    this.maxReadings = Math.min(MAX_READINGS_PER_REQUEST, o.maxReadingsPerRequest ?? MAX_READINGS_PER_REQUEST);
    this.stats.eventTime = o.clock.eventNow();
    this.maxPending = Math.min(MAX_PENDING, Math.max(MIN_PENDING, 4 * this.maxInFlight * this.maxReadings));
    for (const id of o.source.deviceIds) this.queues.set(id, { deviceId: id, readings: [], counted: 0, inFlight: undefined, readyAt: 0, queued: false, failures: 0 });
  }

  async run(): Promise<SimStats> {
    const { source, clock } = this.o;
    let switchedToLive = false;
    let lastCheckpoint = Date.now();
    const checkpointEvery = this.o.checkpointEveryMs ?? 5000;
    const stopped = () => this.o.signal?.aborted === true || (this.o.durationMs !== undefined && clock.elapsedMs() >= this.o.durationMs);
    while (!stopped()) {
      const event = clock.eventNow();
      this.stats.eventTime = event;
      if (clock.live && !switchedToLive && this.o.liveIntervalMs !== undefined) {
        source.setIntervalMs?.(this.o.liveIntervalMs);
        switchedToLive = true;
      }
      let pulled = 0;
      for (let due = source.peekSendAt(); due !== undefined && due <= event && this.stats.pending < this.maxPending && pulled < MAX_PULL_PER_TURN; due = source.peekSendAt(), pulled++) {
        const u = source.next()!;
        if (u.kind === "resend") this.stats.resent += u.readings.length;
        if (u.kind === "backfill") this.stats.backfilled += u.readings.length;
        this.enqueue(u.deviceId, u.readings);
      }
      const now = Date.now();
      while (this.stats.inFlight < this.maxInFlight && (this.ready.peekKey() ?? Infinity) <= now) this.dispatch(this.ready.pop()!);
      if (this.o.onCheckpoint && now - lastCheckpoint >= checkpointEvery) {
        lastCheckpoint = now;
        this.o.onCheckpoint(this.answeredBefore(event));
      }
      if (source.peekSendAt() === undefined && this.stats.pending === 0 && this.stats.inFlight === 0) break;
      const nextDue = source.peekSendAt();
      if (pulled === MAX_PULL_PER_TURN) {
        await new Promise((resolve) => setImmediate(resolve)); // more is due: let answers in, then go on
        continue;
      }
      const wakeAt = Math.min(
        now + 100,
        nextDue === undefined || this.stats.pending >= this.maxPending ? Infinity : clock.wallAt(nextDue),
        this.stats.inFlight < this.maxInFlight ? (this.ready.peekKey() ?? Infinity) : Infinity,
      );
      await this.sleep(Math.max(0, wakeAt - Date.now()));
    }
    while (this.stats.inFlight > 0) await this.sleep(50);
    this.stats.elapsedMs = clock.elapsedMs();
    this.stats.eventTime = clock.eventNow();
    this.o.onCheckpoint?.(this.answeredBefore(this.stats.eventTime));
    return this.stats;
  }

  /** Event time before which every reading taken from the source was answered. */
  private answeredBefore(event: number): number {
    let min = event;
    for (const q of this.queues.values()) {
      const first = q.inFlight?.[0]?.t ?? q.readings[0]?.t;
      if (first !== undefined && first < min) min = first;
    }
    return min;
  }

  private enqueue(deviceId: string, readings: readonly Reading[]): void {
    let q = this.queues.get(deviceId);
    if (q === undefined) {
      q = { deviceId, readings: [], counted: 0, inFlight: undefined, readyAt: 0, queued: false, failures: 0 };
      this.queues.set(deviceId, q);
    }
    q.readings.push(...readings);
    this.stats.pending += readings.length;
    this.schedule(q);
  }

  private schedule(q: DeviceQueue): void {
    if (q.queued || q.inFlight !== undefined || q.readings.length === 0) return;
    q.queued = true;
    this.ready.push(q.readyAt, q);
  }

  private dispatch(q: DeviceQueue): void {
    q.queued = false;
    const batch = q.readings.splice(0, this.maxReadings);
    const fresh = batch.length - Math.min(q.counted, batch.length);
    q.counted = Math.max(0, q.counted - batch.length);
    this.stats.sent += fresh;
    this.stats.pending -= batch.length;
    this.stats.inFlight++;
    this.stats.requests++;
    q.inFlight = batch;
    const sentAt = Date.now();
    void this.o.transport.send(q.deviceId, batch).then((outcome) => {
      this.stats.inFlight--;
      q.inFlight = undefined;
      const now = Date.now();
      if (outcome.kind === "accepted") {
        this.stats.accepted += batch.length;
        q.failures = 0;
        q.readyAt = sentAt + this.minGap;
      } else if (outcome.kind === "retry") {
        this.stats.retried += batch.length;
        this.stats.retriedByCode[outcome.code] = (this.stats.retriedByCode[outcome.code] ?? 0) + batch.length;
        q.readings.unshift(...batch);
        q.counted += batch.length;
        this.stats.pending += batch.length;
        q.failures++;
        q.readyAt = now + (outcome.retryAfterMs ?? Math.min(5000, 100 * 2 ** Math.min(q.failures, 6)));
      } else {
        this.stats.rejected += batch.length;
        this.stats.rejectedByCode[outcome.code] = (this.stats.rejectedByCode[outcome.code] ?? 0) + batch.length;
        this.stats.lastRejection = `${q.deviceId}: ${outcome.status} ${outcome.code} ${outcome.message}`;
        q.readyAt = sentAt + this.minGap;
      }
      this.schedule(q);
      this.wake?.();
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.o.signal;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.wake = done;
    });
  }
}
