// The checkpoint a commit writes: before the first input of a twin whose snapshot waits, never past what
// this owner applied, never back on a redelivery; `applied` kept from a predecessor during a replay.
// (A recording stand-in for the fenced writer: these are the committer's own numbers; the writes
// themselves run against nats-server in test/runtime/shard/.)
import { afterEach, describe, expect, it, vi } from "vitest";
import { counterBehavior, type CounterState } from "../../test/runtime/counter-behavior.ts";
import { decode } from "../codec.ts";
import { RuntimeMetrics } from "../metrics.ts";
import type { PipelinedPublisher } from "../publisher.ts";
import { CHECKPOINT_KEY, type FencedWriter } from "../snapshot-store.ts";
import { Committer, commitPhaseMs } from "./commit.ts";
import { EntityTable } from "./entities.ts";
import { defaultShardRunnerOptions } from "./options.ts";

function setup(snapshotIntervalMs = 60_000, snapshotMaxInputs = defaultShardRunnerOptions.snapshotMaxInputs, snapshotPacing = false) {
  /** Where the stream's reader stands for the shard while nothing of it waits (shard-input.ts's idleThrough). */
  const reader: { idleThrough: number | undefined } = { idleThrough: undefined };
  const metrics = new RuntimeMetrics({ defaultMetrics: false });
  const table = new EntityTable(new Map([["counter", counterBehavior]]), metrics, 600_000);
  const puts: Array<{ key: string; value: Uint8Array }> = [];
  const writer = { failed: undefined, put: (key: string, value: Uint8Array) => (puts.push({ key, value }), Promise.resolve(puts.length)) };
  const committer = new Committer({
    shard: 0,
    epoch: 1,
    deps: { publisher: {} as PipelinedPublisher, metrics, options: { ...defaultShardRunnerOptions, snapshotIntervalMs, snapshotMaxInputs, snapshotPacing } },
    table,
    isAborted: () => false,
    fail: (err) => {
      throw err;
    },
    idleThrough: () => reader.idleThrough,
    inputPending: () => 0,
  });
  committer.writer = writer as unknown as FencedWriter;
  const checkpoints = () => puts.filter((p) => p.key === CHECKPOINT_KEY).map((p) => decode<{ seq: number; applied?: number }>(p.value));
  const written = () => puts.filter((p) => p.key !== CHECKPOINT_KEY).map((p) => p.key);
  /** Applies input `seq` to counter `id` (as apply.ts marks it) and notes the message. */
  const apply = (id: string, seq: number) => {
    const slot = table.slotFor("counter", id)!;
    table.activate(slot);
    slot.state = counterBehavior.apply(slot.state as CounterState, "add", { v: 1 }, { prefix: "p", acceptedAt: 0, seq, index: 0 }).state;
    slot.appliedSeq = seq;
    table.markDirty(slot, seq);
    committer.noteApplied(seq);
  };
  return { committer, table, checkpoints, written, apply, reader };
}

