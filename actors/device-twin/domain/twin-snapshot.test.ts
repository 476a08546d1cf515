import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { applyInput, createTwin } from "./twin.ts";
import type { TwinInput, TwinState } from "./twin.ts";
import { decodeTwin, encodeTwin, releaseTwin, twinEqual } from "./twin-snapshot.ts";
import type { Reading } from "./types.ts";

const T0 = Date.UTC(2024, 2, 30, 22, 0, 0);
const MIN = 60_000;
const ids = ["default-pm", "default-co2", "default-voc", "default-allpollu", "u1", "u2"];

/** Inputs as deltas, turned into absolute times by `materialize` (so the log is ordered like a real one). */
type Step =
  | { kind: "readings"; items: Array<{ dt: number; co2?: number; pm?: number; tmp?: number }>; lagMs: number }
  | { kind: "tick"; afterMs: number }
  | { kind: "command"; command: unknown };

const readingItem = fc.record(
  {
    dt: fc.oneof(fc.constant(0), fc.constant(-3 * MIN), fc.integer({ min: 1, max: 40 * MIN })),
    co2: fc.integer({ min: 300, max: 2000 }),
    pm: fc.double({ min: 0, max: 80, noNaN: true }),
    tmp: fc.double({ min: -40, max: 85, noNaN: true }),
  },
  { requiredKeys: ["dt"] },
);

const ruleArb = fc.record({
  id: fc.constantFrom(...ids),
  channel: fc.constantFrom("co2" as const, "pm" as const),
  direction: fc.constant("above" as const),
  enter: fc.integer({ min: 30, max: 1500 }),
  exit: fc.integer({ min: 0, max: 29 }),
  minDurationMs: fc.constantFrom(0, MIN, 10 * MIN),
  clearDurationMs: fc.constantFrom(0, MIN, 10 * MIN),
});

const commandArb = fc.oneof(
  ruleArb.map((rule) => ({ type: "putRule", rule })),
  fc.constantFrom(...ids, "nope").map((ruleId) => ({ type: "deleteRule", ruleId })),
  fc.record({
    id: fc.constantFrom("s1", "s2", "s3"),
    provider: fc.constantFrom("webhook", "push", "thermostat"),
    match: fc.record({ kinds: fc.constant(["event.start", "offline"]), channels: fc.constant(["co2", "device"]) }, { requiredKeys: [] }),
    target: fc.constant("https://example.com/x"),
  }).map((subscription) => ({ type: "subscribe", subscription })),
  fc.constantFrom("s1", "s2", "zz").map((subscriptionId) => ({ type: "unsubscribe", subscriptionId })),
  fc.constantFrom("co2", "voc").map((channel) => ({ type: "recalibrate", channel })),
  fc.constant({ type: "reset" }),
  fc.constant({ type: "putRule", rule: { id: "bad" } }),
  fc.constant({ type: "bogus" }),
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("readings" as const), items: fc.array(readingItem, { minLength: 1, maxLength: 8 }), lagMs: fc.integer({ min: 0, max: 30 * MIN }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("tick" as const), afterMs: fc.integer({ min: 0, max: 40 * MIN }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("command" as const), command: commandArb }) },
);

function materialize(steps: Step[]): TwinInput[] {
  let t = T0;
  let wall = T0;
  return steps.map((s): TwinInput => {
    if (s.kind === "tick") return { type: "tick", now: (wall += s.afterMs) };
    if (s.kind === "command") return { type: "command", command: s.command as never, at: wall };
    const rs: Reading[] = s.items.map(({ dt, ...values }) => ({ t: (t = Math.max(T0, t + dt)), ...values }));
    wall = Math.max(wall, t) + s.lagMs;
    return { type: "readings", readings: rs, receivedAt: wall };
  });
}

function run(inputs: TwinInput[], state: TwinState = createTwin("dev")) {
  const outputs = inputs.flatMap((i) => applyInput(state, i).outputs);
  return { state, outputs };
}

