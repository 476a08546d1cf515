// Query hand-off between two owners of a shard, so a planned move leaves no gap in which nobody answers
// live queries. The old owner, after its final commit, keeps answering from that committed state
// (read-only: it applies and writes nothing more). The new owner loads the same state, subscribes to the
// shard's queries, and announces itself here before it applies anything; every older runner of the shard
// that hears it stops answering at once (a running one is a zombie and aborts). While both answer they
// hold the same state, and once the new owner applies, the old one no longer answers: no query is ever
// answered from a state older than one a caller could already have seen.
//
// Why a request and not a plain publish: the reply (or "no responders") proves the older runners have
// processed the notice. If one does not reply in time it is alive but stalled; the notice is still ahead
// of any later query in its connection (one server orders them), so it stops before answering those.
import { errors as natsErrors, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { decode, encode } from "./codec.ts";

/** Who announces: the lease epoch, and the runner instance (a restart keeps the epoch). */
export interface HandoffIdentity {
  readonly epoch: number;
  readonly instance: string;
}

/** How the announcement ended. */
export type HandoffOutcome = "acknowledged" | "no-older-owner" | "timeout";

let instances = 0;
const processTag = `${process.pid.toString(36)}.${Date.now().toString(36)}`;

/** A process-unique id for one runner instance. */
export function newInstanceId(): string {
  return `${processTag}.${(instances++).toString(36)}`;
}

/**
 * Listens for announcements of newer runners of the shard. `onNewer` runs synchronously and must stop
 * answering queries before it returns (the reply tells the announcer it may apply).
 */
export function listenForNewerOwner(nc: NatsConnection, subject: string, self: HandoffIdentity, onNewer: (epoch: number) => void): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err !== null) return;
      const other = decodeAnnouncement(msg.data);
      if (other === undefined || !isNewer(other, self)) return;
      onNewer(other.epoch);
      if (msg.reply) msg.respond(encode({ epoch: self.epoch }));
    },
  });
}

/** Announces that this runner serves the shard now; resolves when older runners stopped answering (or none listens, or after `timeoutMs`). */
export async function announceServing(nc: NatsConnection, subject: string, self: HandoffIdentity, timeoutMs: number): Promise<HandoffOutcome> {
  try {
    await nc.request(subject, encodeAnnouncement(self), { timeout: timeoutMs });
    return "acknowledged";
  } catch (err) {
    if (err instanceof natsErrors.NoRespondersError || (err instanceof natsErrors.RequestError && err.isNoResponders())) return "no-older-owner";
    if (err instanceof natsErrors.TimeoutError) return "timeout";
    throw err;
  }
}

function isNewer(other: HandoffIdentity, self: HandoffIdentity): boolean {
  return other.epoch > self.epoch || (other.epoch === self.epoch && other.instance !== self.instance);
}

/** The announcement's payload: `{ epoch, instance }`. */
export function encodeAnnouncement(self: HandoffIdentity): Uint8Array {
  return encode({ epoch: self.epoch, instance: self.instance });
}

/** Decodes an announcement; undefined when it is not one. */
export function decodeAnnouncement(data: Uint8Array): HandoffIdentity | undefined {
  try {
    const v = decode<{ epoch?: unknown; instance?: unknown } | null>(data);
    if (typeof v !== "object" || v === null) return undefined;
    return typeof v.epoch === "number" && typeof v.instance === "string" ? { epoch: v.epoch, instance: v.instance } : undefined;
  } catch {
    return undefined;
  }
}
