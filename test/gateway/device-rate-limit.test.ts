// The per-device fixed window of ingest: max requests per window, a fresh window after it ends, devices
// counted apart, and a bounded number of windows kept (the least recently counted forgotten first).
import { describe, expect, it } from "vitest";
import { DeviceRateLimiter } from "../../gateways/http/device-rate-limit.ts";

describe("device rate limiter", () => {
  it("allows max requests per window, then answers the ms until the window ends", () => {
    const l = new DeviceRateLimiter({ max: 3, windowMs: 1000, cacheSize: 10 });
    expect([l.hit("a", 0), l.hit("a", 100), l.hit("a", 200)]).toEqual([0, 0, 0]);
    expect(l.hit("a", 400)).toBe(600);
    expect(l.hit("b", 400)).toBe(0); // another device has its own window
    expect(l.hit("a", 999)).toBe(1);
    expect(l.hit("a", 1000)).toBe(0); // a new window opens with this request
    expect([l.hit("a", 1500), l.hit("a", 1999)]).toEqual([0, 0]);
    expect(l.hit("a", 1999)).toBe(1);
  });

  it("keeps at most cacheSize windows, forgetting the least recently counted", () => {
    const l = new DeviceRateLimiter({ max: 1, windowMs: 60_000, cacheSize: 2 });
    expect(l.hit("a", 0)).toBe(0);
    expect(l.hit("b", 1)).toBe(0);
    expect(l.hit("a", 2)).toBeGreaterThan(0); // a's window is still there, and a was counted last
    expect(l.hit("c", 3)).toBe(0); // evicts b (counted least recently)
    expect(l.hit("a", 4)).toBeGreaterThan(0);
    expect(l.hit("b", 5)).toBe(0); // forgotten: a fresh window
  });

  it("keeps limiting the devices it still holds while many more come and go", () => {
    // a fleet larger than the cache: every other device passes through once; the hot one stays limited
    const l = new DeviceRateLimiter({ max: 2, windowMs: 60_000, cacheSize: 1000 });
    expect([l.hit("hot", 0), l.hit("hot", 0)]).toEqual([0, 0]);
    for (let i = 0; i < 50_000; i++) {
      expect(l.hit(`d${i}`, 1 + i / 1000)).toBe(0);
      if (i % 500 === 0) expect(l.hit("hot", 1 + i / 1000)).toBeGreaterThan(0);
    }
  });
});