describe("committer", () => {
  it("keeps the checkpoint before a waiting twin's first unsaved input; writing every twin moves it to the last applied", async () => {
    const { committer, checkpoints, written, apply } = setup();
    apply("a", 5);
    apply("b", 6);
    apply("a", 7);
    await committer.commitNow();
    expect(written()).toEqual([]);
    expect(checkpoints().at(-1)).toEqual({ seq: 4, epoch: 1, applied: 7 });
    await committer.commitNow(true);
    expect(written().sort()).toEqual(["counter.a", "counter.b"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 7, epoch: 1 });
  });

  it("writes every twin at every commit with snapshotIntervalMs 0", async () => {
    const { committer, checkpoints, written, apply } = setup(0);
    apply("a", 3);
    await committer.commitNow();
    expect(written()).toEqual(["counter.a"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 3, epoch: 1 });
  });

  it("a message below the last applied one does not move the checkpoint back", async () => {
    const { committer, checkpoints, apply } = setup(0);
    apply("a", 10);
    await committer.commitNow();
    committer.noteApplied(8);
    await committer.commitNow();
    expect(checkpoints().map((c) => c.seq)).toEqual([10]);
  });

  it("an idle shard's checkpoint follows the reader past other shards' messages, never past a waiting twin's first unsaved input", async () => {
    const { committer, checkpoints, apply, reader } = setup(0);
    reader.idleThrough = 40; // nothing of this shard in the stream's first 40 messages
    await committer.commitNow();
    expect(checkpoints().at(-1)).toEqual({ seq: 40, epoch: 1 });
    apply("a", 41);
    reader.idleThrough = undefined; // the runner holds a message: the cut is what it applied
    await committer.commitNow();
    expect(checkpoints().at(-1)).toEqual({ seq: 41, epoch: 1 });
    reader.idleThrough = 90;
    await committer.commitNow();
    expect(checkpoints().at(-1)).toEqual({ seq: 90, epoch: 1 });

    const deferred = setup(60_000);
    deferred.apply("b", 5);
    deferred.reader.idleThrough = 70;
    await deferred.committer.commitNow();
    expect(deferred.checkpoints().at(-1)).toEqual({ seq: 4, epoch: 1, applied: 70 });
  });

  it("a replay keeps its predecessor's applied, and the checkpoint never passes what it re-applied", async () => {
    const { committer, checkpoints, apply } = setup(0);
    // started from { seq: 4, applied: 9 }: inputs 5..9 are replayed, their outputs stored already
    committer.committedSeq = 4;
    committer.appliedCommitted = 9;
    apply("a", 5);
    await committer.commitNow();
    expect(checkpoints().at(-1)).toEqual({ seq: 5, epoch: 1, applied: 9 });
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("committer, waiting snapshots", () => {
  it("writes waiting twins once their interval is up, oldest first, and moves the checkpoint past each", async () => {
    const { committer, checkpoints, written, apply } = setup(60);
    apply("a", 1);
    apply("b", 2);
    await committer.commitNow(); // a and b wait from here
    await sleep(40);
    apply("c", 3);
    apply("a", 4); // a's first unsaved input stays 1
    await committer.commitNow(); // c waits from here; a and b not due
    expect(written()).toEqual([]);
    expect(checkpoints().map((c) => c.seq)).toEqual([0, 0]);
    await sleep(30); // a and b due, c not
    await committer.commitNow();
    expect(written()).toEqual(["counter.a", "counter.b"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 2, epoch: 1, applied: 4 });
    await sleep(40);
    await committer.commitNow();
    expect(written()).toEqual(["counter.a", "counter.b", "counter.c"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 4, epoch: 1 });
    expect(committer.clean).toBe(true);
  });

  it("a waiting twin is written at the commit after its inputs reach snapshotMaxInputs, or a wake-up changes it", async () => {
    const { committer, table, checkpoints, written, apply } = setup(60_000, 3);
    apply("a", 1);
    apply("b", 2);
    await committer.commitNow();
    expect(committer.clean).toBe(false); // both wait
    apply("a", 3);
    apply("a", 4); // a's third input
    await committer.commitNow();
    expect(written()).toEqual(["counter.a"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 1, epoch: 1, applied: 4 }); // b's first unsaved input is 2
    table.markDirty(table.slotFor("counter", "b")!); // a wake-up: not replayable
    await committer.commitNow();
    expect(written()).toEqual(["counter.a", "counter.b"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 4, epoch: 1 });
  });

  it("a twin whose first unsaved input is older than the newest waiting one's is written at once, so the checkpoint never passes it", async () => {
    const { committer, checkpoints, written, apply } = setup();
    apply("a", 10);
    await committer.commitNow(); // a waits with input 10
    apply("b", 5); // a redelivered or out-of-order input: older than a's
    await committer.commitNow();
    expect(written()).toEqual(["counter.b"]);
    expect(checkpoints().at(-1)).toEqual({ seq: 9, epoch: 1, applied: 10 });
  });

  it("writing everything takes the waiting twins too; a commit with nothing new writes nothing", async () => {
    const { committer, checkpoints, written, apply } = setup();
    for (let i = 1; i <= 3000; i++) apply(`t${i}`, i);
    await committer.commitNow();
    await committer.commitNow();
    expect(written()).toEqual([]);
    expect(checkpoints()).toHaveLength(1); // the second commit had nothing to write
    await committer.commitNow(true);
    expect(new Set(written()).size).toBe(3000);
    expect(checkpoints().at(-1)).toEqual({ seq: 3000, epoch: 1 });
    expect(committer.clean).toBe(true);
    // the queue starts over cleanly: new waiting twins keep the checkpoint before them again
    apply("t1", 3001);
    await committer.commitNow();
    expect(checkpoints().at(-1)).toEqual({ seq: 3000, epoch: 1, applied: 3001 });
  });

  it("passivation asks for a waiting twin's snapshot instead of dropping it unsaved; the round after the write drops it", async () => {
    const { committer, table, written, apply } = setup();
    apply("a", 1);
    apply("b", 2);
    await committer.commitNow();
    expect(table.passivateLeastRecent(2)).toBe(0); // both unsaved: kept
    expect(table.residentCount).toBe(2);
    await committer.commitNow();
    expect(written().sort()).toEqual(["counter.a", "counter.b"]);
    expect(table.passivateLeastRecent(2)).toBe(2);
    expect(committer.clean).toBe(true);
  });

  describe("paced (snapshotPacing)", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /**
     * 60 twins given an input together, then a commit every second for 100 s (performance.now() faked);
     * `again` gives every waiting twin another input each second from 60 s on. The snapshots written at
     * each commit, by second.
     */
    async function cohort(snapshotPacing: boolean, again = false) {
      vi.useFakeTimers({ toFake: ["performance"] });
      vi.advanceTimersByTime(5000); // performance.now() 0 is "not waiting" to a slot; a process is never there
      const { committer, table, written, checkpoints, apply } = setup(60_000, defaultShardRunnerOptions.snapshotMaxInputs, snapshotPacing);
      let seq = 0;
      for (let i = 0; i < 60; i++) apply(`t${i}`, ++seq);
      await committer.commitNow();
      const perSecond: number[] = [0];
      for (let s = 1; s <= 100; s++) {
        vi.advanceTimersByTime(1000);
        if (again && s >= 60) for (let i = 0; i < 60; i++) if (table.slotFor("counter", `t${i}`)!.unsavedSince !== 0) apply(`t${i}`, ++seq);
        const before = written().length;
        await committer.commitNow();
        perSecond.push(written().length - before);
      }
      return { perSecond, written, checkpoints, committer };
    }

    it("writes twins that started waiting together evenly over ½–1½ intervals, not all at one", async () => {
      const unpaced = await cohort(false);
      expect(unpaced.perSecond[60]).toBe(60); // the wave
      const { perSecond, written, checkpoints, committer } = await cohort(true);
      expect(perSecond.slice(0, 30).every((n) => n === 0)).toBe(true); // none before half the interval
      expect(perSecond.slice(0, 91).reduce((a, b) => a + b, 0)).toBe(60); // every one by one and a half
      expect(new Set(written()).size).toBe(60);
      expect(Math.max(...perSecond)).toBeLessThanOrEqual(3);
      expect(perSecond.filter((n) => n > 0).length).toBeGreaterThanOrEqual(40);
      expect(checkpoints().at(-1)).toEqual({ seq: 60, epoch: 1 });
      expect(committer.clean).toBe(true);
    });

    it("a twin changed again past its interval keeps its place in the pace instead of being written at once", async () => {
      const { perSecond, written } = await cohort(true, true);
      expect(Math.max(...perSecond)).toBeLessThanOrEqual(3);
      expect(perSecond.slice(0, 91).reduce((a, b) => a + b, 0)).toBe(60);
      expect(new Set(written()).size).toBe(60);
    });
  });
});

describe("commitPhaseMs", () => {
  it("spreads the commits of a node's shards over the interval instead of one burst", () => {
    for (const shards of [8, 64, 256]) {
      const phases = Array.from({ length: shards }, (_, s) => commitPhaseMs(s, 1000));
      for (const p of phases) expect(p >= 0 && p < 1000).toBe(true);
      // any tenth of the interval holds about a tenth of the shards, never a burst of them
      const tenths = new Array<number>(10).fill(0);
      for (const p of phases) tenths[Math.floor(p / 100)]!++;
      expect(Math.max(...tenths)).toBeLessThanOrEqual(Math.ceil(shards / 10) + 2);
    }
    // a subset of shards (a node owning every other one) is spread too
    const odd = Array.from({ length: 32 }, (_, i) => commitPhaseMs(2 * i + 1, 1000));
    const tenths = new Array<number>(10).fill(0);
    for (const p of odd) tenths[Math.floor(p / 100)]!++;
    expect(Math.max(...tenths)).toBeLessThanOrEqual(6);
  });
});

describe("committer, batched outputs", () => {
  it("publishes a cut's batched outputs as one message at its commit, confirmed before the snapshots are written", async () => {
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    const table = new EntityTable(new Map([["counter", counterBehavior]]), metrics, 600_000);
    const events: string[] = [];
    const publisher = {
      publishNow: (subject: string, data: Uint8Array, o: { msgId: string }) => {
        events.push(`publish ${subject} ${o.msgId} ${JSON.stringify(decode(data))}`);
        return Promise.resolve({ stream: "OUT", seq: events.length, duplicate: false });
      },
    };
    const writer = { failed: undefined, claim: "c1", put: (key: string) => (events.push(`put ${key}`), Promise.resolve(1)) };
    const committer = new Committer({
      shard: 3,
      epoch: 1,
      deps: { publisher: publisher as unknown as PipelinedPublisher, metrics, options: { ...defaultShardRunnerOptions, snapshotIntervalMs: 0 } },
      table,
      isAborted: () => false,
      fail: (err) => {
        throw err;
      },
      idleThrough: () => undefined,
      inputPending: () => 0,
    });
    committer.writer = writer as unknown as FencedWriter;
    const slot = table.slotFor("counter", "a")!;
    table.activate(slot);
    slot.appliedSeq = 1;
    table.markDirty(slot, 1);
    committer.noteApplied(1);
    committer.publishOutputs([
      { id: "a:1", subject: "p.out.agg.a", payload: { id: "a:1" }, batch: "p.out.aggs" },
      { id: "a:alert", subject: "p.out.alert.a", payload: { id: "a:alert" } },
      { id: "a:2", subject: "p.out.agg.a", payload: { id: "a:2" }, batch: "p.out.aggs" },
    ]);
    // the alert goes out at once; the batched ones wait for the commit
    expect(events).toEqual(['publish p.out.alert.a a:alert {"id":"a:alert"}']);
    await committer.commitNow();
    expect(events.slice(1)).toEqual(['publish p.out.aggs.3 p.out.aggs.3:c1:0 {"items":[{"id":"a:1"},{"id":"a:2"}]}', "put counter.a", `put ${CHECKPOINT_KEY}`]);
    await committer.commitNow();
    expect(events).toHaveLength(4); // nothing left to publish
  });
});
