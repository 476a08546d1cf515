// MessagePack codec of every NATS payload (docs/design.md §5), the one Packr every runtime format (envelope,
// snapshot records, protocol, hand-off) encodes and decodes with: plain maps, no record extension,
// so other languages can read it; header Content-Type: application/msgpack.

import { Packr } from "msgpackr";
import { headers, type MsgHdrs } from "@nats-io/nats-core";
import { RuntimeError } from "./errors.ts";

/** The content type of every airtwin NATS payload. */
export const MSGPACK_CONTENT_TYPE = "application/msgpack";

// Plain maps decode to plain objects; int64 values (from non-JS producers) decode to numbers, not
// BigInt, so decoded values stay JSON-serialisable (exact up to 2^53). `undefined` round-trips via
// msgpackr's extension; other languages should not send it. A map key "__proto__" decodes as
// "__proto_" (msgpackr's prototype-pollution guard), so never key a map by an untrusted id: device ids
// may be "__proto__". Use arrays of { id, … } instead.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

/** Encodes a value as MessagePack. */
export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Decodes exactly one MessagePack value. The type parameter is a cast: validate untrusted input.
 * A map key "__proto__" comes back as "__proto_" (see the note above the Packr).
 * @throws RuntimeError AIRTWIN_ERR_CODEC_DECODE on empty, truncated or trailing bytes.
 */
export function decode<T = unknown>(bytes: Uint8Array): T {
  if (bytes.length === 0) throw new RuntimeError("CODEC_DECODE", "cannot decode an empty payload", { details: { bytes: 0 } });
  try {
    return packr.unpack(bytes) as T;
  } catch (err) {
    throw new RuntimeError("CODEC_DECODE", `payload is not valid MessagePack: ${(err as Error).message}`, {
      cause: err,
      details: { bytes: bytes.length },
    });
  }
}

/** NATS headers with `Content-Type: application/msgpack`, to send with an {@link encode}d payload. */
export function msgpackHeaders(): MsgHdrs {
  const h = headers();
  h.set("Content-Type", MSGPACK_CONTENT_TYPE);
  return h;
}
