// Where compacted entities' encoded state lives (compaction.ts): copied into shared chunks, each entity
// holding a view of its bytes. A behaviour's encode may return a view of its encoder's shared buffer
// (msgpackr does), which must be copied before it is kept; a fresh ArrayBuffer per entity is a V8 object
// with a backing store and an extension the GC tracks one by one, and every ~64 MB of them allocated
// forces a full mark-compact (docs/BENCHMARKS.md, "Compact twins"). A chunk is freed once no view of it is left.

/** Bytes per chunk: small enough that a few long-idle entities do not keep much of it alive. */
const CHUNK_BYTES = 64 * 1024;
/** Larger encodings get an ArrayBuffer of their own (they would waste a chunk's tail). */
const OWN_BUFFER_FROM = CHUNK_BYTES / 8;

export class CompactSlab {
  private chunk = new Uint8Array(0);
  private used = 0;

  /** A copy of `bytes` that the caller may keep (a view of a shared chunk). */
  store(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    if (n >= OWN_BUFFER_FROM) return bytes.slice();
    if (this.used + n > this.chunk.length) {
      this.chunk = new Uint8Array(CHUNK_BYTES);
      this.used = 0;
    }
    const view = this.chunk.subarray(this.used, this.used + n);
    view.set(bytes);
    this.used += n;
    return view;
  }
}
