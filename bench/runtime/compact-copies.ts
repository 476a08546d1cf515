// Compact twins (runtime/shard/compaction.ts) without the runtime: N device twins decoded, then each kept
// as its encoded snapshot only, the bytes held one of three ways — `arraybuffer`: encodeTwin's own fresh
// ArrayBuffer per twin; `buffer`: a Buffer.from copy (Node's 8 KB pool slices); `slab`: a view of a
// shared 64 KB chunk (CompactSlab, what the runtime does) — or `decoded`: left decoded (the baseline).
// Figures: memory per twin (heapUsed + arrayBuffers after forced GCs, over an empty start), the time to
// compact all and the GC time meanwhile, a full GC's time with the N twins held (what V8's marking costs
// per round), and the CPU of one decode + one encode, the price a reading pays for its twin being compact.
//
//   node --expose-gc --max-old-space-size=12288 bin/bench.js runtime/compact-copies --copy slab|buffer|arraybuffer|decoded [--twins N] [--age reading|week]
import { loadavg } from "node:os";
import { PerformanceObserver } from "node:perf_hooks";
import { applyInput, createTwin, decodeTwin, encodeTwin, type TwinState } from "../../actors/device-twin/domain/mod.ts";
import { CompactSlab } from "../../runtime/shard/compact-slab.ts";
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
  if (!["slab", "buffer", "arraybuffer", "decoded"].includes(copy)) throw new Error(`--copy ${copy}?`);
  const snaps = snapshots(age, 100);
  const before = await settled();
  // the decoded twins, each its own state (decoded from one of the distinct snapshots)
  const decoded: Array<TwinState | undefined> = new Array(twins);
  for (let i = 0; i < twins; i++) decoded[i] = decodeTwin(snaps[i % snaps.length]!);
  const decodedBytes = (await settled()) - before;
  const decodedGcMs = fullGcMs();
  note("twins decoded", { twins, age, perTwin: Math.round(decodedBytes / twins), fullGcMs: round(decodedGcMs) });
  // CPU of a reading's extra work on a compact twin: decode, and the encode of the next compaction
  const sample = Math.min(twins, 50_000);
  let t = performance.now();
  let sink = 0;
  for (let i = 0; i < sample; i++) sink += encodeTwin(decoded[i]!).length;
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
  const compact: Uint8Array[] = [];
  t = performance.now();
  if (copy !== "decoded") {
    for (let i = 0; i < twins; i++) {
      const bytes = encodeTwin(decoded[i]!);
      compact.push(copy === "slab" ? slab.store(bytes) : copy === "buffer" ? Buffer.from(bytes) : bytes);
      decoded[i] = undefined;
    }
  }
  const compactS = (performance.now() - t) / 1000;
  await new Promise((r) => setTimeout(r, 100));
  gcs.disconnect();
  const held = (await settled()) - before;
  const heldGcMs = fullGcMs();
  const snapshotBytes = compact.length > 0 ? Math.round(compact.reduce((n, b) => n + b.length, 0) / compact.length) : 0;
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
  if (compact.length + decoded.filter((d) => d !== undefined).length !== twins) throw new Error("lost twins");
}
