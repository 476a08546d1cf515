// The live feed of a device over core NATS (no JetStream): alerts as the twin publishes them on
// `<prefix>.out.alert.<deviceId>.>`, and readings as gateways accept them — a gateway publishes each
// accepted request's readings on `<prefix>.live.<deviceId>` (after its PubAck), so an SSE client of any
// gateway sees the readings posted to every gateway. Nothing is stored: a client that is not connected
// misses what happens meanwhile (the twin and the alerts routes have the state).
//
// Readings are published only for devices someone streams: a gateway announces the devices of its SSE
// streams on `<prefix>.live-interest.announce` when a device's first stream opens and every
// `announceMs` after, and every gateway keeps what it hears for three announcement periods. A gateway
// that starts asks for the current streams (`<prefix>.live-interest.sync`). Without this, every
// accepted request cost one more NATS message — encoding, a socket write and the server's parsing —
// for a feed that is almost never watched.
import { nuid, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { validateDeviceId, type Alert, type Reading } from "../../actors/device-twin/domain/mod.ts";
import { decode, encode, msgpackHeaders, type Names } from "../../runtime/mod.ts";
import { isEpochMs, outputProblem } from "./output-shape.ts";

/** Payload on `<prefix>.live.<deviceId>`. */
export interface LiveReadings {
  deviceId: string;
  /** Readings of one accepted request, sorted by t. */
  readings: Reading[];
  /** Wall clock (ms) at which the gateway got the PubAck. */
  acceptedAt: number;
}

/** Callbacks of one live subscription. */
export interface LiveHandlers {
  alert(alert: Alert): void;
  readings(batch: LiveReadings): void;
}

/** Publish/subscribe of the live feed; the HTTP routes and tests use this interface. */
export interface LiveFeed {
  publishReadings(deviceId: string, readings: Reading[], acceptedAt: number): void;
  /** Subscribes to a device's feed; returns the unsubscribe function. */
  subscribe(deviceId: string, handlers: LiveHandlers): () => void;
  /** Subscribes to the alerts of every device (the fleet's feed); returns the unsubscribe function. */
  subscribeAlerts(handler: (alert: Alert) => void): () => void;
  /** Resolves once the NATS server has the subscriptions and announcements made so far. */
  ready(): Promise<void>;
}

/** Options of {@link NatsLiveFeed}. */
export interface LiveFeedOptions {
  /**
   * How often a gateway repeats which devices it streams (ms). Default 5000. Other gateways publish a
   * device's readings until three periods pass without a repeat.
   */
  announceMs?: number;
  /**
   * The longest an announcement counts here, whatever `ttlMs` it carries (ms). Default 60000: an
   * announcement from any connection may otherwise keep devices published for ever.
   */
  maxInterestTtlMs?: number;
  /** Most devices of other gateways remembered at once; further ones wait for room. Default 500000. */
  maxRemoteDevices?: number;
}

/** Body of `<prefix>.live-interest.announce` (msgpack). */
interface Announcement {
  /** The announcing feed (its own announcements are ignored). */
  from: string;
  deviceIds: string[];
  /** How long the receivers keep the devices (ms). */
  ttlMs: number;
}

/** Most device ids in one announcement (64-character ids: ~66 KB). */
const ANNOUNCE_CHUNK = 1000;

/** Subject of the live readings of a device. */
export const liveSubject = (prefix: string, deviceId: string): string => `${prefix}.live.${deviceId}`;

export class NatsLiveFeed implements LiveFeed {
  private pending: LiveReadings[] = [];
  private scheduled = false;
  private readonly id = nuid.next();
  /** Devices streamed by this gateway, with their stream counts. */
  private readonly local = new Map<string, number>();
  /** Devices streamed by other gateways, with the wall-clock ms until which they count. */
  private readonly remote = new Map<string, number>();
  private readonly announceMs: number;
  private readonly maxInterestTtlMs: number;
  private readonly maxRemoteDevices: number;
  private readonly interest: Subscription;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
    options: LiveFeedOptions = {},
  ) {
    this.announceMs = options.announceMs ?? 5000;
    this.maxInterestTtlMs = options.maxInterestTtlMs ?? 60_000;
    this.maxRemoteDevices = options.maxRemoteDevices ?? 500_000;
    const root = this.interestRoot;
    this.interest = nc.subscribe(`${root}.*`, { callback: (err, msg) => (err === null ? this.onInterest(msg) : undefined) });
    this.timer = setInterval(() => {
      this.announce([...this.local.keys()]);
      const now = Date.now();
      for (const [id, until] of this.remote) if (until <= now) this.remote.delete(id);
    }, this.announceMs);
    this.timer.unref();
    // the running gateways answer with their streams, so readings accepted here reach them from the
    // start (after a reconnect, the next period's announcements refresh what was missed)
    this.sync();
  }

  /** True when some gateway streams the device. */
  watched(deviceId: string): boolean {
    if (this.local.has(deviceId)) return true;
    const until = this.remote.get(deviceId);
    return until !== undefined && until > Date.now();
  }

  async ready(): Promise<void> {
    await this.nc.flush();
  }

  /** Stops announcing and listening for announcements (the connection stays open). */
  close(): void {
    clearInterval(this.timer);
    if (!this.nc.isClosed()) this.interest.unsubscribe();
  }

  private get interestRoot(): string {
    return `${this.names.prefix}.live-interest`;
  }

  private onInterest(msg: Msg): void {
    if (msg.subject.endsWith(".sync")) {
      this.announce([...this.local.keys()]);
      return;
    }
    let a: Partial<Announcement> | null;
    try {
      a = decode<Partial<Announcement> | null>(msg.data);
    } catch {
      return; // an undecodable announcement is skipped
    }
    // anything on the subject is believed only as far as a gateway could have meant it: a bounded time,
    // a bounded number of real device ids (a garbage id would be a subject no twin publishes anyway)
    if (typeof a !== "object" || a === null || a.from === this.id || !Array.isArray(a.deviceIds) || a.deviceIds.length > ANNOUNCE_CHUNK) return;
    const ttlMs = a.ttlMs;
    if (typeof ttlMs !== "number" || !(ttlMs > 0)) return;
    const until = Date.now() + Math.min(ttlMs, this.maxInterestTtlMs);
    for (const id of a.deviceIds) {
      if (validateDeviceId(id) !== undefined) continue;
      if (this.remote.size >= this.maxRemoteDevices && !this.remote.has(id)) continue;
      this.remote.set(id, until);
    }
  }

  private sync(): void {
    try {
      this.nc.publish(`${this.interestRoot}.sync`);
    } catch {
      // closed: nothing to publish for
    }
  }

  private announce(deviceIds: string[]): void {
    if (deviceIds.length === 0 || this.nc.isClosed()) return;
    const headers = msgpackHeaders();
    for (let i = 0; i < deviceIds.length; i += ANNOUNCE_CHUNK) {
      const body: Announcement = { from: this.id, deviceIds: deviceIds.slice(i, i + ANNOUNCE_CHUNK), ttlMs: 3 * this.announceMs };
      try {
        this.nc.publish(`${this.interestRoot}.announce`, encode(body), { headers });
      } catch {
        // repeated on the next period
      }
    }
  }

  /**
   * Queues the readings and publishes everything queued on the next turn of the event loop: the
   * requests answered in one turn then cost one socket write, not one each (socket writes are the
   * largest part of the gateway's CPU per request).
   */
  publishReadings(deviceId: string, readings: Reading[], acceptedAt: number): void {
    if (!this.watched(deviceId)) return;
    this.pending.push({ deviceId, readings, acceptedAt });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (this.nc.isClosed()) return;
    const headers = msgpackHeaders();
    for (const r of batch) {
      try {
        this.nc.publish(liveSubject(this.names.prefix, r.deviceId), encode(r), { headers });
      } catch {
        // best effort: the readings are stored; only live viewers miss them
      }
    }
  }

  subscribeAlerts(handler: (alert: Alert) => void): () => void {
    const sub = this.alertSubscription(">", handler);
    return () => sub.unsubscribe();
  }

  /** Alerts on `<outputRoot>.alert.<tail>`; what is not an alert of the subject's device is skipped. */
  private alertSubscription(tail: string, handler: (alert: Alert) => void): Subscription {
    const root = `${this.names.outputRoot}.alert.`;
    return this.nc.subscribe(`${root}${tail}`, {
      callback: (err, msg) => {
        if (err !== null) return;
        try {
          const alert = decode<Alert>(msg.data);
          const deviceId = msg.subject.slice(root.length).split(".", 1)[0]!;
          if (outputProblem(alert, deviceId, ["at"]) === undefined) handler(alert);
        } catch {
          // an undecodable message is skipped
        }
      },
    });
  }

  subscribe(deviceId: string, handlers: LiveHandlers): () => void {
    const subs: Subscription[] = [
      this.alertSubscription(`${deviceId}.>`, (a) => handlers.alert(a)),
      this.nc.subscribe(liveSubject(this.names.prefix, deviceId), {
        callback: (err, msg) => {
          if (err !== null) return;
          try {
            const batch = decode<LiveReadings>(msg.data);
            if (isLiveReadings(batch, deviceId)) handlers.readings(batch);
          } catch {
            // skipped
          }
        },
      }),
    ];
    // after the subscriptions: a gateway that hears of the stream finds them in place
    const streams = this.local.get(deviceId) ?? 0;
    this.local.set(deviceId, streams + 1);
    if (streams === 0) this.announce([deviceId]);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const s of subs) s.unsubscribe();
      const left = (this.local.get(deviceId) ?? 1) - 1;
      if (left > 0) this.local.set(deviceId, left);
      else this.local.delete(deviceId);
    };
  }
}

/** What a gateway publishes on the live subject of `deviceId` (anything else there is skipped). */
function isLiveReadings(v: unknown, deviceId: string): v is LiveReadings {
  const b = v as Partial<LiveReadings> | null;
  return (
    typeof b === "object" && b !== null && b.deviceId === deviceId && isEpochMs(b.acceptedAt) && Array.isArray(b.readings) &&
    b.readings.every((r) => typeof r === "object" && r !== null && isEpochMs(r.t))
  );
}
