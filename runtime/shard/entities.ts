// The entity table of one shard: a slot per entity the shard knows (by type, then id), the resident
// ones in least-recently-used order, the ones changed since the last commit's cut, the ones whose
// snapshot a commit let wait (deferred-snapshots.ts), the ones whose snapshot write is in flight, and the
// keyed commands each entity applied last. Passivation drops a stored entity's decoded state; it comes
// back from its snapshot when needed again.
import type { KV } from "@nats-io/kv";
import { isRuntimeError } from "../errors.ts";
import { CommandKeys, type AppliedCommand } from "../command-keys.ts";
import { DeferredSnapshots } from "./deferred-snapshots.ts";
import type { EntityBehavior } from "../entity.ts";
import type { RuntimeMetrics } from "../metrics.ts";
import { entityKey, readSnapshot, type SnapshotRecord } from "../snapshot-store.ts";

/** One entity of the shard. */
export interface Slot {
  key: string;
  entityId: string;
  behavior: EntityBehavior;
  state: unknown;
  /**
   * Snapshot bytes of an entity that is not resident (read by the bulk load at acquisition, or fetched
   * on demand); dropped once decoded — a resident entity's state is its only copy in memory.
   */
  bytes: Uint8Array | undefined;
  /** True when a snapshot may exist in the bucket (a passivated entity is fetched from there). */
  persisted: boolean;
  appliedSeq: number;
  /** Sequence of the message being applied, so several items of one message for one entity all apply. */
  applyingSeq: number;
  /** Wall-clock wake-up the entity wants (persisted with its snapshot). */
  wakeAt: number | undefined;
  /** Time of the entity's live entry in the wake queue (≤ wakeAt; see timers.ts). */
  queuedAt: number | undefined;
  /** Changed since its last snapshot was captured (in `changed`, or waiting in `deferred`, or both). */
  dirty: boolean;
  /**
   * Input stream sequence of the first input applied since the entity's last snapshot was captured (0:
   * none). While its snapshot is deferred (commit.ts), the shard checkpoint stays before it.
   */
  unsavedSeq: number;
  /** Inputs applied since the last snapshot was captured. */
  unsavedInputs: number;
  /** When a commit let the entity's snapshot wait (performance.now(); 0: not waiting). */
  unsavedSince: number;
  /**
   * Written at the next commit: changed by something the input log cannot replay (a wake-up), or wanted
   * stored so it can be passivated.
   */
  mustSave: boolean;
  lastUsed: number;
}

/** Resolution of the least-recently-used order of resident entities (ms), at most: see `lruGrainMs`. */
const LRU_GRAIN_MS = 1000;

/** A behaviour's decode error that says the bytes come from a newer build (its code ends in `_VERSION`). */
function isNewerVersion(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.endsWith("_VERSION");
}

export class EntityTable {
  /** Every entity of the shard this runner knows, by type, then id (the per-item lookup builds no key string). */
  private readonly slots = new Map<string, Map<string, Slot>>();
  private slotCount = 0;
  /** Entities with decoded state, least recently used first (re-inserted on use). */
  private readonly resident = new Map<string, Slot>();
  /** Entities changed since the last commit's cut: the next commit looks at each. */
  readonly changed = new Set<Slot>();
  /** Entities whose snapshot a commit let wait, oldest first. */
  readonly deferred = new DeferredSnapshots();
  /** Entities whose snapshot write is in flight: not passivated until it is stored (a fetch would miss it). */
  readonly writing = new Set<Slot>();
  /**
   * The keyed commands each entity applied last (command-keys.ts), only for entities that got one: a
   * side table rather than a slot field, so the other entities — nearly all — pay nothing for it.
   * Kept while an entity is passivated, like its `appliedSeq`; persisted in its snapshot record.
   */
  readonly commandKeys = new Map<Slot, CommandKeys>();
  /** The shard's snapshot bucket, once opened: where passivated entities are fetched from. */
  kv: KV | undefined;
  /**
   * Told of a snapshot that cannot be decoded (written by something other than an owner); the entity
   * then starts from a fresh state instead of stopping its shard. Set by the runner (a dead letter).
   */
  onUndecodable: (slot: Slot, bytes: Uint8Array, err: Error) => void = () => undefined;
  private readonly lruGrainMs: number;

