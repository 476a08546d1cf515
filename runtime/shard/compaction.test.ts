// A compact twin (compaction.ts) keeps its dirty mark and unsaved bookkeeping; the commit that writes
// its snapshot writes its compact bytes, encoded once, which are its state as of the cut; its next use
// decodes it; passivation drops its bytes only once stored. (A recording stand-in for the fenced writer,
// as in commit.test.ts; test/runtime/shard/compaction.test.ts runs it against nats-server.)
import { describe, expect, it } from "vitest";
import { counterBehavior, type CounterState } from "../../test/runtime/counter-behavior.ts";
import { decodeRecord, type FencedWriter } from "../snapshot-store.ts";
import { RuntimeMetrics } from "../metrics.ts";
import type { PipelinedPublisher } from "../publisher.ts";
import { Committer } from "./commit.ts";
import { compactIdle } from "./compaction.ts";
import { EntityTable } from "./entities.ts";
import { defaultShardRunnerOptions } from "./options.ts";

function setup() {
  const metrics = new RuntimeMetrics({ defaultMetrics: false });
  let encodes = 0;
  const released: CounterState[] = [];
  const counting = { ...counterBehavior, encode: (s: CounterState) => (encodes++, counterBehavior.encode(s)), release: (s: CounterState) => void released.push(s) };
  const table = new EntityTable(new Map([["counter", counting]]), metrics, 600_000, 1000);
  const puts = new Map<string, Uint8Array>();
  const writer = { failed: undefined, put: (key: string, value: Uint8Array) => (puts.set(key, value), Promise.resolve(puts.size)) };
  const committer = new Committer({
    shard: 0,
    epoch: 1,
    deps: { publisher: {} as PipelinedPublisher, metrics, options: { ...defaultShardRunnerOptions, snapshotIntervalMs: 60_000 } },
    table,
    isAborted: () => false,
    fail: (err) => {
      throw err;
    },
    idleThrough: () => undefined,
    inputPending: () => 0,
  });
  committer.writer = writer as unknown as FencedWriter;
  const apply = (id: string, seq: number, v: number) => {
    const slot = table.slotFor("counter", id)!;
    table.activate(slot);
    slot.state = counterBehavior.apply(slot.state as CounterState, "add", { v }, { prefix: "p", acceptedAt: 0, seq, index: 0 }).state;
    slot.appliedSeq = seq;
    table.markDirty(slot, seq);
    committer.noteApplied(seq);
    return slot;
  };
  const stored = (id: string) => counterBehavior.decode(decodeRecord(puts.get(`counter.${id}`)!).state);
  return { table, committer, metrics, apply, stored, encodes: () => encodes, released };
}

describe("compact twins", () => {
  it("a twin compacted while its snapshot waits stays dirty; the commit writes its compact bytes without encoding again", async () => {
    const { table, committer, metrics, apply, stored, encodes } = setup();
    const a = apply("a", 1, 5);
    apply("b", 2, 7);
    await committer.commitNow(); // both wait
    const before = { dirty: a.dirty, unsavedSeq: a.unsavedSeq, unsavedInputs: a.unsavedInputs, unsavedSince: a.unsavedSince };
    expect(compactIdle(table, 0, Date.now() + 1)).toBe(2);
    expect([table.residentCount, table.compactCount, a.state]).toEqual([0, 2, undefined]);
    expect({ dirty: a.dirty, unsavedSeq: a.unsavedSeq, unsavedInputs: a.unsavedInputs, unsavedSince: a.unsavedSince }).toEqual(before);
    expect(table.compactBytes).toBe(a.bytes!.length + table.slotFor("counter", "b")!.bytes!.length);
    expect((await metrics.compactEntities.get()).values[0]?.value).toBe(2);
    // passivation keeps them (unsaved) and asks the next commit for them
    expect(table.passivateIdle(0)).toBe(0);
    expect(encodes()).toBe(2);
    await committer.commitNow();
    expect(encodes()).toBe(2); // the compact bytes as they were
    expect(stored("a")).toEqual({ id: "a", n: 1, sum: 5, ticks: 0 });
    expect(stored("b")).toEqual({ id: "b", n: 1, sum: 7, ticks: 0 });
    expect(committer.clean).toBe(true);
    // the next input decodes it
    apply("a", 3, 1);
    expect(a.state).toEqual({ id: "a", n: 2, sum: 6, ticks: 0 });
    expect([a.bytes, table.residentCount, table.compactCount]).toEqual([undefined, 1, 1]);
    // stored now: passivation drops b's bytes (a is dirty again: kept)
    expect(table.passivateIdle(0)).toBe(0 + 1);
    expect([table.compactCount, table.compactBytes, (await metrics.compactBytes.get()).values[0]?.value]).toEqual([0, 0, 0]);
  });

  it("compact bytes are a copy: later encodings (msgpackr reuses its buffer) do not change them", () => {
    const { table, apply } = setup();
    const slots = Array.from({ length: 200 }, (_, i) => apply(`t${i}`, i + 1, i));
    compactIdle(table, 0, Date.now() + 1, 1000);
    for (let i = 0; i < 2000; i++) counterBehavior.encode({ id: "x".repeat(i % 50), n: i, sum: -i, ticks: i });
    for (const [i, slot] of slots.entries()) expect(counterBehavior.decode(slot.bytes!)).toEqual({ id: `t${i}`, n: 1, sum: i, ticks: 0 });
  });

  it("hands each decoded state it drops (compacted, passivated) to its behaviour once to reuse; not on clear", async () => {
    const { table, committer, apply, released } = setup();
    const a = apply("a", 1, 5);
    const b = apply("b", 2, 7);
    const states = [a.state, b.state];
    await committer.commitNow(true); // stored: b may be passivated decoded
    table.compact(a);
    expect(released).toEqual([states[0]]);
    expect(released[0]).toBe(states[0]);
    expect(table.passivateIdle(-1_000_000)).toBe(2); // a's bytes, b's decoded state
    expect(released.length).toBe(2);
    expect(released[1]).toBe(states[1]);
    const c = apply("c", 3, 1);
    table.clear(); // a query in hand after a planned stop may still read c's state
    expect(released.length).toBe(2);
    expect(c.state).toEqual({ id: "c", n: 1, sum: 1, ticks: 0 });
  });

  it("compacts the least recently used first, only those idle long enough, at most a batch per sweep", () => {
    const { table } = setup();
    const now = Date.now();
    for (let i = 0; i < 5; i++) table.activate(table.slotFor("counter", `t${i}`)!, now - 10_000 + i * 1000);
    expect(compactIdle(table, 7500, now, 1)).toBe(1);
    expect(compactIdle(table, 7500, now)).toBe(2); // t1, t2; t3 (7 s) and t4 are younger
    expect(table.compactCount).toBe(3);
    expect(table.residentCount).toBe(2);
  });
});
