// Entity types for runtime tests that need CPU-bound work: each counts its inputs, and either applying
// (`busyApply`, `ms` from the input's payload) or encoding (`busyEncode`, a fixed time) keeps the CPU
// busy like a message of thousands of readings or a large twin's snapshot.
import type { EntityBehavior } from "../../runtime/entity.ts";

export interface Count {
  n: number;
}

/** Keeps the CPU busy for `ms` of wall-clock time. */
export function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

function counting(type: string, applyMs: (payload: unknown) => number, encodeMs: number): EntityBehavior<Count> {
  return {
    type,
    create: () => ({ n: 0 }),
    apply(state, _kind, payload) {
      spin(applyMs(payload));
      state.n++;
      return { state, outputs: [], reply: { n: state.n } };
    },
    query: (state) => ({ ...state }),
    nextWakeAt: () => undefined,
    tick: (state) => ({ state, outputs: [] }),
    encode(state) {
      spin(encodeMs);
      return new Uint8Array([state.n & 0xff, state.n >> 8]);
    },
    decode: (b) => ({ n: b[0]! + (b[1]! << 8) }),
  };
}

/** Type "busy": applying an input `{ ms }` takes `ms` of CPU. */
export const busyApply = counting("busy", (payload) => (payload as { ms?: number } | null)?.ms ?? 0, 0);

/** Type "slow": encoding a snapshot takes `ms` of CPU. */
export const busyEncode = (ms: number): EntityBehavior<Count> => counting("slow", () => 0, ms);
