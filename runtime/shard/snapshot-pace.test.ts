// The pace's arithmetic: the larger of Little's rate and the rate that spreads the eligible ones over
// the oldest one's time left; an allowance that carries at most one snapshot from a commit to the next.
import { describe, expect, it } from "vitest";
import { SnapshotPace } from "./snapshot-pace.ts";

describe("SnapshotPace", () => {
  it("asks waiting ÷ interval in service, and spreads a group over the time its oldest has left", () => {
    const pace = new SnapshotPace(60_000);
    // in service: half of 600 waiting are past half the interval, the oldest at the interval: both rates 10/s
    expect(pace.ratePerMs({ waiting: 600, eligible: 300, oldestWaitedMs: 60_000 }) * 1000).toBeCloseTo(10);
    // a group of 600 that started together, 60 s old: 600 over the 30 s left
    expect(pace.ratePerMs({ waiting: 600, eligible: 600, oldestWaitedMs: 60_000 }) * 1000).toBeCloseTo(20);
    // none eligible yet: Little's rate alone
    expect(pace.ratePerMs({ waiting: 600, eligible: 0, oldestWaitedMs: 10_000 }) * 1000).toBeCloseTo(10);
    // past the longest wait: the time left counts as 1 ms (they are written whatever the pace anyway)
    expect(pace.ratePerMs({ waiting: 5, eligible: 5, oldestWaitedMs: 95_000 })).toBe(5);
    expect(pace.ratePerMs({ waiting: 0, eligible: 0, oldestWaitedMs: 0 })).toBe(0);
  });

  it("accrues between commits and gives it out one by one, carrying at most one from a commit to the next", () => {
    const pace = new SnapshotPace(60_000);
    const state = { waiting: 600, eligible: 0, oldestWaitedMs: 0 }; // 10/s
    pace.accrue(0, state);
    expect(pace.take()).toBe(false); // nothing before the first interval
    pace.accrue(500, state);
    const takeAll = () => {
      let n = 0;
      while (pace.take()) n++;
      return n;
    };
    expect(takeAll()).toBe(5);
    // commits where nothing was taken (the waiting ones too young) save no burst for later
    for (let t = 1500; t <= 30_500; t += 1000) pace.accrue(t, state);
    pace.accrue(31_500, state);
    expect(takeAll()).toBe(11); // this commit's 10 and one carried
    // commits held up for a minute (a backlog): the minute's rate is owed, and paid at once
    pace.accrue(91_500, state);
    expect(takeAll()).toBe(600);
  });
});
