// Bringing an entity's snapshot record forward by inputs applied outside a shard: a restore that lost
// the input stream replays, on top of each archived snapshot, the inputs the archive kept from after
// it, so a snapshot written late (deferred snapshots) loses nothing. The result is what an owner would
// hold after replaying those inputs from its log following a crash: the same applies in the same
// order (erasures included, keyed commands once), wake-ups as the state asks for them, outputs
// dropped — they were published when the inputs were first applied. Generic: kinds and payloads are
// the behaviour's business.
import { encode } from "./codec.ts";
import { commandFingerprint } from "./command-fingerprint.ts";
import { CommandKeys } from "./command-keys.ts";
import { ERASE_KIND, type EntityBehavior } from "./entity.ts";
import type { SnapshotRecord } from "./snapshot-store.ts";

/** One logged input of an entity, with its position in the log. */
export interface ReplayInput {
  kind: string;
  payload: unknown;
  /** Wall-clock time the input was accepted into the log (ms). */
  acceptedAt: number;
  /** Stream sequence of its message and its index among the message's items (for the behaviour's ids). */
  seq: number;
  index: number;
  /** A keyed command's idempotency key: applied once per key, as an owner does. */
  idempotencyKey?: string;
}

/**
 * Applies `inputs` (in log order) to the entity's record (undefined: a fresh entity) and returns the
 * record to write, its `appliedSeq` set to `appliedSeq`. An input the behaviour refuses (throws)
 * leaves the state as it was, as in a shard.
 */
export function replayRecord<S>(
  behavior: EntityBehavior<S>,
  entityId: string,
  record: SnapshotRecord | undefined,
  inputs: Iterable<ReplayInput>,
  o: { prefix: string; appliedSeq: number },
): SnapshotRecord {
  let state = record === undefined ? behavior.create(entityId) : behavior.decode(record.state);
  let keys = new CommandKeys(record?.commands ?? []);
  for (const input of inputs) {
    if (input.kind === ERASE_KIND) {
      state = behavior.create(entityId);
      keys = new CommandKeys();
      continue;
    }
    const key = input.idempotencyKey;
    // applied before under its key (answered from memory) or reused for another command (refused): not applied again
    if (key !== undefined && keys.find(key) !== undefined) continue;
    try {
      const fingerprint = key === undefined ? undefined : commandFingerprint(input.kind, input.payload);
      const applied = behavior.apply(state, input.kind, input.payload, { prefix: o.prefix, acceptedAt: input.acceptedAt, seq: input.seq, index: input.index });
      state = applied.state;
      if (key !== undefined) keys.add({ key, seq: input.seq, reply: encode(applied.reply), ...(fingerprint === undefined ? {} : { fingerprint }) });
    } catch {
      // refused by the behaviour: the state is unchanged (its caller got the error at the time)
    }
  }
  const commands = keys.list();
  return { appliedSeq: o.appliedSeq, wakeAt: behavior.nextWakeAt(state), state: behavior.encode(state), ...(commands.length > 0 ? { commands: [...commands] } : {}) };
}
