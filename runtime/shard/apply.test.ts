// The apply decisions over the entity table, without NATS: what is skipped as a redelivery, what a
// keyed command replays or is refused for, and what applying changes.
import { describe, expect, it } from "vitest";
import { counterBehavior, type CounterState } from "../../test/runtime/counter-behavior.ts";
import { decode, encode } from "../codec.ts";
import { ERASE_KIND, type EntityBehavior } from "../entity.ts";
import type { InputItem } from "../envelope.ts";
import type { DeadLetterSink } from "../dead-letter.ts";
import type { LogFn } from "../log.ts";
import { RuntimeMetrics } from "../metrics.ts";
import type { EntityReply } from "../protocol.ts";
import { applyBatch, applyItem, decide, rememberCommand, type ApplyEnv } from "./apply.ts";
import { EntityTable } from "./entities.ts";
import type { Slot } from "./slot.ts";
import { WakeUps } from "./timers.ts";

const ctx = { prefix: "t", acceptedAt: 1000 };
/** The slot holds `bytes` as its snapshot read (a fetch's outcome, without the bucket). */
const heldBytes = (slot: Slot, bytes: Uint8Array) => slot.setBytes(bytes, 0, bytes.length);
const add = (entityId: string, v: number, extra: Partial<InputItem> = {}): InputItem => ({ type: "counter", entityId, kind: "add", payload: { v }, ...extra });

function table(): EntityTable {
  return new EntityTable(new Map([["counter", counterBehavior]]), new RuntimeMetrics({ defaultMetrics: false }), 600_000);
}

/** An entity of `t` that applied `item` at `seq` (activated and applied as the runner does). */
function applied(t: EntityTable, item: InputItem, seq: number) {
  const slot = t.slotFor(item.type, item.entityId)!;
  t.activate(slot, 0);
  const result = applyItem(t, slot, item, seq, ctx);
  if (item.idempotencyKey !== undefined) {
    const d = decide(t, slot, item, seq);
    rememberCommand(t, slot, item.idempotencyKey, seq, result.reply, d.do === "apply" ? d.fingerprint : undefined);
  }
  return slot;
}

