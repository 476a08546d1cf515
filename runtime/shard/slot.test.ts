// A slot keeps its numbers in a page shared with other slots (slot.ts): each slot's must stay its own
// across pages, "none" must read back as undefined, sequences past 2^31 exactly, and its bytes must be a
// copy the table holds, not a view of what it was given.
import { describe, expect, it } from "vitest";
import { counterBehavior } from "../../test/runtime/counter-behavior.ts";
import { RuntimeMetrics } from "../metrics.ts";
import { EntityTable } from "./entities.ts";
import { Slot, SlotPages, SLOTS_PER_PAGE } from "./slot.ts";

describe("slot", () => {
  it("keeps each slot's numbers its own, over several pages", () => {
    const pages = new SlotPages();
    const n = 2 * SLOTS_PER_PAGE + 17;
    const slots = Array.from({ length: n }, (_, i) => new Slot(`e${i}`, counterBehavior, pages.place()));
    expect([slots[0]!.wakeAt, slots[0]!.queuedAt, slots[0]!.appliedSeq, slots[0]!.unsavedSince, slots[0]!.lastUsed]).toEqual([undefined, undefined, 0, 0, 0]);
    const big = 2 ** 40; // an input stream's sequence after years: past a small integer
    for (const [i, s] of slots.entries()) {
      s.lastUsed = 1_700_000_000_000 + i;
      s.wakeAt = i % 3 === 0 ? undefined : 1_800_000_000_000 + i;
      s.queuedAt = i % 5 === 0 ? undefined : 1_900_000_000_000 + i;
      s.unsavedSince = 0.5 + i;
      s.appliedSeq = big + i;
      s.applyingSeq = big + 2 * i;
      s.unsavedSeq = i;
    }
    for (const [i, s] of slots.entries()) {
      expect([s.lastUsed, s.wakeAt, s.queuedAt, s.unsavedSince, s.appliedSeq, s.applyingSeq, s.unsavedSeq]).toEqual([
        1_700_000_000_000 + i,
        i % 3 === 0 ? undefined : 1_800_000_000_000 + i,
        i % 5 === 0 ? undefined : 1_900_000_000_000 + i,
        0.5 + i,
        big + i,
        big + 2 * i,
        i,
      ]);
    }
    expect(slots[n - 1]!.key).toBe(`counter.e${n - 1}`);
  });

  it("holds a copy of a snapshot read and of a compaction's encoding, each its own bytes", () => {
    const table = new EntityTable(new Map([["counter", counterBehavior]]), new RuntimeMetrics({ defaultMetrics: false }), 600_000, 1000);
    const read = counterBehavior.encode({ id: "a", n: 1, sum: 5, ticks: 0 });
    const a = table.load("counter.a", { appliedSeq: 3, wakeAt: undefined, state: read })!;
    read.fill(0); // the message buffer the read came in, reused
    expect(counterBehavior.decode(a.bytes!)).toEqual({ id: "a", n: 1, sum: 5, ticks: 0 });
    const b = table.slotFor("counter", "b")!;
    table.activate(b);
    b.state = { id: "b", n: 2, sum: 7, ticks: 0 };
    expect(table.compact(b)).toBe(true);
    expect([a.hasBytes, b.hasBytes, b.byteLength > 0, table.compactBytes]).toEqual([true, true, true, a.byteLength + b.byteLength]);
    expect([counterBehavior.decode(a.bytes!), counterBehavior.decode(b.bytes!)]).toEqual([
      { id: "a", n: 1, sum: 5, ticks: 0 },
      { id: "b", n: 2, sum: 7, ticks: 0 },
    ]);
    table.activate(b);
    expect([b.hasBytes, b.bytes, table.compactBytes, b.state]).toEqual([false, undefined, a.byteLength, { id: "b", n: 2, sum: 7, ticks: 0 }]);
  });
});
