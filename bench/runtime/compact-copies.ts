// Compact twins (runtime/shard/compaction.ts) without the runtime: N device twins decoded, each in the
// runtime's slot (runtime/shard/slot.ts), then each kept as its encoded snapshot only, the bytes held one
// of four ways — `arraybuffer`: encodeTwin's own fresh ArrayBuffer per twin; `buffer`: a Buffer.from copy
// (Node's 8 KB pool slices); `view`: a view of a shared 64 KB chunk per twin (what the runtime did until
// December 2026); `slab`: the chunk and an offset on the slot, no view (CompactSlab.hold, what the runtime
// does) — or `decoded`: left decoded (the baseline).
// Figures: memory per twin (heapUsed + arrayBuffers after forced GCs, over an empty start), the time to
// compact all and the GC time meanwhile, a full GC's time with the N twins held (what V8's marking costs
// per round), and the CPU of one decode + one encode, the price a reading pays for its twin being compact.
//
//   node --expose-gc --max-old-space-size=12288 bin/bench.js runtime/compact-copies --copy slab|view|buffer|arraybuffer|decoded [--twins N] [--age reading|week]
import { loadavg } from "node:os";
import { PerformanceObserver } from "node:perf_hooks";
import { applyInput, createTwin, decodeTwin, encodeTwin, type TwinState } from "../../actors/device-twin/domain/mod.ts";
import { deviceTwinBehavior } from "../../actors/device-twin/behavior.ts";
import { CompactSlab } from "../../runtime/shard/compact-slab.ts";
import { Slot, SlotPages } from "../../runtime/shard/slot.ts";
import { int, parseArgs, str } from "../lib/args.ts";
import { reading, READING_INTERVAL_MS, rng, T0 } from "../lib/fleet.ts";
import { emit, note, round } from "../lib/report.ts";

const gc = (globalThis as { gc?: () => void }).gc;

async function settled(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** A full GC's time (ms), median of 5. */
function fullGcMs(): number {
  const t: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    gc!();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[2]!;
}

/** `distinct` snapshots of twins that saw one reading, or a week of 5-minute readings. */
function snapshots(age: string, distinct: number): Uint8Array[] {
  const rand = rng(7);
  const out: Uint8Array[] = [];
  const readings = age === "week" ? (7 * 24 * 3_600_000) / READING_INTERVAL_MS : 1;
  for (let d = 0; d < distinct; d++) {
    const s = createTwin(`dev-${d}`);
    for (let i = 0; i < readings; i++) applyInput(s, { type: "readings", readings: [reading(rand, T0 + i * READING_INTERVAL_MS)], receivedAt: T0 + i * READING_INTERVAL_MS });
    out.push(encodeTwin(s));
  }
  return out;
}

export async function main(argv: string[]): Promise<void> {
  if (gc === undefined) throw new Error("run with node --expose-gc");
  const args = parseArgs(argv);
  const twins = int(args, "twins", 1_000_000);
  const copy = str(args, "copy", "slab");
  const age = str(args, "age", "reading");
  if (!["slab", "view", "buffer", "arraybuffer", "decoded"].includes(copy)) throw new Error(`--copy ${copy}?`);
  const snaps = snapshots(age, 100);
  const before = await settled();
  // the decoded twins, each its own state (decoded from one of the distinct snapshots) in a slot
  const behavior = deviceTwinBehavior();
  const pages = new SlotPages();
  const slots: Slot[] = new Array(twins);
  for (let i = 0; i < twins; i++) {
    slots[i] = new Slot(`dev-${String(i).padStart(7, "0")}`, behavior, pages.place());
    slots[i]!.state = decodeTwin(snaps[i % snaps.length]!);
  }
  const stateOf = (i: number) => slots[i]!.state as TwinState;
  const decodedBytes = (await settled()) - before;
  const decodedGcMs = fullGcMs();
  note("twins decoded", { twins, age, perTwin: Math.round(decodedBytes / twins), fullGcMs: round(decodedGcMs) });
  // CPU of a reading's extra work on a compact twin: decode, and the encode of the next compaction
  const sample = Math.min(twins, 50_000);
  let t = performance.now();
  let sink = 0;
  for (let i = 0; i < sample; i++) sink += encodeTwin(stateOf(i)).length;
  const encodeUs = ((performance.now() - t) * 1000) / sample;
  t = performance.now();
  for (let i = 0; i < sample; i++) sink += decodeTwin(snaps[i % snaps.length]!).readings;
  const decodeUs = ((performance.now() - t) * 1000) / sample;
  let gcMs = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gcs.observe({ entryTypes: ["gc"] });
  const slab = new CompactSlab();
  let chunk = new Uint8Array(0);
  let chunkUsed = 0;
  /** The earlier form: a view of a shared 64 KB chunk, one per twin. */
  const view = (bytes: Uint8Array) => {
    if (chunkUsed + bytes.length > chunk.length) {
      chunk = new Uint8Array(64 * 1024);
      chunkUsed = 0;
    }
    chunk.set(bytes, chunkUsed);
    chunkUsed += bytes.length;
    return chunk.subarray(chunkUsed - bytes.length, chunkUsed);
  };
  t = performance.now();
  if (copy !== "decoded") {
    for (const slot of slots) {
      const bytes = encodeTwin(slot.state as TwinState);
      if (copy === "slab") slab.hold(slot, bytes);
      else {
        const kept = copy === "view" ? view(bytes) : copy === "buffer" ? Buffer.from(bytes) : bytes;
        slot.setBytes(kept, 0, kept.length);
      }
      slot.state = undefined;
    }
  }
  const compactS = (performance.now() - t) / 1000;
  await new Promise((r) => setTimeout(r, 100));
  gcs.disconnect();
  const held = (await settled()) - before;
  const heldGcMs = fullGcMs();
  const compact = slots.filter((s) => s.hasBytes);
  const snapshotBytes = compact.length > 0 ? Math.round(compact.reduce((n, s) => n + s.byteLength, 0) / compact.length) : 0;
  emit({
    suite: "runtime",
    name: `memory.compact-twin.${copy}`,
    value: Math.round(held / twins),
    unit: "B/twin",
    baseline: { name: "the same twins decoded", value: Math.round(decodedBytes / twins) },
    detail: {
      twins,
      age,
      snapshotBytes,
      fullGcMs: round(heldGcMs),
      fullGcMsDecoded: round(decodedGcMs),
      compactAllS: round(compactS),
      gcMsWhileCompacting: round(gcMs),
      encodeUs: round(encodeUs, 2),
      decodeUs: round(decodeUs, 2),
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      loadavg: loadavg().map((x) => round(x, 2)),
      sink: sink > 0,
    },
  });
  if (compact.length + slots.filter((s) => s.state !== undefined).length !== twins) throw new Error("lost twins");
}