  constructor(
    private readonly behaviors: ReadonlyMap<string, EntityBehavior>,
    private readonly metrics: RuntimeMetrics,
    idlePassivateMs: number,
  ) {
    // coarse, but far finer than the idle time after which entities are passivated
    this.lruGrainMs = Math.min(LRU_GRAIN_MS, idlePassivateMs / 10);
  }

  /** Entities known (resident or passivated). */
  get count(): number {
    return this.slotCount;
  }

  /** Entities with decoded state. */
  get residentCount(): number {
    return this.resident.size;
  }

  /** Adds an entity read by the bulk load at acquisition; undefined when its type is not served here. */
  load(key: string, rec: SnapshotRecord): Slot | undefined {
    const dot = key.indexOf(".");
    const behavior = this.behaviors.get(key.slice(0, dot));
    if (behavior === undefined) return undefined;
    const slot = this.newSlot(key, key.slice(dot + 1), behavior);
    slot.bytes = rec.state;
    slot.persisted = true;
    slot.appliedSeq = rec.appliedSeq;
    if (rec.commands !== undefined && rec.commands.length > 0) this.commandKeys.set(slot, new CommandKeys(rec.commands));
    return slot;
  }

  /** The entity's slot, new if the shard has not seen it; undefined when its type is not served here. */
  slotFor(type: string, entityId: string): Slot | undefined {
    const slot = this.slots.get(type)?.get(entityId);
    if (slot !== undefined) return slot;
    const behavior = this.behaviors.get(type);
    if (behavior === undefined) return undefined;
    // The scan at acquisition saw every snapshot of this shard and only this owner writes: a key we
    // do not know has no snapshot.
    this.metrics.knownEntities.inc();
    return this.newSlot(entityKey(type, entityId), entityId, behavior);
  }

  private newSlot(key: string, entityId: string, behavior: EntityBehavior): Slot {
    const slot: Slot = { key, entityId, behavior, state: undefined, bytes: undefined, persisted: false, appliedSeq: 0, applyingSeq: 0, wakeAt: undefined, queuedAt: undefined, dirty: false, unsavedSeq: 0, unsavedInputs: 0, unsavedSince: 0, mustSave: false, lastUsed: 0 };
    let byId = this.slots.get(behavior.type);
    if (byId === undefined) this.slots.set(behavior.type, (byId = new Map()));
    byId.set(entityId, slot);
    this.slotCount++;
    return slot;
  }

  /** True when the entity's state is neither in memory nor read yet, but may be in its snapshot. */
  needsFetch(slot: Slot): boolean {
    return slot.state === undefined && slot.bytes === undefined && slot.persisted;
  }

  /** Reads the snapshots of those of `slots` that need it (see {@link needsFetch}). */
  async fetchMissing(slots: ReadonlyArray<Slot | undefined>): Promise<void> {
    const missing = slots.filter((s): s is Slot => s !== undefined && this.needsFetch(s));
    if (missing.length > 0) await Promise.all(missing.map((s) => this.fetchBytes(s)));
  }

  async fetchBytes(slot: Slot): Promise<void> {
    if (this.kv === undefined) return;
    let rec: SnapshotRecord | undefined;
    try {
      rec = await readSnapshot(this.kv, slot.key);
    } catch (err) {
      if (!(err instanceof TypeError || isRuntimeError(err, "CODEC_DECODE"))) throw err;
      this.onUndecodable(slot, new Uint8Array(), err as Error);
      return;
    }
    if (rec !== undefined && slot.state === undefined) slot.bytes = rec.state;
  }

  /**
   * Decodes (or creates) the entity's state and marks it most recently used — at a second's grain: moving
   * an entity to the end of the LRU order on every input was ~3% of a busy shard's time (the fleet
   * shape), and passivation needs no finer order than that.
   */
  activate(slot: Slot, now = Date.now()): void {
    if (slot.state === undefined) {
      slot.state = this.stateOf(slot);
      slot.bytes = undefined;
      this.metrics.residentEntities.inc();
    } else if (now - slot.lastUsed < this.lruGrainMs) {
      return;
    } else {
      this.resident.delete(slot.key);
    }
    slot.lastUsed = now;
    this.resident.set(slot.key, slot);
  }

