// Applying one input message to the entities of a shard. Each item is first decided — skip (already in
// the entity's snapshot: a redelivery), replay (a keyed command applied before: answer with its reply),
// refuse (with a coded error), or apply — by `decide`, a pure function of the item and the entity table;
// `applyItem` then changes the entity, and `applyBatch` runs a message's items in order with their
// effects (outputs, replies, wake-ups, metrics) handed to the runner.
import { commandFingerprint, sameFingerprint } from "../command-fingerprint.ts";
import { idempotencyKeyProblem, type AppliedCommand } from "../command-keys.ts";
import { decode, encode } from "../codec.ts";
import type { DeadLetterReason, DeadLetterSink } from "../dead-letter.ts";
import { ERASE_KIND, type Applied, type ApplyContext, type EntityOutput } from "../entity.ts";
import type { InputBatch, InputItem } from "../envelope.ts";
import { RuntimeErrors } from "../errors.ts";
import type { LogFn } from "../log.ts";
import type { RuntimeMetrics } from "../metrics.ts";
import { errorReply, type EntityReply } from "../protocol.ts";
import type { EntityTable, Slot } from "./entities.ts";
import type { WakeUps } from "./timers.ts";

/** What to do with one input item. */
export type Decision =
  | { readonly do: "apply"; readonly fingerprint: Uint8Array | undefined }
  /** Already applied to the entity (its `appliedSeq` is past this message): a redelivery. */
  | { readonly do: "skip" }
  /** A keyed command the entity applied already: answered with that command's reply, not applied. */
  | { readonly do: "replay"; readonly earlier: AppliedCommand }
  /** Not applied; the caller gets this error. `cause`: an unexpected failure worth logging. */
  | { readonly do: "refuse"; readonly code: string; readonly message: string; readonly cause?: Error };

// shared: readings, nearly every item, allocate no decision
const APPLY: Decision = { do: "apply", fingerprint: undefined };
const SKIP: Decision = { do: "skip" };

/**
 * Decides an item of the message with stream sequence `seq` for its entity's `slot` (undefined: an
 * entity type not served here). Changes nothing.
 */
export function decide(table: EntityTable, slot: Slot | undefined, item: InputItem, seq: number): Decision {
  if (slot === undefined) return { do: "refuse", code: RuntimeErrors.ENTITY_UNKNOWN.code, message: `unknown entity type "${item.type}"` };
  // several items of one message for one entity all apply (`applyingSeq`)
  if (slot.appliedSeq > seq || (slot.appliedSeq === seq && slot.applyingSeq !== seq)) return SKIP;
  const key = item.idempotencyKey;
  return key === undefined ? APPLY : decideKeyed(table, slot, item, key);
}

/**
 * A keyed command. Refused: its key is invalid (a client that did not validate it), or the entity
 * applied a different command under it (another fingerprint; entries recorded before fingerprints are
 * not compared). Replayed: the entity applied this command already. Otherwise applied, and its
 * fingerprint recorded with the key.
 */
function decideKeyed(table: EntityTable, slot: Slot, item: InputItem, key: string): Decision {
  const problem = idempotencyKeyProblem(key);
  if (problem !== undefined) return { do: "refuse", code: RuntimeErrors.IDEMPOTENCY_KEY_INVALID.code, message: `idempotency key ${problem}` };
  let fingerprint: Uint8Array;
  try {
    fingerprint = commandFingerprint(item.kind, item.payload);
  } catch (err) {
    // only a payload nested deeper than the stack gets here; it would not apply either
    return { do: "refuse", code: RuntimeErrors.ENTITY_APPLY.code, message: RuntimeErrors.ENTITY_APPLY.message, cause: err as Error };
  }
  const earlier = table.commandKeys.get(slot)?.find(key);
  if (earlier === undefined) return { do: "apply", fingerprint };
  if (earlier.fingerprint !== undefined && !sameFingerprint(earlier.fingerprint, fingerprint)) {
    return { do: "refuse", code: RuntimeErrors.IDEMPOTENCY_KEY_REUSED.code, message: RuntimeErrors.IDEMPOTENCY_KEY_REUSED.message };
  }
  return { do: "replay", earlier };
}

/** The reply a replayed command's caller gets: the earlier command's value and seq. */
export function replayReply(earlier: AppliedCommand): EntityReply {
  return { ok: true, value: decode(earlier.reply), seq: earlier.seq, replayed: true };
}

