// Where compact entities' encoded state lives (compaction.ts): copied into shared chunks, each entity
// holding its chunk, an offset and a length (slot.ts: a view per entity would be a heap object per twin
// for the collector to mark). A behaviour's encode may return a view of its encoder's shared buffer
// (msgpackr does), and a snapshot read is a view of its message's buffer: both are copied before they
// are kept. A fresh ArrayBuffer per entity is a V8 object with a backing store and an extension the GC
// tracks one by one, and every ~64 MB of them allocated forces a full mark-compact (docs/BENCHMARKS.md,
// "Compact twins"). A chunk is freed once no slot holds it.
import type { Slot } from "./slot.ts";

/** Bytes per chunk: small enough that a few long-idle entities do not keep much of it alive. */
const CHUNK_BYTES = 64 * 1024;
/** Larger encodings get an ArrayBuffer of their own (they would waste a chunk's tail). */
const OWN_BUFFER_FROM = CHUNK_BYTES / 8;

export class CompactSlab {
  private chunk = new Uint8Array(0);
  private used = 0;

  /** Copies `bytes` into the slab as the slot's encoded state. */
  hold(slot: Slot, bytes: Uint8Array): void {
    const n = bytes.length;
    if (n >= OWN_BUFFER_FROM) return slot.setBytes(bytes.slice(), 0, n);
    if (this.used + n > this.chunk.length) {
      this.chunk = new Uint8Array(CHUNK_BYTES);
      this.used = 0;
    }
    this.chunk.set(bytes, this.used);
    slot.setBytes(this.chunk, this.used, n);
    this.used += n;
  }
}
