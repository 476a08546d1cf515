// How late timers run while a test keeps the event loop busy: the longest gap between ticks of a 5 ms interval.
/** Runs a 5 ms interval and records the longest gap between its ticks: how long timers had to wait. */
export function timerGaps(): { readonly worstMs: number; stop(): void } {
  let last = performance.now();
  let worstMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstMs = Math.max(worstMs, now - last);
    last = now;
  }, 5);
  return {
    get worstMs() {
      return worstMs;
    },
    stop: () => clearInterval(timer),
  };
}
