// The per-device fixed window of ingest: max requests per window, a fresh window after it ends, devices
// counted apart, and a bounded number of windows kept (the oldest forgotten first).
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

  it("keeps at most cacheSize windows, forgetting the one that opened first", () => {
    const l = new DeviceRateLimiter({ max: 1, windowMs: 60_000, cacheSize: 2 });
    expect(l.hit("a", 0)).toBe(0);
    expect(l.hit("b", 1)).toBe(0);
    expect(l.hit("a", 2)).toBeGreaterThan(0); // a's window is still there
    expect(l.hit("c", 3)).toBe(0); // evicts a (opened first)
    expect(l.hit("b", 4)).toBeGreaterThan(0);
    expect(l.hit("a", 5)).toBe(0); // forgotten: a fresh window
  });
});