describe("decide", () => {
  it("refuses an entity type nobody serves", () => {
    const t = table();
    const item = { ...add("a", 1), type: "nope" };
    expect(decide(t, t.slotFor("nope", "a"), item, 1)).toEqual({ do: "refuse", code: "AIRTWIN_ERR_ENTITY_UNKNOWN", message: 'unknown entity type "nope"' });
  });

  it("applies a new entity's first input, and skips a message at or below its appliedSeq (a redelivery)", () => {
    const t = table();
    const slot = t.slotFor("counter", "a")!;
    expect(decide(t, slot, add("a", 1), 5)).toEqual({ do: "apply", fingerprint: undefined });
    applied(t, add("a", 1), 5);
    expect(decide(t, slot, add("a", 1), 4).do).toBe("skip");
    expect(decide(t, slot, add("a", 1), 6).do).toBe("apply");
  });

  it("applies every item of the message being applied for one entity, but not the same message redelivered", () => {
    const t = table();
    const slot = applied(t, add("a", 1), 7);
    // the next item of message 7 for the same entity
    expect(decide(t, slot, add("a", 2), 7).do).toBe("apply");
    // after a restart the slot comes from its snapshot: appliedSeq 7, nothing being applied
    slot.applyingSeq = 0;
    expect(decide(t, slot, add("a", 2), 7).do).toBe("skip");
  });

  it("refuses an invalid idempotency key", () => {
    const t = table();
    const d = decide(t, t.slotFor("counter", "a"), add("a", 1, { idempotencyKey: " padded" }), 1);
    expect(d).toMatchObject({ do: "refuse", code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID" });
  });

  it("replays a keyed command applied before, refuses another command under the same key", () => {
    const t = table();
    const slot = applied(t, add("a", 3, { idempotencyKey: "k1" }), 1);
    const again = decide(t, slot, add("a", 3, { idempotencyKey: "k1" }), 2);
    expect(again.do).toBe("replay");
    if (again.do === "replay") expect({ seq: again.earlier.seq, reply: decode(again.earlier.reply) }).toEqual({ seq: 1, reply: { n: 1 } });
    expect(decide(t, slot, add("a", 4, { idempotencyKey: "k1" }), 2)).toMatchObject({ do: "refuse", code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED" });
    expect(decide(t, slot, add("a", 4, { idempotencyKey: "k2" }), 2).do).toBe("apply");
  });

  it("changes nothing it decides on", () => {
    const t = table();
    const slot = applied(t, add("a", 3, { idempotencyKey: "k1" }), 1);
    const before = { state: structuredClone(slot.state), appliedSeq: slot.appliedSeq, changed: t.changed.size };
    for (const seq of [0, 1, 2]) decide(t, slot, add("a", 9, { idempotencyKey: "k1" }), seq);
    expect({ state: slot.state, appliedSeq: slot.appliedSeq, changed: t.changed.size }).toEqual(before);
  });
});

describe("applyItem", () => {
  it("sets the new state and appliedSeq and marks the entity dirty", () => {
    const t = table();
    const slot = applied(t, add("a", 5), 3);
    expect(slot.state).toMatchObject({ n: 1, sum: 5 });
    expect([slot.appliedSeq, slot.applyingSeq, slot.dirty, t.changed.has(slot)]).toEqual([3, 3, true, true]);
  });

  it("erasing gives a fresh state and forgets the entity's keyed commands", () => {
    const t = table();
    const slot = applied(t, add("a", 5, { idempotencyKey: "k1" }), 3);
    applied(t, { type: "counter", entityId: "a", kind: ERASE_KIND, payload: null }, 4);
    expect(slot.state).toEqual({ id: "a", n: 0, sum: 0, ticks: 0 });
    expect(decide(t, slot, add("a", 5, { idempotencyKey: "k1" }), 5).do).toBe("apply");
  });

  it("leaves the entity as it was when the behaviour throws", () => {
    const t = table();
    const slot = applied(t, add("a", 5), 3);
    expect(() => applyItem(t, slot, { type: "counter", entityId: "a", kind: "unknown", payload: null }, 4, ctx)).toThrow("unknown kind");
    expect([slot.appliedSeq, (slot.state as CounterState).n]).toEqual([3, 1]);
  });
});

describe("applyBatch", () => {
  function env(t: EntityTable) {
    const replies: Array<[string, EntityReply]> = [];
    const published: string[] = [];
    const logged: string[] = [];
    const log: LogFn = (_level, msg) => logged.push(msg);
    const letters: Array<Parameters<DeadLetterSink["record"]>[0]> = [];
    const e: ApplyEnv = {
      table: t,
      wakeUps: new WakeUps(new RuntimeMetrics({ defaultMetrics: false })),
      metrics: new RuntimeMetrics({ defaultMetrics: false }),
      log,
      shard: 0,
      prefix: "t",
      publish: (outputs) => published.push(...outputs.map((o) => o.id)),
      reply: (subject, reply) => replies.push([subject, reply]),
      deadLetters: { record: (letter) => letters.push(letter) },
    };
    return { e, replies, published, logged, letters };
  }

  it("answers each item as decided, applies the rest in order, counts what it skipped and replayed", async () => {
    const t = table();
    const { e, replies, published, logged, letters } = env(t);
    const items: InputItem[] = [
      ...Array.from({ length: 10 }, (_, i) => add("a", i)),
      add("b", 1, { replyTo: "r.1", idempotencyKey: "k" }),
      add("b", 1, { replyTo: "r.2", idempotencyKey: "k" }),
      add("b", 2, { replyTo: "r.3", idempotencyKey: "k" }),
      { type: "nope", entityId: "c", kind: "add", payload: {}, replyTo: "r.4" },
      { type: "counter", entityId: "b", kind: "bad", payload: {}, replyTo: "r.5" },
    ];
    const batch = { acceptedAt: 1000, items };
    const slots = items.map((i) => t.slotFor(i.type, i.entityId));
    applyBatch(e, batch, slots, 1, 0);
    expect(replies).toEqual([
      ["r.1", { ok: true, value: { n: 1 }, seq: 1 }],
      ["r.2", { ok: true, value: { n: 1 }, seq: 1, replayed: true }],
      ["r.3", { ok: false, error: { code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED", message: expect.any(String) } }],
      ["r.4", { ok: false, error: { code: "AIRTWIN_ERR_ENTITY_UNKNOWN", message: 'unknown entity type "nope"' } }],
      ["r.5", { ok: false, error: { code: "AIRTWIN_ERR_ENTITY_APPLY", message: expect.any(String) } }],
    ]);
    expect(published).toEqual(["a:10"]);
    // the unknown type and the item the behaviour refused are dead letters; the refused keys are only answers
    expect(logged).toEqual([]);
    expect(letters.map((l) => [l.reason, l.index, l.entity, l.subject, l.seq])).toEqual([
      ["unknown-type", 13, { type: "nope", id: "c", kind: "add" }, "t.in.0", 1],
      ["refused", 14, { type: "counter", id: "b", kind: "bad" }, "t.in.0", 1],
    ]);
    expect(letters[1]!.error).toMatch(/unknown kind/);
    expect(t.slotFor("counter", "a")!.state).toMatchObject({ n: 10, sum: 45 });

    // the same message again, to the same entities in memory (its ack wait ran out before a commit
    // acknowledged it): every item of a served type skipped and not answered again; the unknown type is
    // refused again (it has no entity to remember it)
    applyBatch(e, batch, slots, 1, 0);
    expect(replies.slice(5)).toEqual([replies[3]]);
    expect(letters.map((l) => l.reason)).toEqual(["unknown-type", "refused", "unknown-type"]);
    expect((await e.metrics.redeliveriesSkipped.get()).values[0]!.value).toBe(14);
    expect((await e.metrics.commandsReplayed.get()).values[0]!.value).toBe(1);
    expect((await e.metrics.itemsApplied.get()).values.map((v) => [v.labels.type, v.value])).toEqual([["counter", 11]]);
  });

  it("skips a redelivery of the last message an entity applied, in the same runner (nothing being applied once it is)", async () => {
    const t = table();
    const { e } = env(t);
    const first = { acceptedAt: 1000, items: [add("a", 1), add("a", 2)] };
    const last = { acceptedAt: 1001, items: [add("a", 4), add("b", 8)] };
    const slotsOf = (b: { items: InputItem[] }) => b.items.map((i) => t.slotFor(i.type, i.entityId));
    applyBatch(e, first, slotsOf(first), 1, 0);
    applyBatch(e, last, slotsOf(last), 2, 0);
    // both redelivered, in order, as nats-server sends them again: neither applies twice
    applyBatch(e, first, slotsOf(first), 1, 0);
    applyBatch(e, last, slotsOf(last), 2, 0);
    expect([t.slotFor("counter", "a")!.state, t.slotFor("counter", "b")!.state]).toMatchObject([
      { n: 3, sum: 7 },
      { n: 1, sum: 8 },
    ]);
    expect((await e.metrics.redeliveriesSkipped.get()).values[0]!.value).toBe(4);
  });

  it("gives each applied input its log position, and publishes what the behaviour emits on erase", () => {
    const positions: string[] = [];
    const behavior: EntityBehavior<CounterState> = {
      ...counterBehavior,
      apply(state, kind, payload, ctx) {
        positions.push(`${ctx.seq}.${ctx.index}`);
        return counterBehavior.apply(state, kind, payload, ctx);
      },
      erased: (id, ctx) => [{ id: `${id}:erased:${ctx.seq}.${ctx.index}`, subject: `${ctx.prefix}.out.gone.${id}`, payload: null }],
    };
    const t = new EntityTable(new Map([["counter", behavior]]), new RuntimeMetrics({ defaultMetrics: false }), 600_000);
    const { e, published } = env(t);
    const items: InputItem[] = [add("a", 1), add("b", 1), { type: "counter", entityId: "a", kind: ERASE_KIND, payload: null }, add("a", 2)];
    applyBatch(e, { acceptedAt: 0, items }, items.map((i) => t.slotFor(i.type, i.entityId)), 7, 0);
    expect(positions).toEqual(["7.0", "7.1", "7.3"]);
    expect(published).toEqual(["a:erased:7.2"]);
  });

  describe("erasing", () => {
    const erase = (entityId: string, extra: Partial<InputItem> = {}): InputItem => ({ type: "counter", entityId, kind: ERASE_KIND, payload: null, ...extra });
    function erasing() {
      let created = 0;
      const behavior: EntityBehavior<CounterState> = {
        ...counterBehavior,
        create: (id) => (created++, counterBehavior.create(id)),
        erased: (id, ctx) => [{ id: `${id}:erased:${ctx.seq}.${ctx.index}`, subject: `${ctx.prefix}.out.gone.${id}`, payload: null }],
      };
      const t = new EntityTable(new Map([["counter", behavior]]), new RuntimeMetrics({ defaultMetrics: false }), 600_000);
      return { t, ...env(t), created: () => created };
    }

    it("leaves a blank entity blank: nothing created, resident or dirty, yet outputs, reply, appliedSeq and metrics as for any erase", async () => {
      const { t, e, replies, published, created } = erasing();
      const slot = t.slotFor("counter", "new")!;
      applyBatch(e, { acceptedAt: 0, items: [erase("new", { replyTo: "r.1" })] }, [slot], 4, 0);
      expect(created()).toBe(0);
      expect([slot.state, t.residentCount, slot.dirty, t.changed.size, t.hasUnsaved]).toEqual([undefined, 0, false, 0, false]);
      // applied, and nothing being applied once the message is: a redelivery of it is skipped
      expect([slot.appliedSeq, slot.applyingSeq]).toEqual([4, 0]);
      expect(published).toEqual(["new:erased:4.0"]);
      expect(replies).toEqual([["r.1", { ok: true, value: { erased: true }, seq: 4 }]]);
      expect((await e.metrics.itemsApplied.get()).values.map((v) => [v.labels.kind, v.value])).toEqual([[ERASE_KIND, 1]]);
      expect((await e.metrics.residentEntities.get()).values[0]!.value).toBe(0);
      // redelivered: skipped; the next input of the same message applies to a fresh state
      slot.applyingSeq = 0;
      expect(decide(t, slot, erase("new"), 4).do).toBe("skip");
      applyBatch(e, { acceptedAt: 0, items: [add("new", 3)] }, [slot], 5, 0);
      expect(slot.state).toEqual({ id: "new", n: 1, sum: 3, ticks: 0 });
      expect(created()).toBe(1);
    });

    it("an erase followed by an input in the same message: the input applies to a fresh state", () => {
      const { t, e } = erasing();
      const items = [erase("x"), add("x", 2)];
      const slots = items.map((i) => t.slotFor(i.type, i.entityId));
      applyBatch(e, { acceptedAt: 0, items }, slots, 9, 0);
      expect(slots[0]!.state).toEqual({ id: "x", n: 1, sum: 2, ticks: 0 });
      expect([slots[0]!.appliedSeq, slots[0]!.dirty]).toEqual([9, true]);
    });

    it("erases an entity that is not blank as before: a fresh state, resident and dirty", () => {
      const cases: Array<[string, (t: EntityTable, slot: ReturnType<EntityTable["slotFor"]> & object) => void]> = [
        ["resident", (t, slot) => void applied(t, add(slot.entityId, 1), 1)],
        ["stored, passivated", (_t, slot) => void ((slot.persisted = true), (slot.appliedSeq = 1))],
        ["snapshot read", (_t, slot) => void ((slot.persisted = true), heldBytes(slot, counterBehavior.encode({ id: slot.entityId, n: 2, sum: 2, ticks: 0 })))],
        ["with keyed commands", (t, slot) => t.remember(slot, { key: "k", seq: 1, reply: encode(null), fingerprint: undefined })],
        ["with a wake-up", (_t, slot) => void (slot.wakeAt = 5000)],
      ];
      for (const [name, prepare] of cases) {
        const { t, e, published, created } = erasing();
        const slot = t.slotFor("counter", "a")!;
        prepare(t, slot);
        const before = created();
        applyBatch(e, { acceptedAt: 0, items: [erase("a")] }, [slot], 7, 0);
        expect({ name, state: slot.state, dirty: slot.dirty, changed: t.changed.has(slot), resident: t.residentCount, created: created() - before }).toEqual({
          name,
          state: { id: "a", n: 0, sum: 0, ticks: 0 },
          dirty: true,
          changed: true,
          resident: 1,
          // the fresh state, after activation created one (not resident before, no bytes to decode)
          created: name === "resident" || name === "snapshot read" ? 1 : 2,
        });
        expect([slot.appliedSeq, t.commandKeys.has(slot), published]).toEqual([7, false, ["a:erased:7.0"]]);
      }
    });

    it("a keyed erase of a blank entity is stored, so its key is remembered", () => {
      const { t, e } = erasing();
      const slot = t.slotFor("counter", "k")!;
      applyBatch(e, { acceptedAt: 0, items: [erase("k", { idempotencyKey: "once" })] }, [slot], 2, 0);
      expect([slot.dirty, t.commandKeys.get(slot)?.find("once")?.seq]).toEqual([true, 2]);
    });

    it("a blank entity whose erased outputs throw is left as it was, and the item is a dead letter", () => {
      const t = new EntityTable(new Map([["counter", { ...counterBehavior, erased: () => { throw new Error("no outputs"); } }]]), new RuntimeMetrics({ defaultMetrics: false }), 600_000);
      const { e, letters, replies } = env(t);
      const slot = t.slotFor("counter", "b")!;
      applyBatch(e, { acceptedAt: 0, items: [erase("b", { replyTo: "r" })] }, [slot], 3, 0);
      expect([slot.appliedSeq, slot.state, letters.map((l) => l.reason), replies[0]![1].ok]).toEqual([0, undefined, ["refused"], false]);
    });
  });

  it("schedules the wake-up an applied input asks for", () => {
    const t = table();
    const { e } = env(t);
    const item: InputItem = { type: "counter", entityId: "w", kind: "wake", payload: { at: 5000 } };
    const slots = [t.slotFor("counter", "w")];
    applyBatch(e, { acceptedAt: 0, items: [item] }, slots, 1, 0);
    expect(e.wakeUps.takeDue(4999, 10)).toEqual([]);
    expect(e.wakeUps.takeDue(5000, 10)).toEqual(slots);
  });

  it("packs a keyed command's reply when it is applied", () => {
    const t = table();
    const { e } = env(t);
    const slots = [t.slotFor("counter", "k")];
    applyBatch(e, { acceptedAt: 0, items: [add("k", 1, { idempotencyKey: "x" })] }, slots, 1, 0);
    expect(t.commandKeys.get(slots[0]!)!.find("x")!.reply).toEqual(encode({ n: 1 }));
  });
});
