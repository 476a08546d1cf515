// The request/reply formats between a RuntimeClient and a shard's owner, in one place: a live query on
// `<prefix>.rpc.<shard>` and the reply to it, which is also what a command's caller gets on its inbox.
// Both are codec.ts MessagePack maps: `{ type, id, q }` and `{ ok, value, seq?, replayed? }` or
// `{ ok: false, error: { code, message } }`.
import { decode, encode } from "./codec.ts";

/**
 * The runtime's reply to a command's caller and to a live query. `replayed`: a keyed command that was
 * not applied again — `value` and `seq` are those of the command applied earlier under the same key.
 */
export type EntityReply = { ok: true; value: unknown; seq?: number; replayed?: true } | { ok: false; error: { code: string; message: string } };

/** A live query for one entity: its type, its id and the behaviour-defined query. */
export interface EntityQuery {
  type: string;
  id: string;
  q: unknown;
}

/** Encodes a live query. */
export function encodeQuery(type: string, entityId: string, query: unknown): Uint8Array {
  return encode({ type, id: entityId, q: query });
}

/**
 * Decodes a live query: undefined when it names no entity (type or id not a string).
 * @throws RuntimeError AIRTWIN_ERR_CODEC_DECODE when the bytes are not MessagePack.
 */
export function decodeQuery(bytes: Uint8Array): EntityQuery | undefined {
  const req = decode<{ type?: unknown; id?: unknown; q?: unknown } | null>(bytes);
  if (typeof req !== "object" || req === null || typeof req.type !== "string" || typeof req.id !== "string") return undefined;
  return { type: req.type, id: req.id, q: req.q };
}

/** Encodes a reply. */
export function encodeReply(reply: EntityReply): Uint8Array {
  return encode(reply);
}

/** Decodes a reply (trusted: only owners answer on these subjects). */
export function decodeReply(bytes: Uint8Array): EntityReply {
  return decode<EntityReply>(bytes);
}

/** A refusal with a coded error. */
export function errorReply(code: string, message: string): EntityReply {
  return { ok: false, error: { code, message } };
}
