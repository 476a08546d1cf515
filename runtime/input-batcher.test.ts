// The gateway's micro-batching (input-batcher.ts): when a key's batch leaves. The publish is the
// caller's (the runtime client's, over NATS, in test/runtime); here it records what left and when, and
// its PubAcks are settled by hand, so the policy is checked alone: idle → at the end of the turn; while
// the key's previous message awaits its PubAck → when it is confirmed, or after lingerMs; full → at
// once; and never sooner than gatherMs after the key's previous message, unless it weighs gatherWeight.
import { describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import type { InputItem } from "./envelope.ts";
import { InputBatcher, type InputBatcherOptions } from "./input-batcher.ts";
import type { PubAck } from "./publisher.ts";

interface Sent {
  key: number;
  ids: string[];
  at: number;
  confirm(): void;
  refuse(err: Error): void;
}

const item = (id: string): InputItem => ({ type: "t", entityId: id, kind: "k", payload: null });

function batcher(options: InputBatcherOptions) {
  const sent: Sent[] = [];
  let seq = 0;
  const b = new InputBatcher((key, items) => {
    let confirm!: () => void;
    let refuse!: (err: Error) => void;
    const ack = new Promise<PubAck>((resolve, reject) => {
      confirm = () => resolve({ stream: "s", seq: ++seq, duplicate: false });
      refuse = reject;
    });
    sent.push({ key, ids: items.map((i) => i.entityId), at: performance.now(), confirm, refuse });
    return [{ count: items.length, ack }];
  }, options);
  const add = (key: number, id: string, weight?: number) => b.add(key, item(id), weight);
  return { b, sent, add };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("input batcher", () => {
  it("sends an idle key's batch at the end of the turn, gathering what arrived in it", async () => {
    const { sent, add } = batcher({ lingerMs: 50, maxBatchItems: 100 });
    const acks = [add(0, "a"), add(0, "b"), add(1, "c")];
    expect(sent).toHaveLength(0);
    await turn();
    expect(sent.map((s) => [s.key, s.ids])).toEqual([[0, ["a", "b"]], [1, ["c"]]]);
    sent.forEach((s) => s.confirm());
    expect((await Promise.all(acks)).map((a) => a.seq)).toEqual([1, 1, 2]);
  });

  it("holds a key's next batch until its previous message is confirmed, then sends it", async () => {
    const { sent, add } = batcher({ lingerMs: 1000, maxBatchItems: 100 });
    void add(0, "a");
    await turn();
    const later = [add(0, "b"), add(0, "c"), add(1, "other key")];
    await sleep(20);
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["other key"]]);
    sent[0]!.confirm();
    await turn();
    await turn();
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["other key"], ["b", "c"]]);
    sent.slice(1).forEach((s) => s.confirm());
    await Promise.all(later);
  });

  it("sends after lingerMs when the previous PubAck does not come", async () => {
    const { sent, add } = batcher({ lingerMs: 30, maxBatchItems: 100 });
    void add(0, "a");
    await turn();
    const start = performance.now();
    void add(0, "b");
    await sleep(10);
    expect(sent).toHaveLength(1);
    await sleep(40);
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["b"]]);
    expect(sent[1]!.at - start).toBeGreaterThanOrEqual(30 - 1);
  });

  it("sends a full batch at once, waiting or not", async () => {
    const { sent, add } = batcher({ lingerMs: 1000, maxBatchItems: 3 });
    void add(0, "a");
    await turn();
    for (const id of ["b", "c", "d"]) void add(0, id);
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["b", "c", "d"]]);
  });

  it("with gatherMs, never sends a key's messages closer together than that, confirmed or not", async () => {
    const { sent, add } = batcher({ lingerMs: 2, maxBatchItems: 100, gatherMs: 40 });
    void add(0, "a");
    await turn();
    sent[0]!.confirm();
    void add(0, "b");
    void add(1, "x"); // another key: its own schedule
    await sleep(10);
    void add(0, "c");
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["x"]]);
    await sleep(50);
    expect(sent.map((s) => s.ids)).toEqual([["a"], ["x"], ["b", "c"]]);
    expect(sent[2]!.at - sent[0]!.at).toBeGreaterThanOrEqual(40 - 1);
  });

  it("with gatherWeight, sends a batch that weighs that much without waiting out the gap", async () => {
    const { sent, add } = batcher({ lingerMs: 2, maxBatchItems: 100, gatherMs: 1000, gatherWeight: 50 });
    void add(0, "first", 10);
    await turn();
    sent[0]!.confirm();
    void add(0, "light", 10);
    void add(0, "unweighed"); // weight 1
    await sleep(20);
    expect(sent.map((s) => s.ids)).toEqual([["first"]]); // 11 of 50: the gap holds it
    void add(0, "heavy", 39);
    await turn();
    expect(sent.map((s) => s.ids)).toEqual([["first"], ["light", "unweighed", "heavy"]]);
    expect(sent[1]!.at - sent[0]!.at).toBeLessThan(500);
    sent[1]!.confirm();
    void add(0, "after", 1); // the next light batch waits out the gap from the heavy one's departure
    await sleep(30);
    expect(sent).toHaveLength(2);
  });

  it("rejects each request of a message that was refused, and of a batch whose publish threw", async () => {
    const { sent, add } = batcher({ lingerMs: 0, maxBatchItems: 100 });
    const first = add(0, "a");
    await turn();
    sent[0]!.refuse(new Error("no stream"));
    await expect(first).rejects.toThrow("no stream");
    const thrower = new InputBatcher(() => {
      throw new Error("too large");
    }, { lingerMs: 0, maxBatchItems: 100 });
    const p = thrower.add(0, item("z"));
    await expect(p).rejects.toThrow("too large");
  });
});
