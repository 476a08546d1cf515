// How the JetStream API says "no such stream" or "no such consumer": a coded API error, or only the
// message on paths where nats.js wraps it; and how a compare-and-set write (a KV create or update) says
// it lost.
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/** JetStream's error code for "stream not found". */
export const STREAM_NOT_FOUND = 10059;

/** True when `err` says the stream does not exist (as opposed to a timeout or no JetStream leader). */
export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError ? err.code === STREAM_NOT_FOUND : /stream not found/i.test((err as Error)?.message ?? "");
}

/** JetStream's error code for "consumer not found". */
export const CONSUMER_NOT_FOUND = 10014;

/** True when `err` says the consumer does not exist (deleted meanwhile, as opposed to a timeout). */
export function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError ? err.code === CONSUMER_NOT_FOUND : /consumer not found/i.test((err as Error)?.message ?? "");
}

/** True for JetStream's "wrong last sequence": the CAS lost (a KV `create` finds the key taken, an `update` a newer revision). */
export function isCasConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}
