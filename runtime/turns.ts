// Cooperative turns for the shard loops of a process (consuming, capturing a commit's cut): a loop that
// finds its slice used waits in one FIFO, and one waiter is let in per event-loop iteration, with a
// fresh slice. So timers and I/O run between any two turns however many shards are busy — with a slice
// per loop, 64 busy shards resumed in the same phase (a socket read, the commit timers) still blocked
// for seconds. The slice is shared by the loops waiting when a turn begins (down to 1 ms each), so a
// loop with fresh input — a shard with a new alert behind 64 shards catching up on a backlog — waits
// about one slice in all, not a slice per busy loop ahead of it.

/** Longest a shard loop runs before timers and I/O get a turn (ms), shared by the loops waiting. */
const YIELD_AFTER_MS = 10;
/** Shortest turn (ms): below it, turns cost more than they share. */
const MIN_SLICE_MS = 1;

let sliceStart = performance.now();
let sliceMs = YIELD_AFTER_MS;
const turns: Array<() => void> = [];
let granting = false;

/** True once the current turn's slice is used (also when no turn was granted lately). */
export function sliceUsed(): boolean {
  return performance.now() - sliceStart >= sliceMs;
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
  sliceMs = Math.max(MIN_SLICE_MS, YIELD_AFTER_MS / (turns.length + 1));
  if (turns.length > 0) setImmediate(grantTurn);
  else granting = false;
  next?.();
}
