// Live queries of one shard's entities, and the replies the shard sends (to a query, and to a command's
// caller). A query is answered from the entity's current state — fetched from its snapshot when the
// entity is passivated — in the request/reply formats of protocol.ts.
import type { Msg, NatsConnection } from "@nats-io/nats-core";
import { msgpackHeaders } from "../codec.ts";
import { RuntimeErrors } from "../errors.ts";
import { decodeQuery, encodeReply, errorReply, type EntityQuery, type EntityReply } from "../protocol.ts";
import type { EntityTable } from "./entities.ts";

/** One header set for every reply (nats.js only reads it). */
const MSGPACK = msgpackHeaders();

/** What answering needs of the runner. */
export interface QueryEnv {
  readonly table: EntityTable;
  /** True once the entities are dropped (stopped, or aborted): nothing may be answered from them. */
  isReleased(): boolean;
  /** True once the lease is lost: the next owner answers the caller's retry. */
  isAborted(): boolean;
}

/** Answers a live query on the shard's rpc subject. */
export async function answerQuery(env: QueryEnv, msg: Msg): Promise<void> {
  if (env.isReleased()) return; // a drained query that came too late: the caller retries with the next owner
  let req: EntityQuery | undefined;
  try {
    req = decodeQuery(msg.data);
  } catch {
    return respond(msg, errorReply(RuntimeErrors.CODEC_DECODE.code, "undecodable request"));
  }
  const slot = req === undefined ? undefined : env.table.slotFor(req.type, req.id);
  if (req === undefined || slot === undefined) return respond(msg, errorReply(RuntimeErrors.ENTITY_UNKNOWN.code, RuntimeErrors.ENTITY_UNKNOWN.message));
  try {
    if (env.table.needsFetch(slot)) await env.table.fetchBytes(slot);
    if (env.isAborted()) return; // the lease was lost: the next owner answers the retry
    // released meanwhile after a planned stop: the slot in hand still holds the committed state
    if (!env.isReleased()) env.table.activate(slot);
    const state = env.table.stateOf(slot);
    respond(msg, { ok: true, value: slot.behavior.query(state, req.q), seq: slot.appliedSeq });
  } catch (err) {
    respond(msg, errorReply(RuntimeErrors.ENTITY_QUERY.code, (err as Error).message));
  }
}

function respond(msg: Msg, reply: EntityReply): void {
  msg.respond(encodeReply(reply), { headers: MSGPACK });
}

/** Sends a command's caller its reply (to the inbox the command named). */
export function sendReply(nc: NatsConnection, subject: string, reply: EntityReply): void {
  nc.publish(subject, encodeReply(reply), { headers: MSGPACK });
}
