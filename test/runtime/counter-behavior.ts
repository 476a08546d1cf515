// A minimal entity type for runtime tests: counts and sums values, asks for wake-ups, emits an output
// every 10th value. Small enough that any difference from a reference is the runtime's fault.
import { Packr } from "msgpackr";
import type { EntityBehavior } from "../../runtime/entity.ts";

export interface CounterState {
  id: string;
  n: number;
  sum: number;
  ticks: number;
  wakeAt?: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export const counterBehavior: EntityBehavior<CounterState> = {
  type: "counter",
  create: (id) => ({ id, n: 0, sum: 0, ticks: 0 }),
  apply(state, kind, payload, ctx) {
    const p = payload as { v?: number; at?: number };
    if (kind === "add") {
      state.n++;
      state.sum += p.v ?? 0;
      const outputs = state.n % 10 === 0 ? [{ id: `${state.id}:${state.n}`, subject: `${ctx.prefix}.out.counter.${state.id}`, payload: { id: state.id, n: state.n } }] : [];
      return { state, outputs, reply: { n: state.n }, units: 1 };
    }
    if (kind === "wake") {
      state.wakeAt = p.at;
      return { state, outputs: [], reply: { wakeAt: p.at } };
    }
    throw new Error(`unknown kind ${kind}`);
  },
  query: (state) => ({ ...state }),
  nextWakeAt: (state) => state.wakeAt,
  tick(state, now, ctx) {
    state.ticks++;
    delete state.wakeAt;
    return { state, outputs: [{ id: `${state.id}:tick:${state.ticks}`, subject: `${ctx.prefix}.out.tick.${state.id}`, payload: { now } }] };
  },
  encode: (state) => packr.pack(state),
  decode: (bytes) => packr.unpack(bytes) as CounterState,
};
