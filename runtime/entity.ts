// What the runtime needs to know about an entity type: how to create, apply, query, persist and wake it.
// The runtime stays generic; the device twin (actors/) implements this interface.

/**
 * Input kind the runtime itself applies to any entity type: the entity's state is replaced by a fresh
 * `create(entityId)` — history, settings and wake-ups gone. Behaviours never see it as an input; its
 * only outputs are those of the behaviour's optional `erased`.
 */
export const ERASE_KIND = "$erase";

/** A message an entity emits; published to JetStream with `id` as `Nats-Msg-Id` (stable across replays). */
export interface EntityOutput {
  /** Deterministic id: the same input applied to the same state gives the same id. */
  id: string;
  /** Full subject (the behaviour decides; usually under the cluster's output root). */
  subject: string;
  /** Payload; encoded with the runtime codec (msgpack). */
  payload: unknown;
  /**
   * Travels batched instead of alone: the shard's outputs with the same `batch` in one commit's cut are
   * published together at that commit as `{ items: [payload, …] }` on `<batch>.<shard>` (more than one
   * message when they pass 256 KiB), each payload keeping its own `id` — one store and one ack for many
   * outputs, for those no one waits for (closed aggregates). Such an output is published up to one
   * commit interval later than alone, and a crash between that publish and the commit's checkpoint
   * publishes it again in another batch (the batch ids name their runner), so consumers key on the
   * payloads' ids (docs/design.md §3.3). `subject` is where it would go alone.
   */
  batch?: string;
}

/** Result of applying one input. `reply` is sent back to a command's caller, if it waits. */
export interface Applied<S> {
  state: S;
  outputs: readonly EntityOutput[];
  reply?: unknown;
  /** Domain units this input carried (e.g. readings), for the `airtwin_units_applied_total` metric. */
  units?: number;
}

/** Context of one apply: the cluster's subject prefix and the time the input was accepted (wall clock, ms). */
export interface ApplyContext {
  readonly prefix: string;
  /** Wall-clock time (ms) at which the input was accepted into the log (set by the client). */
  readonly acceptedAt: number;
  /**
   * Where the input is in the log: the stream sequence of its message and its index among the message's
   * items — increasing along one entity's inputs and the same on a replay, so outputs can carry it as a
   * revision or in their ids. Absent when an input is applied outside a shard (unit tests, benches).
   */
  readonly seq?: number;
  readonly index?: number;
}

/**
 * An entity type. Implementations are deterministic: same state + same input → same result and output ids.
 * `apply` may mutate and return the state it was given (the runtime owns it exclusively).
 */
export interface EntityBehavior<S = unknown> {
  /** Type name: 1–32 chars of [a-z0-9-]; part of snapshot keys. */
  readonly type: string;
  create(entityId: string): S;
  /** Applies one logged input. `kind` and `payload` come from the client that sent it. */
  apply(state: S, kind: string, payload: unknown, ctx: ApplyContext): Applied<S>;
  /**
   * Outputs of erasing the entity (ERASE_KIND), e.g. the end of a projection of its state that other
   * services keep. Default: none.
   */
  erased?(entityId: string, ctx: ApplyContext): readonly EntityOutput[];
  /** Answers a live query; must not change state. */
  query(state: S, query: unknown): unknown;
  /** Wall-clock wake-up the entity wants (ms), or undefined. Checked after every apply and tick. */
  nextWakeAt(state: S): number | undefined;
  /** Applies a wall-clock wake-up. */
  tick(state: S, now: number, ctx: { readonly prefix: string }): Applied<S>;
  encode(state: S): Uint8Array;
  decode(bytes: Uint8Array): S;
  /**
   * The runtime has dropped this decoded state for good (compacted or passivated: its encoded bytes hold
   * it); nothing reads it again, so the behaviour may reuse its memory for the next state it creates or
   * decodes. Called once per state at most. Default: nothing (the garbage collector frees it).
   */
  release?(state: S): void;
}