/**
 * Applies an item decided "apply" to its resident entity: its new state, `appliedSeq` and dirty mark.
 * Throws what the behaviour throws; the entity is unchanged then. (A keyed command's key is remembered
 * by {@link rememberCommand} once its effects are out.)
 */
export function applyItem(table: EntityTable, slot: Slot, item: InputItem, seq: number, ctx: ApplyContext): Applied<unknown> {
  const applied = item.kind === ERASE_KIND ? erased(table, slot, ctx) : slot.behavior.apply(slot.state, item.kind, item.payload, ctx);
  slot.state = applied.state;
  slot.appliedSeq = seq;
  slot.applyingSeq = seq;
  table.markDirty(slot, seq);
  return applied;
}

/** Remembers a keyed command the entity applied, with its reply (packed now: later changes to it do not count). */
export function rememberCommand(table: EntityTable, slot: Slot, key: string, seq: number, reply: unknown, fingerprint: Uint8Array | undefined): void {
  table.remember(slot, { key, seq, reply: encode(reply), fingerprint });
}

/** What erasing an entity applies: a fresh state in place of the old one (see ERASE_KIND), no keyed commands remembered, the behaviour's `erased` outputs. */
function erased(table: EntityTable, slot: Slot, ctx: ApplyContext): Applied<unknown> {
  table.forgetCommands(slot);
  return { state: slot.behavior.create(slot.entityId), outputs: slot.behavior.erased?.(slot.entityId, ctx) ?? [], reply: { erased: true } };
}

/**
 * True when erasing the entity changes nothing kept anywhere: it has no state in memory or read, no
 * snapshot (`persisted` false: the scan at acquisition saw none and this owner wrote none), nothing
 * unsaved, no keyed commands, no wake-up — a device registered for the first time, nearly always. An
 * erase with an idempotency key is not blank: its key is remembered in a snapshot.
 */
function isBlank(table: EntityTable, slot: Slot, item: InputItem): boolean {
  return (
    slot.state === undefined &&
    !slot.hasBytes &&
    !slot.persisted &&
    !slot.dirty &&
    !slot.mustSave &&
    slot.wakeAt === undefined &&
    item.idempotencyKey === undefined &&
    !table.commandKeys.has(slot)
  );
}

/**
 * Erases a blank entity (see {@link isBlank}) and leaves it blank: not activated, no state created, not
 * marked dirty, so no snapshot — its state is the `create(entityId)` the first later input or query makes,
 * which is what erasing gives. Only `appliedSeq` moves, so a redelivery of this message is skipped.
 * Skipping the dirty mark is safe for the checkpoint: it may now pass this message, and an owner
 * restarting from there finds no snapshot of the entity — the same blank entity. One restarting before
 * it applies the erase again, publishing the same outputs under the same ids. Creating the state here
 * cost a twin's memory (3.4 KB for a device) and a snapshot of nothing for every device registered.
 * Throws what the behaviour's `erased` throws; the entity is unchanged then.
 */
function eraseBlank(slot: Slot, seq: number, ctx: ApplyContext): Applied<unknown> {
  const outputs = slot.behavior.erased?.(slot.entityId, ctx) ?? [];
  slot.appliedSeq = seq;
  slot.applyingSeq = seq;
  return { state: undefined, outputs, reply: { erased: true } };
}

/** Where applying a message hands its effects. */
export interface ApplyEnv {
  readonly table: EntityTable;
  readonly wakeUps: WakeUps;
  readonly metrics: RuntimeMetrics;
  readonly log: LogFn;
  readonly shard: number;
  /** The cluster's subject prefix (for the behaviours' output subjects). */
  readonly prefix: string;
  /** Publishes an entity's outputs (confirmed at the next commit). */
  publish(outputs: readonly EntityOutput[]): void;
  /** Answers a command's caller. */
  reply(subject: string, reply: EntityReply): void;
  /** Where items that cannot be applied go. */
  readonly deadLetters: DeadLetterSink;
}

/**
 * Applies the items of the message with stream sequence `seq`, in order; `slots[i]` is item i's entity
 * (resolved, its snapshot fetched); `indexes[i]` is item i's place in the whole message when the message
 * held other shards' items too (its place in the log: output ids, dead letters). Nothing here waits.
 */
