// One entity of a shard's table (entities.ts), shaped so that a compact twin — nearly every twin of a
// large fleet — is two objects on the V8 heap, its slot and its id, for the collector to mark: its times
// and stream sequences live in a page of a Float64Array shared by 1,024 slots (a time as a property is
// a heap-number box of its own; so is a sequence once past 2^31, a week of one input stream at a million
// devices), its compact bytes as a chunk of the slab with an offset (compact-slab.ts; a view per entity
// is an object), and its key is built when asked (a commit, a fetch), not kept. With a million compact
// twins on a node, a full mark-compact took 337–348 ms in the earlier shape (about eight objects a twin)
// and 150–164 ms in this one (docs/BENCHMARKS.md, "A twin's heap objects").
import type { EntityBehavior } from "../entity.ts";
import { entityKey } from "../snapshot-store.ts";

/** Slots that share a page of numbers: a page is 56 KB, so a shard of a few entities wastes little. */
export const SLOTS_PER_PAGE = 1024;

// a slot's numbers, at `at + field` in its page
const LAST_USED = 0;
const WAKE_AT = 1;
const QUEUED_AT = 2;
const UNSAVED_SINCE = 3;
const APPLIED_SEQ = 4;
const APPLYING_SEQ = 5;
const UNSAVED_SEQ = 6;
const FIELDS = 7;

/** Where new slots get their numbers: the current page, and a new one when it is full. */
export class SlotPages {
  private current = new Float64Array(0);
  private used = SLOTS_PER_PAGE;

  /** Places a new slot's numbers (zero; no wake-up). */
  place(): { page: Float64Array; at: number } {
    if (this.used === SLOTS_PER_PAGE) {
      this.current = new Float64Array(SLOTS_PER_PAGE * FIELDS);
      this.used = 0;
    }
    const at = this.used++ * FIELDS;
    // NaN: none (undefined to the slot's readers)
    this.current[at + WAKE_AT] = this.current[at + QUEUED_AT] = NaN;
    return { page: this.current, at };
  }
}

/** NaN, for none, read as undefined. */
function orUndefined(v: number): number | undefined {
  return v === v ? v : undefined;
}

/** One entity of the shard. */
export class Slot {
  state: unknown = undefined;
  /**
   * The encoded state of a compact entity (`state` undefined), as a chunk, an offset and a length (see
   * {@link bytes}): compacted while idle (exactly its state then — it may be dirty: a commit writes these
   * bytes), read by the bulk load at acquisition, or fetched on demand. Dropped once decoded: a decoded
   * entity's state is its only copy in memory.
   */
  private chunk: Uint8Array | undefined = undefined;
  private offset = 0;
  private length = 0;
  /** True when a snapshot may exist in the bucket (a passivated entity is fetched from there). */
  persisted = false;
  /** Changed since its last snapshot was captured (in `changed`, or waiting in `deferred`, or both). */
  dirty = false;
  /** Inputs applied since the last snapshot was captured. */
  unsavedInputs = 0;
  /**
   * Written at the next commit: changed by something the input log cannot replay (a wake-up), or wanted
   * stored so it can be passivated.
   */
  mustSave = false;
  private readonly page: Float64Array;
  private readonly at: number;

  constructor(
    readonly entityId: string,
    readonly behavior: EntityBehavior,
    place: { page: Float64Array; at: number },
  ) {
    this.page = place.page;
    this.at = place.at;
  }

  /** Its key in the snapshot bucket (`<type>.<id>`), built on each call. */
  get key(): string {
    return entityKey(this.behavior.type, this.entityId);
  }

  /** True when it holds encoded bytes (compact, or read and not decoded yet). */
  get hasBytes(): boolean {
    return this.chunk !== undefined;
  }

  /** Its encoded bytes, a new view on each call; undefined unless {@link hasBytes}. */
  get bytes(): Uint8Array | undefined {
    return this.chunk?.subarray(this.offset, this.offset + this.length);
  }

  /** The length of its encoded bytes (0 without). */
  get byteLength(): number {
    return this.length;
  }

  /** Holds `length` bytes of `chunk` from `offset` as its encoded state (the table's accounting is the caller's). */
  setBytes(chunk: Uint8Array, offset: number, length: number): void {
    this.chunk = chunk;
    this.offset = offset;
    this.length = length;
  }

  /** Lets go of its encoded bytes. */
  clearBytes(): void {
    this.chunk = undefined;
    this.offset = this.length = 0;
  }

  /** When it was last used (Date.now(), at the table's grain). */
  get lastUsed(): number {
    return this.page[this.at + LAST_USED]!;
  }
  set lastUsed(v: number) {
    this.page[this.at + LAST_USED] = v;
  }

  /** Wall-clock wake-up the entity wants (persisted with its snapshot). */
  get wakeAt(): number | undefined {
    return orUndefined(this.page[this.at + WAKE_AT]!);
  }
  set wakeAt(v: number | undefined) {
    this.page[this.at + WAKE_AT] = v ?? NaN;
  }

  /** Time of the entity's live entry in the wake queue (≤ wakeAt; see timers.ts). */
  get queuedAt(): number | undefined {
    return orUndefined(this.page[this.at + QUEUED_AT]!);
  }
  set queuedAt(v: number | undefined) {
    this.page[this.at + QUEUED_AT] = v ?? NaN;
  }

  /** When a commit let the entity's snapshot wait (performance.now(); 0: not waiting). */
  get unsavedSince(): number {
    return this.page[this.at + UNSAVED_SINCE]!;
  }
  set unsavedSince(v: number) {
    this.page[this.at + UNSAVED_SINCE] = v;
  }

  /** Input stream sequence of the last message applied to it. */
  get appliedSeq(): number {
    return this.page[this.at + APPLIED_SEQ]!;
  }
  set appliedSeq(v: number) {
    this.page[this.at + APPLIED_SEQ] = v;
  }

  /** Sequence of the message being applied, so several items of one message for one entity all apply (0 once it is applied: a redelivery of it is skipped). */
  get applyingSeq(): number {
    return this.page[this.at + APPLYING_SEQ]!;
  }
  set applyingSeq(v: number) {
    this.page[this.at + APPLYING_SEQ] = v;
  }

  /**
   * Input stream sequence of the first input applied since the entity's last snapshot was captured (0:
   * none). While its snapshot is deferred (commit.ts), the shard checkpoint stays before it.
   */
  get unsavedSeq(): number {
    return this.page[this.at + UNSAVED_SEQ]!;
  }
  set unsavedSeq(v: number) {
    this.page[this.at + UNSAVED_SEQ] = v;
  }
}
