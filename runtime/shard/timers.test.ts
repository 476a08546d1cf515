// Wake-ups: the heap pops in time order; an entity is woken once however many times it was
// re-scheduled, never before its latest wanted time, and not at all once cancelled.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { counterBehavior } from "../../test/runtime/counter-behavior.ts";
import { RuntimeMetrics } from "../metrics.ts";
import { EntityTable } from "./entities.ts";
import { WakeQueue, WakeUps } from "./timers.ts";

describe("WakeQueue", () => {
  it("pops every entry in time order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 })), (times) => {
        const q = new WakeQueue<number>();
        times.forEach((t, i) => q.push(t, i));
        const out: number[] = [];
        for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.at);
        expect(out).toEqual([...times].sort((a, b) => a - b));
      }),
    );
  });
});

describe("WakeUps", () => {
  const setup = () => {
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    const table = new EntityTable(new Map([["counter", counterBehavior]]), metrics, 600_000);
    return { wakeUps: new WakeUps(metrics), slot: (id: string) => table.slotFor("counter", id)!, metrics };
  };

  it("wakes an entity once at its latest time, however often it moved later", () => {
    const { wakeUps, slot } = setup();
    const a = slot("a");
    for (let at = 100; at <= 1000; at += 100) wakeUps.schedule(a, at);
    expect(wakeUps.size).toBe(1); // a later time adds no entry
    expect(wakeUps.takeDue(999, 10)).toEqual([]);
    expect(wakeUps.takeDue(1000, 10)).toEqual([a]);
    expect(a.wakeAt).toBeUndefined();
    expect(wakeUps.takeDue(10_000, 10)).toEqual([]);
  });

  it("an earlier time supersedes the queued entry; a cancelled wake-up fires nothing", () => {
    const { wakeUps, slot } = setup();
    const a = slot("a");
    const b = slot("b");
    wakeUps.schedule(a, 1000);
    wakeUps.schedule(a, 500);
    wakeUps.schedule(b, 200);
    wakeUps.schedule(b, undefined);
    expect(wakeUps.takeDue(2000, 10)).toEqual([a]);
    expect(wakeUps.size).toBe(0);
  });

  it("takes at most `max` per round, the earliest first", async () => {
    const { wakeUps, slot, metrics } = setup();
    const slots = Array.from({ length: 5 }, (_, i) => slot(`e${i}`));
    slots.forEach((s, i) => wakeUps.schedule(s, 50 - i));
    expect(wakeUps.takeDue(100, 2)).toEqual([slots[4], slots[3]]);
    expect(wakeUps.takeDue(100, 10)).toEqual(slots.slice(0, 3).reverse());
    wakeUps.schedule(slots[0]!, 10);
    wakeUps.clear();
    expect((await metrics.timersQueued.get()).values[0]!.value).toBe(0);
  });
});