export function applyBatch(env: ApplyEnv, batch: InputBatch, slots: ReadonlyArray<Slot | undefined>, seq: number, now: number, indexes?: readonly number[]): void {
  const { table, metrics } = env;
  // one context per message, its index moved along the items (no allocation per reading)
  const ctx: { -readonly [K in keyof ApplyContext]-?: ApplyContext[K] } = { prefix: env.prefix, acceptedAt: batch.acceptedAt, seq, index: 0 };
  // labelled counters are counted per run of items of one type and kind (a label lookup per item costs)
  const counted = { type: "", kind: "", items: 0, units: 0 };
  for (let i = 0; i < batch.items.length; i++) {
    const item = batch.items[i]!;
    const slot = slots[i];
    const decision = decide(table, slot, item, seq);
    const index = indexes === undefined ? i : indexes[i]!;
    if (decision.do !== "apply") {
      settle(env, decision, item, index, seq);
      continue;
    }
    // an "apply" decision has a slot
    const entity = slot!;
    const blank = item.kind === ERASE_KIND && isBlank(table, entity, item);
    if (!blank) table.activate(entity, now);
    ctx.index = index;
    let applied;
    try {
      applied = blank ? eraseBlank(entity, seq, ctx) : applyItem(table, entity, item, seq, ctx);
    } catch (err) {
      deadLetter(env, "refused", item, index, seq, (err as Error).message);
      if (item.replyTo !== undefined) env.reply(item.replyTo, errorReply(RuntimeErrors.ENTITY_APPLY.code, RuntimeErrors.ENTITY_APPLY.message));
      continue;
    }
    env.publish(applied.outputs);
    if (!blank) env.wakeUps.schedule(entity, entity.behavior.nextWakeAt(entity.state));
    if (counted.type !== entity.behavior.type || counted.kind !== item.kind) {
      countApplied(metrics, counted);
      counted.type = entity.behavior.type;
      counted.kind = item.kind;
    }
    counted.items++;
    counted.units += applied.units ?? 0;
    if (item.idempotencyKey !== undefined) rememberCommand(table, entity, item.idempotencyKey, seq, applied.reply, decision.fingerprint);
    if (item.replyTo !== undefined) env.reply(item.replyTo, { ok: true, value: applied.reply, seq });
  }
  countApplied(metrics, counted);
  // The message is applied: a delivery of it again to this runner must find nothing being applied, or
  // an entity whose last message it was would apply it again (`decide`). (The stream's reader hands a
  // runner each message once; the apply tests deliver again on purpose.)
  for (const slot of slots) if (slot !== undefined && slot.applyingSeq === seq) slot.applyingSeq = 0;
}

/** The effects of an item not applied: a metric, a log line, the caller's answer. */
function settle(env: ApplyEnv, decision: Exclude<Decision, { do: "apply" }>, item: InputItem, index: number, seq: number): void {
  switch (decision.do) {
    case "skip":
      env.metrics.redeliveriesSkipped.inc();
      return;
    case "replay":
      env.metrics.commandsReplayed.inc();
      if (item.replyTo !== undefined) env.reply(item.replyTo, replayReply(decision.earlier));
      return;
    case "refuse":
      // a refused key (invalid, reused) is the caller's answer; an unservable or unreadable item is a dead letter
      if (decision.code === RuntimeErrors.ENTITY_UNKNOWN.code) deadLetter(env, "unknown-type", item, index, seq, decision.message);
      else if (decision.cause !== undefined) deadLetter(env, "refused", item, index, seq, `not fingerprinted: ${decision.cause.message}`);
      if (item.replyTo !== undefined) env.reply(item.replyTo, errorReply(decision.code, decision.message));
  }
}

function deadLetter(env: ApplyEnv, reason: DeadLetterReason, item: InputItem, index: number, seq: number, error: string): void {
  env.deadLetters.record({
    reason,
    source: "input",
    subject: `${env.prefix}.in.${env.shard}`,
    shard: env.shard,
    seq,
    index,
    entity: { type: item.type, id: item.entityId, kind: item.kind },
    error,
    // encoded only when published (a payload nested past the stack cannot be: then none)
    data: () => {
      try {
        return encode(item.payload);
      } catch {
        return new Uint8Array();
      }
    },
  });
}

function countApplied(metrics: RuntimeMetrics, c: { type: string; kind: string; items: number; units: number }): void {
  if (c.items > 0) metrics.itemsApplied.inc({ type: c.type, kind: c.kind }, c.items);
  if (c.units > 0) metrics.unitsApplied.inc({ type: c.type }, c.units);
  c.items = c.units = 0;
}
