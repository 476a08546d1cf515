// How the simulator delivers a device's readings: over HTTP like a device, or over NATS like a service.

import type { Reading } from "../actors/device-twin/domain/mod.ts";

/** The outcome of one send. */
export type SendOutcome =
  | { kind: "accepted"; accepted: number }
  /** Not stored, try again after `retryAfterMs` (429 rate limited, 503 NATS down, a lost connection). */
  | { kind: "retry"; status: number; code: string; retryAfterMs?: number; message: string }
  /** Refused for good (400, 401, 403, 404, 413, …): the readings are dropped and counted as rejected. */
  | { kind: "rejected"; status: number; code: string; message: string };

export interface Transport {
  readonly name: "http" | "nats";
  send(deviceId: string, readings: readonly Reading[]): Promise<SendOutcome>;
  close(): Promise<void>;
}