describe("twin snapshot", () => {
  it("decodeTwin(encodeTwin(s)) equals s and continues exactly like s, for arbitrary input logs", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 30 }), fc.array(stepArb, { maxLength: 10 }), (before, after) => {
        const inputs = materialize([...before, ...after]);
        const { state } = run(inputs.slice(0, before.length));
        const bytes = encodeTwin(state);
        const restored = decodeTwin(bytes);
        expect(twinEqual(restored, state)).toBe(true);
        // (msgpackr caches a DataView on the buffers it reads, so compare the bytes alone)
        expect([...encodeTwin(restored)]).toEqual([...bytes]);
        const rest = inputs.slice(before.length);
        expect(run(rest, restored).outputs).toEqual(run(rest, state).outputs);
        expect(twinEqual(restored, state)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("a released twin's buffer goes to the next twin decoded, and nothing of what it held shows there", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 30 }), fc.array(stepArb, { maxLength: 30 }), (first, second) => {
        const a = decodeTwin(encodeTwin(run(materialize(first)).state));
        const b = run(materialize(second), createTwin("other")).state;
        const bBytes = encodeTwin(b);
        const aStats = a.stats;
        releaseTwin(a);
        const b2 = decodeTwin(bBytes);
        expect(b2.stats).toBe(aStats); // the very buffer a held
        expect(twinEqual(b2, b)).toBe(true);
        expect([...encodeTwin(b2)]).toEqual([...bBytes]);
        // and a twin created fresh on a released buffer is a fresh twin
        releaseTwin(b2);
        expect(twinEqual(createTwin("other"), decodeTwin(encodeTwin(createTwin("other"))))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("a released twin throws on use instead of reading another twin's statistics; a second release does nothing", () => {
    const a = decodeTwin(encodeTwin(run(materialize([{ kind: "readings", items: [{ dt: 0, co2: 500 }], lagMs: 0 }])).state));
    releaseTwin(a);
    releaseTwin(a);
    const b = createTwin("b");
    const c = createTwin("c");
    expect(b.stats).not.toBe(c.stats);
    expect(() => applyInput(a, { type: "readings", readings: [{ t: T0 + MIN, co2: 600 }], receivedAt: T0 + MIN })).toThrow(RangeError);
    expect(() => encodeTwin(a)).toThrow(RangeError);
  });

  it("keeps subscriptions of built-in and custom providers, and webhook secrets", () => {
    const twin = createTwin("dev");
    const secret = `whsec_${btoa("s".repeat(32))}`;
    const subs = [
      { id: "hook", provider: "webhook", match: { kinds: ["event.start", "report.day"] }, target: "https://example.com/h", secret },
      { id: "chat", provider: "chat-app", match: {}, target: "room-7" },
      { id: "mail", provider: "email", match: { kinds: ["report.week"] }, target: "ana@example.org" },
    ];
    for (const subscription of subs) {
      const r = applyInput(twin, { type: "command", command: { type: "subscribe", subscription } as never, at: 0 });
      expect(r.result?.ok).toBe(true);
    }
    const restored = decodeTwin(encodeTwin(twin));
    expect(restored.subscriptions).toEqual(subs);
    expect(twinEqual(restored, twin)).toBe(true);
  });

  it("a fresh twin is small", () => {
    const s = createTwin("dev");
    expect(encodeTwin(s).length).toBeLessThan(120);
    expect(twinEqual(decodeTwin(encodeTwin(s)), s)).toBe(true);
  });

  it("twinEqual sees differences outside the stats", () => {
    const a = createTwin("dev");
    const b = createTwin("dev");
    b.late = 1;
    expect(twinEqual(a, b)).toBe(false);
    expect(twinEqual(a, createTwin("other"))).toBe(false);
  });

  it("rejects an unknown version with SNAPSHOT_VERSION", () => {
    const packr = new Packr({ useRecords: false });
    const snap = packr.unpack(encodeTwin(createTwin("dev"))) as Record<string, unknown>;
    expect(() => decodeTwin(packr.pack({ ...snap, v: 3 }))).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_VERSION" }));
  });

  it.each([
    ["empty bytes", new Uint8Array()],
    ["random bytes", new Uint8Array([0xc1, 0xff, 0x00, 0x13])],
    ["a string", new Packr({ useRecords: false }).pack("hello")],
    ["no version", new Packr({ useRecords: false }).pack({ id: "dev" })],
  ])("rejects %s with SNAPSHOT_CORRUPT", (_name, bytes) => {
    expect(() => decodeTwin(bytes)).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT" }));
  });

  it.each([
    ["unknown field", { x: 1 }],
    ["bad device id", { id: "a b" }],
    ["bad counters", { c: [1, -1, 0] }],
    ["bad presence", { p: [null, 1] }],
    ["bad rules", { r: [[["r", "co2", 0, 1, 2, 0, 0]], []] }],
    ["events of an unknown rule", { e: [["ghost"], [1, 0, 0, 0, 1, 5, 5, 0, 0]] }],
    ["bad subscriptions", { u: [["s", 0, "not a url", null, null, null]] }],
    ["stats not bytes", { s: "x" }],
  ])("rejects a snapshot with %s", (_name, patch) => {
    const packr = new Packr({ useRecords: false });
    const snap = packr.unpack(encodeTwin(createTwin("dev"))) as Record<string, unknown>;
    expect(() => decodeTwin(packr.pack({ ...snap, ...patch }))).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT" }));
  });
});
