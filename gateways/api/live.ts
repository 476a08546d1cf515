// The live feed of a device over core NATS (no JetStream): alerts as the twin publishes them on
// `<prefix>.out.alert.<deviceId>.>`, and readings as gateways accept them — every gateway publishes each
// accepted request's readings on `<prefix>.live.<deviceId>` (after its PubAck), so an SSE client of any
// gateway sees the readings posted to every gateway. Nothing is stored: a client that is not connected
// misses what happens meanwhile (the twin and the alerts routes have the state).
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import type { Alert, Reading } from "../../actors/device-twin/domain/mod.ts";
import { decode, encode, msgpackHeaders, type Names } from "../../runtime/mod.ts";

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
}

/** Subject of the live readings of a device. */
export const liveSubject = (prefix: string, deviceId: string): string => `${prefix}.live.${deviceId}`;

export class NatsLiveFeed implements LiveFeed {
  private pending: LiveReadings[] = [];
  private scheduled = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: Names,
  ) {}

  /**
   * Queues the readings and publishes everything queued on the next turn of the event loop: the
   * requests answered in one turn then cost one socket write, not one each (socket writes are the
   * largest part of the gateway's CPU per request).
   */
  publishReadings(deviceId: string, readings: Reading[], acceptedAt: number): void {
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

  subscribe(deviceId: string, handlers: LiveHandlers): () => void {
    const subs: Subscription[] = [
      this.nc.subscribe(`${this.names.outputRoot}.alert.${deviceId}.>`, {
        callback: (err, msg) => {
          if (err !== null) return;
          try {
            handlers.alert(decode<Alert>(msg.data));
          } catch {
            // an undecodable message is skipped
          }
        },
      }),
      this.nc.subscribe(liveSubject(this.names.prefix, deviceId), {
        callback: (err, msg) => {
          if (err !== null) return;
          try {
            handlers.readings(decode<LiveReadings>(msg.data));
          } catch {
            // skipped
          }
        },
      }),
    ];
    return () => {
      for (const s of subs) s.unsubscribe();
    };
  }
}
