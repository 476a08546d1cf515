// The per-device rate limit of ingest: a fixed window per device, counted in memory (one gateway's
// view; each gateway limits what it receives). Synchronous on purpose: it runs on every ingest request,
// and @fastify/rate-limit, which it replaces with the same semantics, spent ~4% of the gateway's CPU
// per request in its chain of promises.

/** Tunables of {@link DeviceRateLimiter}. */
export interface DeviceRateLimitOptions {
  /** Requests one device may make per window. */
  max: number;
  /** Length of a window (ms); a device's first request opens it. */
  windowMs: number;
  /** Devices whose windows are kept; beyond, the window that opened first is forgotten. */
  cacheSize: number;
}

interface Window {
  count: number;
  startMs: number;
}

export class DeviceRateLimiter {
  /** In the order the windows opened (a new window is re-inserted), so the first one is the oldest. */
  private readonly windows = new Map<string, Window>();

  constructor(private readonly options: DeviceRateLimitOptions) {}

  /** Counts a request of the device; 0 when it is allowed, else the ms until its window ends. */
  hit(deviceId: string, nowMs: number = Date.now()): number {
    const { max, windowMs, cacheSize } = this.options;
    let w = this.windows.get(deviceId);
    if (w === undefined || w.startMs + windowMs <= nowMs) {
      if (w !== undefined) this.windows.delete(deviceId);
      w = { count: 0, startMs: nowMs };
      this.windows.set(deviceId, w);
      if (this.windows.size > cacheSize) this.windows.delete(this.windows.keys().next().value!);
    }
    w.count++;
    return w.count > max ? w.startMs + windowMs - nowMs : 0;
  }
}
