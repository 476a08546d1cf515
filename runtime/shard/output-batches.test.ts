// Batched outputs: `{ items: [...] }` per batch subject and shard, in publish order, split under MAX_BATCH_BYTES,
// every message with an id of its own.
import { describe, expect, it } from "vitest";
import { decode } from "../codec.ts";
import { MAX_BATCH_BYTES, OutputBatches } from "./output-batches.ts";

const out = (id: string, batch: string, pad = 0) => ({ id, subject: `p.out.one.${id}`, payload: { id, pad: "x".repeat(pad) }, batch });

describe("OutputBatches", () => {
  it("publishes each batch subject's outputs as one { items } message per shard, in order", () => {
    const b = new OutputBatches();
    for (const id of ["a", "b", "c"]) b.add(out(id, "p.out.aggs"));
    b.add(out("z", "p.out.other"));
    expect(b.count).toBe(4);
    const msgs = b.take(7, "r1");
    expect(msgs.map((m) => m.subject)).toEqual(["p.out.aggs.7", "p.out.other.7"]);
    expect(msgs.map((m) => decode<{ items: Array<{ id: string }> }>(m.data).items.map((i) => i.id))).toEqual([["a", "b", "c"], ["z"]]);
    expect(new Set(msgs.map((m) => m.msgId)).size).toBe(2);
    expect(b.count).toBe(0);
    expect(b.take(7, "r1")).toEqual([]);
  });

  it("splits a large cut under MAX_BATCH_BYTES, losing and repeating nothing; ids never repeat", () => {
    const b = new OutputBatches();
    const n = 40;
    for (let i = 0; i < n; i++) b.add(out(`o${i}`, "p.out.aggs", 20_000));
    b.add(out("small", "p.out.aggs"));
    const msgs = b.take(0, "r1");
    expect(msgs.length).toBeGreaterThan(1);
    for (const m of msgs) expect(m.data.length).toBeLessThanOrEqual(MAX_BATCH_BYTES + 16);
    const ids = msgs.flatMap((m) => decode<{ items: Array<{ id: string }> }>(m.data).items.map((i) => i.id));
    expect(ids).toEqual([...Array.from({ length: n }, (_, i) => `o${i}`), "small"]);
    b.add(out("next", "p.out.aggs"));
    const again = b.take(0, "r1");
    expect(msgs.map((m) => m.msgId)).not.toContain(again[0]!.msgId);
  });

  it("encodes arrays of 16 and more items with the right header", () => {
    for (const n of [15, 16, 300]) {
      const b = new OutputBatches();
      for (let i = 0; i < n; i++) b.add(out(`o${i}`, "p.out.aggs"));
      const [m] = b.take(0, "r");
      expect(decode<{ items: unknown[] }>(m!.data).items).toHaveLength(n);
    }
  });
});
