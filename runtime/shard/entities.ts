// The entity table of one shard: a slot per entity the shard knows (by type, then id), the resident
// ones in least-recently-used order, the ones changed since the last commit's cut, the ones whose
// snapshot a commit let wait (deferred-snapshots.ts), the ones whose snapshot write is in flight, and the
// keyed commands each entity applied last. An entity is held in one of three ways: decoded (`state`, in
// least-recently-used order), compact (only its encoded `bytes`: compacted after a while idle, see
// compaction.ts, or read and not decoded yet — decoded again on its next use), or passivated (nothing in
// memory: fetched from its snapshot when needed again; only a stored entity is passivated).
import type { KV } from "@nats-io/kv";
import { isRuntimeError } from "../errors.ts";
import { CommandKeys, type AppliedCommand } from "../command-keys.ts";
import { CompactSlab } from "./compact-slab.ts";
import { Slot, SlotPages } from "./slot.ts";
import { DeferredSnapshots } from "./deferred-snapshots.ts";
import type { EntityBehavior } from "../entity.ts";
import type { RuntimeMetrics } from "../metrics.ts";
import { readSnapshot, type SnapshotRecord } from "../snapshot-store.ts";

export type { Slot };

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
  private readonly resident = new Set<Slot>();
  /** Compact entities (bytes, no decoded state), in the order they became so: about least recently used first. */
  private readonly compacted = new Set<Slot>();
  private compactedBytes = 0;
  private readonly slab = new CompactSlab();
  private readonly pages = new SlotPages();
  /** Cleared (the shard released): a fetch or wake-up still in flight counts nothing any more. */
  private cleared = false;
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
    compactAfterMs = 0,
  ) {
    // coarse, but far finer than the idle times after which entities are compacted or passivated
    this.lruGrainMs = Math.min(LRU_GRAIN_MS, idlePassivateMs / 10, compactAfterMs > 0 ? compactAfterMs / 10 : LRU_GRAIN_MS);
  }

  /** Entities known (resident or passivated). */
  get count(): number {
    return this.slotCount;
  }

  /** Entities with decoded state. */
  get residentCount(): number {
    return this.resident.size;
  }

  /** Entities held as their encoded bytes only. */
  get compactCount(): number {
    return this.compacted.size;
  }

  /** The encoded bytes of the compact entities. */
  get compactBytes(): number {
    return this.compactedBytes;
  }

  /** Adds an entity read by the bulk load at acquisition; undefined when its type is not served here. */
  load(key: string, rec: SnapshotRecord): Slot | undefined {
    const dot = key.indexOf(".");
    const behavior = this.behaviors.get(key.slice(0, dot));
    if (behavior === undefined) return undefined;
    const slot = this.newSlot(key.slice(dot + 1), behavior);
    // used now, as far as passivation is concerned: idle from the acquisition on
    slot.lastUsed = Date.now();
    this.keepBytes(slot, rec.state);
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
    return this.newSlot(entityId, behavior);
  }

  private newSlot(entityId: string, behavior: EntityBehavior): Slot {
    const slot = new Slot(entityId, behavior, this.pages.place());
    let byId = this.slots.get(behavior.type);
    if (byId === undefined) this.slots.set(behavior.type, (byId = new Map()));
    byId.set(entityId, slot);
    this.slotCount++;
    // counted as made, as clear() uncounts them: a start aborted after its bulk load leaves no trace
    this.metrics.knownEntities.inc();
    return slot;
  }

  /** True when the entity's state is neither in memory nor read yet, but may be in its snapshot. */
  needsFetch(slot: Slot): boolean {
    return slot.state === undefined && !slot.hasBytes && slot.persisted;
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
    // still missing: a concurrent fetch and use may have decoded (and even compacted) it meanwhile
    if (rec !== undefined && this.needsFetch(slot)) this.keepBytes(slot, rec.state);
  }

  /** The entity is held as a copy of `bytes` (no decoded state). */
  private keepBytes(slot: Slot, bytes: Uint8Array): void {
    this.slab.hold(slot, bytes);
    if (this.cleared) return;
    this.compacted.add(slot);
    this.compactedBytes += bytes.length;
    this.metrics.compactEntities.inc();
    this.metrics.compactBytes.inc(bytes.length);
  }

  /** Drops a compact entity's bytes (decoded, passivated). */
  private dropBytes(slot: Slot): void {
    const n = slot.byteLength;
    slot.clearBytes();
    if (!this.compacted.delete(slot)) return; // the table was cleared since
    this.compactedBytes -= n;
    this.metrics.compactEntities.dec();
    this.metrics.compactBytes.dec(n);
  }

  /** Decoded entities, least recently used first (the compaction sweep's order; it may compact them meanwhile). */
  leastRecentlyUsed(): IterableIterator<Slot> {
    return this.resident.values();
  }

  /**
   * Keeps a decoded entity as its encoded state only (compaction.ts), whether or not its snapshot is
   * stored: its dirty mark and unsaved bookkeeping stay, and a commit writes these very bytes — they are
   * its state, which nothing changes before it is decoded again. False (kept decoded) when the
   * behaviour cannot encode it; its commit will say why.
   */
  compact(slot: Slot): boolean {
    let encoded: Uint8Array;
    try {
      encoded = slot.behavior.encode(slot.state);
    } catch {
      return false;
    }
    // copied at once: the encoder may reuse its buffer
    this.keepBytes(slot, encoded);
    this.dropState(slot);
    return true;
  }

  /**
   * Drops a decoded entity's state, and hands it to its behaviour to reuse (EntityBehavior.release): the
   * table held its only reference — apply, tick, query and capture use a state synchronously, never
   * across an await.
   */
  private dropState(slot: Slot): void {
    const state = slot.state;
    slot.state = undefined;
    this.resident.delete(slot);
    this.metrics.residentEntities.dec();
    slot.behavior.release?.(state);
  }

  /** The entity's state, encoded by its behaviour: a compact entity's bytes as they are, no encoding again. */
  encodedState(slot: Slot): Uint8Array {
    return slot.state === undefined && slot.hasBytes ? slot.bytes! : slot.behavior.encode(slot.state);
  }

  /**
   * Decodes (or creates) the entity's state and marks it most recently used — at a second's grain: moving
   * an entity to the end of the LRU order on every input was ~3% of a busy shard's time (the fleet
   * shape), and passivation needs no finer order than that.
   */
  activate(slot: Slot, now = Date.now()): void {
    if (slot.state === undefined) {
      slot.state = this.stateOf(slot);
      if (slot.hasBytes) this.dropBytes(slot);
      this.metrics.residentEntities.inc();
    } else if (now - slot.lastUsed < this.lruGrainMs) {
      return;
    } else {
      this.resident.delete(slot);
    }
    slot.lastUsed = now;
    this.resident.add(slot);
  }

  /** The entity's state: in memory, decoded from its snapshot, or fresh (also when the snapshot cannot be decoded). */
  stateOf(slot: Slot): unknown {
    if (slot.state !== undefined) return slot.state;
    const bytes = slot.bytes;
    if (bytes === undefined) return slot.behavior.create(slot.entityId);
    try {
      return slot.behavior.decode(bytes);
    } catch (err) {
      // state from a newer build (a downgrade) is not garbage: stop rather than overwrite it
      if (isNewerVersion(err)) throw err;
      this.onUndecodable(slot, bytes, err as Error);
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

  /** Drops entities idle longer than `idleMs` from memory (their snapshot is in the bucket); returns how many. */
  passivateIdle(idleMs: number): number {
    const cutoff = Date.now() - idleMs;
    const idle = (slot: Slot) => slot.lastUsed <= cutoff;
    return this.passivateWhile(this.compacted, idle) + this.passivateWhile(this.resident.values(), idle);
  }

  /** Drops the `count` least recently used entities from memory, the compact ones first. */
  passivateLeastRecent(count: number): number {
    let n = 0;
    const more = () => n++ < count;
    return this.passivateWhile(this.compacted, more) + this.passivateWhile(this.resident.values(), more);
  }

  /**
   * Drops the least recently used of `slots` (compact or decoded) while `more` says so. One whose snapshot
   * waits is kept, and the next commit asked to write it: the next round drops it.
   */
  private passivateWhile(slots: Iterable<Slot>, more: (slot: Slot) => boolean): number {
    let dropped = 0;
    for (const slot of slots) {
      if (!more(slot)) break; // in least-recently-used order
      if (slot.dirty && slot.unsavedSince !== 0) this.requestSave(slot);
      if (slot.dirty || this.writing.has(slot)) continue; // not stored yet: keep
      if (slot.state === undefined) this.dropBytes(slot);
      else this.dropState(slot);
      dropped++;
    }
    return dropped;
  }

  /** Drops every entity (the shard is released); a second call finds nothing left. */
  clear(): void {
    this.cleared = true;
    this.metrics.residentEntities.dec(this.resident.size);
    this.metrics.compactEntities.dec(this.compacted.size);
    this.metrics.compactBytes.dec(this.compactedBytes);
    this.metrics.knownEntities.dec(this.slotCount);
    this.slots.clear();
    this.commandKeys.clear();
    this.slotCount = 0;
    this.resident.clear();
    // the slots keep their bytes: a query in hand after a planned stop still answers from them
    this.compacted.clear();
    this.compactedBytes = 0;
    this.changed.clear();
    this.deferred.clear();
    this.writing.clear();
  }
}
