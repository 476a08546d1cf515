// The per-device rate limit of ingest: a fixed window per device, counted in memory (one gateway's
// view; each gateway limits what it receives). Synchronous on purpose: it runs on every ingest request,
// and @fastify/rate-limit, which it replaces with the same semantics, spent ~4% of the gateway's CPU
// per request in its chain of promises.
// The windows live in an LRU cache (lru-cache: O(1) per request at any size). A Map evicting its first
// key cost ~35 µs a request once a fleet outgrew it: V8 leaves a deleted entry's slot in place until the
// table is rebuilt, so `keys().next()` walked every window evicted before (docs/BENCHMARKS.md,
// "Gathering requests into fewer messages, and §2 met", item 1).
import { LRUCache } from "lru-cache";

/** Tunables of {@link DeviceRateLimiter}. */
export interface DeviceRateLimitOptions {
  /** Requests one device may make per window. */
  max: number;
  /** Length of a window (ms); a device's first request opens it. */
  windowMs: number;
  /** Devices whose windows are kept; beyond, the least recently counted device's window is forgotten. */
  cacheSize: number;
}

interface Window {
  count: number;
  startMs: number;
}

export class DeviceRateLimiter {
  private readonly windows: LRUCache<string, Window>;

  constructor(private readonly options: DeviceRateLimitOptions) {
    this.windows = new LRUCache({ max: options.cacheSize });
  }

  /** Counts a request of the device; 0 when it is allowed, else the ms until its window ends. */
  hit(deviceId: string, nowMs: number = Date.now()): number {
    const { max, windowMs } = this.options;
    let w = this.windows.get(deviceId);
    if (w === undefined) {
      w = { count: 0, startMs: nowMs };
      this.windows.set(deviceId, w);
    } else if (w.startMs + windowMs <= nowMs) {
      w.count = 0; // the window ended: this request opens the next one
      w.startMs = nowMs;
    }
    w.count++;
    return w.count > max ? w.startMs + windowMs - nowMs : 0;
  }
}
