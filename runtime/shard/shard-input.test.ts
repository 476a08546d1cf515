// The queue between a stream's reader and a shard's runner: how far the shard's input counts as handled
// (an idle shard's commit takes its checkpoint there), that a stop never lets it pass what was queued
// and not applied, and the time its wake-ups fire by while input waits.
import { describe, expect, it } from "vitest";
import { ShardInput, type ShardDelivery } from "./shard-input.ts";

const delivery = (seq: number, storedAt = 0, pending = 0): ShardDelivery => ({ seq, acceptedAt: 0, items: [], indexes: undefined, storedAt, pending });

describe("shard input", () => {
  it("is handled through the reader's position only while nothing waits or is in hand", async () => {
    const input = new ShardInput(0, 5, () => undefined);
    expect(input.idleThrough).toBe(5); // the checkpoint
    input.pass(6, 0, 0);
    expect(input.idleThrough).toBe(6);
    input.push(delivery(7));
    input.pass(8, 0, 0);
    expect(input.idleThrough).toBeUndefined();
    expect(input.unapplied, "7 queued").toBe(1);
    expect(await input.next()).toMatchObject({ seq: 7 });
    expect(input.idleThrough, "7 in hand").toBeUndefined();
    expect(input.unapplied, "7 in hand: the lag, and the commit deferred").toBe(1);
    const waiting = input.next(); // 7 applied; waits for more
    expect(input.idleThrough).toBe(8);
    expect(input.unapplied).toBe(0);
    input.push(delivery(9)); // straight into the waiting runner's hand
    expect(await waiting).toMatchObject({ seq: 9 });
    expect(input.idleThrough).toBeUndefined();
    input.done();
    expect(input.idleThrough).toBe(9);
  });

  it("a stop drops what waits and goes back before it; the delivery in hand still counts once applied", async () => {
    let closed = 0;
    const input = new ShardInput(0, 0, () => closed++);
    for (const seq of [3, 4]) input.push(delivery(seq));
    input.pass(5, 0, 0);
    input.push(delivery(6));
    expect(await input.next()).toMatchObject({ seq: 3 });
    input.close();
    expect(closed).toBe(1);
    expect(input.idleThrough, "3 in hand").toBeUndefined();
    expect(await input.next(), "nothing more after the stop").toBeUndefined();
    expect(input.idleThrough, "4 was never applied").toBe(3);
    input.push(delivery(7));
    input.pass(8, 0, 0);
    expect(input.idleThrough, "nothing moves after the stop").toBe(3);
  });

  it("the reader waits while the queue is full, until the runner has taken half", async () => {
    const input = new ShardInput(0, 0, () => undefined);
    for (let seq = 1; seq <= 4096; seq++) input.push(delivery(seq));
    const room = input.whenRoom();
    expect(room).toBeInstanceOf(Promise);
    let roomy = false;
    void room!.then(() => (roomy = true));
    for (let i = 0; i < 2047; i++) await input.next();
    await Promise.resolve();
    expect(roomy).toBe(false);
    await input.next();
    await Promise.resolve();
    expect(roomy).toBe(true);
  });

  it("wake-ups fire by the time the shard's input is handled through, the wall clock once nothing waits", async () => {
    const NOW = 1_000_000;
    const input = new ShardInput(0, 5, () => undefined);
    expect(input.wakeClock(NOW), "the reader has not said where the shard stands").toBe(0);
    input.behind(3); // the reader's consumer: 3 messages to read
    expect(input.wakeClock(NOW), "behind, nothing read yet").toBe(0);
    input.push(delivery(6, 100, 2));
    expect(input.wakeClock(NOW), "6 queued, nothing applied").toBe(0);
    await input.next();
    expect(input.wakeClock(NOW), "6 in hand").toBe(0);
    const waiting = input.next(); // 6 applied
    expect(input.wakeClock(NOW)).toBe(100);
    input.pass(7, 1, 200); // nothing for the shard, nothing of it waiting
    expect(input.wakeClock(NOW)).toBe(200);
    input.push(delivery(8, 300, 0)); // into the waiting hand: the last message of the stream
    await waiting;
    expect(input.wakeClock(NOW), "8 in hand").toBe(200);
    input.done();
    expect(input.wakeClock(NOW), "everything applied and nothing pending: the wall clock").toBe(NOW);
    input.pass(9, 4, 400);
    expect(input.wakeClock(NOW), "more in the stream").toBe(400);
    expect(input.wakeClock(350), "never ahead of the wall clock").toBe(350);
  });

  it("a reader with nothing to read lets the wall clock run at once", () => {
    const input = new ShardInput(0, 5, () => undefined);
    input.behind(0);
    expect(input.wakeClock(42)).toBe(42);
  });
});