  /** The entity's state: in memory, decoded from its snapshot, or fresh (also when the snapshot cannot be decoded). */
  stateOf(slot: Slot): unknown {
    if (slot.state !== undefined) return slot.state;
    if (slot.bytes === undefined) return slot.behavior.create(slot.entityId);
    try {
      return slot.behavior.decode(slot.bytes);
    } catch (err) {
      // state from a newer build (a downgrade) is not garbage: stop rather than overwrite it
      if (isNewerVersion(err)) throw err;
      this.onUndecodable(slot, slot.bytes, err as Error);
      return slot.behavior.create(slot.entityId);
    }
  }

  /**
   * The entity changed: by the input with stream sequence `seq` (replayable from the log, so its
   * snapshot may wait), or without one (a wake-up: its snapshot is written at the next commit).
   */
  markDirty(slot: Slot, seq?: number): void {
    if (seq === undefined) slot.mustSave = true;
    else {
      if (slot.unsavedSeq === 0) slot.unsavedSeq = seq;
      slot.unsavedInputs++;
    }
    // a waiting entity is looked at again: this change may end its wait (inputs counted, a wake-up)
    if (slot.dirty && slot.unsavedSince === 0) return; // in `changed` already
    slot.dirty = true;
    this.changed.add(slot);
  }

  /** Asks the next commit to write a waiting entity's snapshot (so that it can be passivated). */
  private requestSave(slot: Slot): void {
    if (slot.mustSave) return;
    slot.mustSave = true;
    this.changed.add(slot);
  }

  /** True while anything applied is not captured for a snapshot yet. */
  get hasUnsaved(): boolean {
    return this.changed.size > 0 || this.deferred.count > 0;
  }

  /** The entity's snapshot was captured: nothing unsaved any more. */
  markCaptured(slot: Slot): void {
    this.changed.delete(slot);
    this.deferred.captured(slot);
    slot.dirty = false;
    slot.mustSave = false;
    slot.unsavedSeq = slot.unsavedInputs = slot.unsavedSince = 0;
  }

  /** Remembers a keyed command the entity just applied. */
  remember(slot: Slot, applied: AppliedCommand): void {
    let keys = this.commandKeys.get(slot);
    if (keys === undefined) this.commandKeys.set(slot, (keys = new CommandKeys()));
    keys.add(applied);
  }

  /** Forgets the keyed commands the entity applied (it was erased). */
  forgetCommands(slot: Slot): void {
    this.commandKeys.delete(slot);
  }

  /** The keyed commands to persist with the entity's snapshot, if it remembers any. */
  commandsOf(slot: Slot): readonly AppliedCommand[] | undefined {
    // the table is empty on a shard that never got a keyed command: no lookup per snapshot then
    return this.commandKeys.size === 0 ? undefined : this.commandKeys.get(slot)?.list();
  }

  /** Drops decoded state of entities idle longer than `idleMs` (their snapshot is in the bucket); returns how many. */
  passivateIdle(idleMs: number): number {
    const cutoff = Date.now() - idleMs;
    return this.passivateWhile((slot) => slot.lastUsed <= cutoff);
  }

  /** Drops decoded state of the `count` least recently used entities. */
  passivateLeastRecent(count: number): number {
    let n = 0;
    return this.passivateWhile(() => n++ < count);
  }

  /**
   * Drops the decoded state of the least recently used entities while `more` says so. One whose snapshot
   * waits is kept, and the next commit asked to write it: the next round drops it.
   */
  private passivateWhile(more: (slot: Slot) => boolean): number {
    let dropped = 0;
    for (const slot of this.resident.values()) {
      if (!more(slot)) break; // resident is in least-recently-used order
      if (slot.dirty && slot.unsavedSince !== 0) this.requestSave(slot);
      if (slot.dirty || this.writing.has(slot)) continue; // not stored yet: keep
      slot.state = undefined;
      this.resident.delete(slot.key);
      dropped++;
    }
    this.metrics.residentEntities.dec(dropped);
    return dropped;
  }

  /** Drops every entity (the shard is released); a second call finds nothing left. */
  clear(): void {
    this.metrics.residentEntities.dec(this.resident.size);
    this.metrics.knownEntities.dec(this.slotCount);
    this.slots.clear();
    this.commandKeys.clear();
    this.slotCount = 0;
    this.resident.clear();
    this.changed.clear();
    this.deferred.clear();
    this.writing.clear();
  }
}
