import { describe, expect, it } from "vitest";
import { counterBehavior, type CounterState } from "../test/runtime/counter-behavior.ts";
import { decode } from "./codec.ts";
import { ERASE_KIND } from "./entity.ts";
import { replayRecord, type ReplayInput } from "./replay.ts";
import type { SnapshotRecord } from "./snapshot-store.ts";

const add = (v: number, seq: number, key?: string): ReplayInput => ({ kind: "add", payload: { v }, acceptedAt: 1000 + seq, seq, index: 0, ...(key === undefined ? {} : { idempotencyKey: key }) });
const state = (r: SnapshotRecord) => counterBehavior.decode(r.state);
const o = { prefix: "p", appliedSeq: 0 };

describe("replayRecord", () => {
  it("applies the inputs in order on top of the record, with the position it is given", () => {
    const base: SnapshotRecord = { appliedSeq: 7, wakeAt: undefined, state: counterBehavior.encode({ id: "c", n: 2, sum: 3, ticks: 1 }) };
    const r = replayRecord(counterBehavior, "c", base, [add(4, 8), add(5, 9), { kind: "wake", payload: { at: 99 }, acceptedAt: 0, seq: 10, index: 0 }], o);
    expect(state(r)).toEqual({ id: "c", n: 4, sum: 12, ticks: 1, wakeAt: 99 } satisfies CounterState);
    expect(r).toMatchObject({ appliedSeq: 0, wakeAt: 99 });
  });

  it("starts a twin without a record fresh, and an erasure starts it over, forgetting its keyed commands", () => {
    const r = replayRecord(counterBehavior, "c", undefined, [add(1, 1, "k"), { kind: ERASE_KIND, payload: null, acceptedAt: 0, seq: 2, index: 0 }, add(2, 3, "k")], o);
    expect(state(r)).toMatchObject({ n: 1, sum: 2 });
    expect(r.commands?.map((c) => [c.key, c.seq])).toEqual([["k", 3]]);
  });

  it("applies a keyed command once (remembered in the record or earlier in the replay), and a refused input changes nothing", () => {
    const first = replayRecord(counterBehavior, "c", undefined, [add(1, 1, "k1"), add(1, 2, "k1"), { kind: "bogus", payload: {}, acceptedAt: 0, seq: 3, index: 0 }], o);
    expect(state(first)).toMatchObject({ n: 1, sum: 1 });
    expect(decode(first.commands![0]!.reply)).toEqual({ n: 1 });
    const again = replayRecord(counterBehavior, "c", first, [add(1, 4, "k1"), add(10, 5, "k2")], o);
    expect(state(again)).toMatchObject({ n: 2, sum: 11 });
    expect(again.commands?.map((c) => c.key)).toEqual(["k1", "k2"]);
  });
});
