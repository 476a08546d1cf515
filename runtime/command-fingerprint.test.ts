// The fingerprint of keyed commands: the same command is the same fingerprint whatever the order of its
// object keys (also after a MessagePack round trip), any other difference is another fingerprint, and
// the bytes are pinned — they are persisted in snapshot records, so they must never change.
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { canonicalForm, COMMAND_FINGERPRINT_BYTES, commandFingerprint, sameFingerprint } from "./command-fingerprint.ts";

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fp = (kind: string, payload: unknown) => hex(commandFingerprint(kind, payload));

describe("commandFingerprint", () => {
  it("is the first 16 bytes of SHA-256 over the JSON kind and the canonical payload (pinned: it is persisted)", () => {
    // expected values from `printf '"add"{"v":1}' | sha256sum`, i.e. computed without this code
    expect(commandFingerprint("add", { v: 1 })).toHaveLength(COMMAND_FINGERPRINT_BYTES);
    expect(fp("add", { v: 1 })).toBe("dc4b58245d6f23817965358de179aecf");
    expect(fp("putRule", { b: { y: "é", x: null }, a: [2, 1] })).toBe("f736423e6bd3ae81c9e27722c48f24d1");
  });

  it("is the same for the same JSON with object keys in another order, at any depth", () => {
    const a = { type: "putRule", rule: { id: "r1", enter: 2000, exit: 1500, tags: [{ k: 1, j: 2 }, "x"] } };
    const b = { rule: { tags: [{ j: 2, k: 1 }, "x"], exit: 1500, enter: 2000, id: "r1" }, type: "putRule" };
    expect(fp("command", a)).toBe(fp("command", b));
    // as the runner sees them: decoded from MessagePack, which keeps each sender's order
    expect(fp("command", packr.unpack(packr.pack(b)))).toBe(fp("command", a));
    expect(fp("command", new Map(Object.entries(a)))).toBe(fp("command", a));
  });

  it.each([
    ["another kind", ["other", { v: 1 }]],
    ["another value", ["add", { v: 2 }]],
    ["another key", ["add", { w: 1 }]],
    ["an extra key", ["add", { v: 1, w: 1 }]],
    ["a string for a number", ["add", { v: "1" }]],
    ["an array around it", ["add", [{ v: 1 }]]],
    ["nothing", ["add", null]],
  ] as const)("differs for %s", (_why, [kind, payload]) => {
    expect(fp(kind, payload)).not.toBe(fp("add", { v: 1 }));
  });

  it("keeps the order of arrays", () => {
    expect(fp("c", { a: [1, 2] })).not.toBe(fp("c", { a: [2, 1] }));
  });

  it("tells apart values JSON would confuse or that only MessagePack carries", () => {
    const forms = [null, undefined, 0, "0", false, "false", 1n, 1, NaN, "NaN", Infinity, new Uint8Array([1, 2]), [1, 2], new Date(5), 5, "@5", {}, []];
    expect(new Set(forms.map(canonicalForm)).size).toBe(forms.length);
    // a string that looks like the rest of an object stays a string
    expect(canonicalForm({ a: 'b","c":1' })).not.toBe(canonicalForm({ a: "b", c: 1 }));
    expect(canonicalForm(-0)).toBe(canonicalForm(0));
  });

  it("compares fingerprints by bytes", () => {
    expect(sameFingerprint(commandFingerprint("a", { x: 1, y: 2 }), commandFingerprint("a", { y: 2, x: 1 }))).toBe(true);
    expect(sameFingerprint(commandFingerprint("a", 1), commandFingerprint("a", 2))).toBe(false);
    expect(sameFingerprint(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
