// The input log's message format: one message carries many items, for entities of one shard or of any
// shards of one input stream (the node's reader hands each shard its own). Batching many items per
// message is what makes ingest cheap (one JetStream store per batch).
import { decode, encode } from "./codec.ts";

/** One input for one entity. */
export interface InputItem {
  /** Entity type name. */
  type: string;
  entityId: string;
  /** Behaviour-defined kind, e.g. "readings" or "command". */
  kind: string;
  payload: unknown;
  /** Inbox to which the owner replies with the apply result (commands). */
  replyTo?: string;
  /**
   * The caller's idempotency key (commands): an entity that already applied a command under this key
   * answers with that command's reply instead of applying this one (command-keys.ts).
   */
  idempotencyKey?: string;
}

/** A decoded input message. */
export interface InputBatch {
  /** Wall-clock ms at which the client accepted the items (the entities' `acceptedAt`). */
  acceptedAt: number;
  items: InputItem[];
}

const VERSION = 1;

/**
 * Encodes a batch as msgpack `[v, acceptedAt, [[type, id, kind, payload, replyTo?, idempotencyKey?], …]]`
 * (`replyTo` null when only a key is given). The trailing fields are left out when absent, so items
 * without them — readings — are as they always were, and an older runner reads newer items (ignoring a key).
 */
export function encodeBatch(batch: InputBatch): Uint8Array {
  const items = batch.items.map((i) =>
    i.idempotencyKey !== undefined
      ? [i.type, i.entityId, i.kind, i.payload, i.replyTo ?? null, i.idempotencyKey]
      : i.replyTo === undefined
        ? [i.type, i.entityId, i.kind, i.payload]
        : [i.type, i.entityId, i.kind, i.payload, i.replyTo],
  );
  return encode([VERSION, batch.acceptedAt, items]);
}

/**
 * Decodes a batch; throws on a malformed message (the caller logs and skips it): RuntimeError
 * AIRTWIN_ERR_CODEC_DECODE when it is not MessagePack, a TypeError when it is not a batch.
 */
export function decodeBatch(bytes: Uint8Array): InputBatch {
  const raw: unknown = decode(bytes);
  if (!Array.isArray(raw) || raw[0] !== VERSION || typeof raw[1] !== "number" || !Array.isArray(raw[2])) {
    throw new TypeError("malformed input batch");
  }
  const items: InputItem[] = [];
  for (const it of raw[2] as unknown[]) {
    if (!Array.isArray(it) || typeof it[0] !== "string" || typeof it[1] !== "string" || typeof it[2] !== "string") {
      throw new TypeError("malformed input item");
    }
    const item: InputItem = { type: it[0], entityId: it[1], kind: it[2], payload: it[3] };
    // readings have four fields: one length check, and their items keep one shape
    if (it.length > 4) {
      if (typeof it[4] === "string") item.replyTo = it[4];
      if (typeof it[5] === "string") item.idempotencyKey = it[5];
    }
    items.push(item);
  }
  return { acceptedAt: raw[1], items };
}
