// Idempotency keys without NATS: what a valid key is, the per-entity bound (oldest forgotten first), and
// how keys travel in input items and snapshot records — records and items without keys unchanged.
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { COMMAND_KEYS_PER_ENTITY, CommandKeys, idempotencyKeyProblem } from "./command-keys.ts";
import { decodeBatch, encodeBatch } from "./envelope.ts";
import { decodeRecord, encodeRecord } from "./snapshot-store.ts";

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const reply = (v: unknown) => packr.pack(v);

describe("idempotencyKeyProblem", () => {
  it.each(["k", "order-42", "a b", "~!@#$%^&*()_+{}|:<>?", "x".repeat(128), "550e8400-e29b-41d4-a716-446655440000"])("accepts %j", (key) => {
    expect(idempotencyKeyProblem(key)).toBeUndefined();
  });

  it.each([
    ["empty", ""],
    ["too long", "x".repeat(129)],
    ["leading space", " k"],
    ["trailing space", "k "],
    ["a single space", " "],
    ["non-ASCII", "clé"],
    ["a control character", "a\tb"],
    ["a newline", "a\nb"],
    ["DEL", "a\x7fb"],
    ["not a string", 42],
  ])("refuses %s", (_why, key) => {
    expect(idempotencyKeyProblem(key)).toEqual(expect.any(String));
  });
});

describe("CommandKeys", () => {
  it("finds what it remembers and forgets the oldest beyond its bound", () => {
    const keys = new CommandKeys();
    for (let i = 0; i <= COMMAND_KEYS_PER_ENTITY; i++) keys.add({ key: `k${i}`, seq: 100 + i, reply: reply({ i }) });
    expect(keys.size).toBe(COMMAND_KEYS_PER_ENTITY);
    expect(keys.find("k0")).toBeUndefined();
    expect(keys.find("k1")?.seq).toBe(101);
    expect(packr.unpack(keys.find(`k${COMMAND_KEYS_PER_ENTITY}`)!.reply)).toEqual({ i: COMMAND_KEYS_PER_ENTITY });
    expect(keys.list()[0]!.key).toBe("k1");
  });

  it("forgets the oldest beyond its byte bound too, but always keeps the newest", () => {
    const big = new Uint8Array(400);
    const keys = new CommandKeys([], 32, 1000);
    for (let i = 0; i < 5; i++) keys.add({ key: `k${i}`, seq: i, reply: big });
    expect(keys.list().map((e) => e.key)).toEqual(["k3", "k4"]); // 2 × 402 bytes ≤ 1000 < 3 × 402
    keys.add({ key: "huge", seq: 9, reply: new Uint8Array(5000) });
    expect(keys.list().map((e) => e.key)).toEqual(["huge"]);
    keys.add({ key: "small", seq: 10, reply: new Uint8Array(1) });
    expect(keys.list().map((e) => e.key)).toEqual(["small"]);
  });

  it("keeps only the newest entries it is built from", () => {
    const entries = Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, seq: i, reply: reply(i) }));
    const keys = new CommandKeys(entries, 3);
    expect(keys.list().map((e) => e.key)).toEqual(["k2", "k3", "k4"]);
  });
});

describe("snapshot record", () => {
  const state = new Uint8Array([1, 2, 3]);

  it("is byte for byte the old format for an entity without keyed commands, and old records decode", () => {
    const old = packr.pack([7, 1234, state]);
    expect(encodeRecord({ appliedSeq: 7, wakeAt: 1234, state })).toEqual(old);
    expect(encodeRecord({ appliedSeq: 7, wakeAt: 1234, state, commands: [] })).toEqual(old);
    const decoded = decodeRecord(old);
    expect({ ...decoded, state: [...decoded.state] }).toEqual({ appliedSeq: 7, wakeAt: 1234, state: [1, 2, 3] });
    expect("commands" in decoded).toBe(false);
  });

  it("carries the keyed commands, oldest first", () => {
    const commands = [
      { key: "a", seq: 5, reply: reply({ n: 1 }) },
      { key: "b", seq: 7, reply: reply(null) },
    ];
    const decoded = decodeRecord(encodeRecord({ appliedSeq: 7, wakeAt: undefined, state, commands }));
    expect(decoded.commands?.map((c) => ({ ...c, reply: packr.unpack(c.reply) as unknown }))).toEqual([
      { key: "a", seq: 5, reply: { n: 1 } },
      { key: "b", seq: 7, reply: null },
    ]);
    expect(decoded.appliedSeq).toBe(7);
  });

  it("carries each entry's fingerprint as a fourth element; entries recorded before fingerprints keep three", () => {
    const fingerprint = new Uint8Array(16).fill(7);
    const commands = [
      { key: "old", seq: 5, reply: reply(1) },
      { key: "new", seq: 7, reply: reply(2), fingerprint },
    ];
    const bytes = encodeRecord({ appliedSeq: 7, wakeAt: undefined, state, commands });
    const raw = packr.unpack(bytes) as unknown[][][];
    expect(raw[3]!.map((e) => e.length)).toEqual([3, 4]);
    const decoded = decodeRecord(bytes).commands!;
    expect(decoded[0]).not.toHaveProperty("fingerprint");
    expect([...decoded[1]!.fingerprint!]).toEqual([...fingerprint]);
    // a record written before fingerprints reads as entries without one
    const old = decodeRecord(packr.pack([7, null, state, [["k", 5, reply(1)]]])).commands!;
    expect(old).toEqual([{ key: "k", seq: 5, reply: expect.any(Uint8Array) }]);
    expect(old[0]).not.toHaveProperty("fingerprint");
  });

  it("counts the fingerprint in the byte bound", () => {
    const keys = new CommandKeys([], 32, 100);
    for (let i = 0; i < 3; i++) keys.add({ key: `k${i}`, seq: i, reply: new Uint8Array(30), fingerprint: new Uint8Array(16) });
    expect(keys.list().map((e) => e.key)).toEqual(["k1", "k2"]); // 2 × 48 bytes ≤ 100 < 3 × 48
  });

  it("refuses malformed keyed commands", () => {
    expect(() => decodeRecord(packr.pack([7, null, state, "x"]))).toThrow(TypeError);
    expect(() => decodeRecord(packr.pack([7, null, state, [["a", "seq", reply(1)]]]))).toThrow(TypeError);
    expect(() => decodeRecord(packr.pack([7, null, state, [["a", 1, { not: "bytes" }]]]))).toThrow(TypeError);
    expect(() => decodeRecord(packr.pack([7, null, state, [["a", 1, reply(1), "not bytes"]]]))).toThrow(TypeError);
  });
});

describe("input items", () => {
  it("carry an idempotency key, with or without a reply inbox; items without one are as before", () => {
    const items = [
      { type: "t", entityId: "a", kind: "readings", payload: [1] },
      { type: "t", entityId: "a", kind: "cmd", payload: {}, replyTo: "_INBOX.x.1" },
      { type: "t", entityId: "a", kind: "cmd", payload: {}, replyTo: "_INBOX.x.2", idempotencyKey: "k1" },
      { type: "t", entityId: "b", kind: "cmd", payload: {}, idempotencyKey: "k2" },
    ];
    const bytes = encodeBatch({ acceptedAt: 1, items });
    expect(decodeBatch(bytes)).toEqual({ acceptedAt: 1, items });
    const raw = packr.unpack(bytes) as unknown[][][];
    expect(raw[2]![0]).toEqual(["t", "a", "readings", [1]]);
    expect(raw[2]![1]).toEqual(["t", "a", "cmd", {}, "_INBOX.x.1"]);
  });
});
