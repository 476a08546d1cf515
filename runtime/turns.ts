// Cooperative turns for the shard loops of a process (consuming, capturing a commit's cut): a loop that
// finds its slice used waits in one FIFO, and one waiter is let in per event-loop iteration, with a
// fresh slice. So timers and I/O run between any two turns however many shards are busy — with a slice
// per loop, 64 busy shards resumed in the same phase (a socket read, the commit timers) still blocked
// for seconds.

/** Longest a shard loop runs before timers and I/O get a turn (ms). */
const YIELD_AFTER_MS = 10;

let sliceStart = performance.now();
const turns: Array<() => void> = [];
let granting = false;

/** True once the current turn's slice is used (also when no turn was granted lately). */
export function sliceUsed(): boolean {
  return performance.now() - sliceStart >= YIELD_AFTER_MS;
}

/** Resolves at this loop's next turn (after timers and I/O had theirs). */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => {
    turns.push(resolve);
    if (!granting) {
      granting = true;
      setImmediate(grantTurn);
    }
  });
}

function grantTurn(): void {
  const next = turns.shift();
  sliceStart = performance.now();
  if (turns.length > 0) setImmediate(grantTurn);
  else granting = false;
  next?.();
}
