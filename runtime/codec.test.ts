// The codec round-trips plain data as plain MessagePack maps, rejects malformed bytes with
// AIRTWIN_ERR_CODEC_DECODE, and labels payloads application/msgpack.

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { pack } from "msgpackr";
import { decode, encode, MSGPACK_CONTENT_TYPE, msgpackHeaders } from "./codec.ts";
import { isRuntimeError, RuntimeError } from "./errors.ts";

describe("encode/decode", () => {
  it("round-trips a typical payload", () => {
    const alert = { id: "d1:default-pm:1700000000000", deviceId: "d1", channel: "pm", at: 1_700_000_000_000, value: 36.5, tags: ["a", "b"], nested: { ok: true, none: null } };
    expect(decode(encode(alert))).toEqual(alert);
  });

  it("round-trips any JSON value (without __proto__ keys, below)", () => {
    const noProtoKey = (v: unknown): boolean =>
      typeof v !== "object" || v === null || Object.entries(v).every(([k, x]) => k !== "__proto__" && noProtoKey(x));
    fc.assert(
      fc.property(fc.jsonValue().filter(noProtoKey), (v) => {
        // JSON has no -0: the codec keeps it, so compare as JSON does
        expect(JSON.stringify(decode(encode(v)))).toBe(JSON.stringify(v));
      }),
    );
  });

  it("writes plain maps, not msgpackr records (map16 header, then the keys)", () => {
    const bytes = encode({ a: 1, b: 2 });
    // msgpackr reserves a map16 size for objects (no record extension 0xd4/0xc7 anywhere)
    expect(Buffer.from(bytes).toString("hex")).toBe("de0002a16101a16202");
  });

  it("renames a __proto__ map key to __proto_ (msgpackr's guard): never key maps by device id", () => {
    const decoded = decode<Record<string, unknown>>(encode(JSON.parse('{"__proto__":1,"ok":2}')));
    expect(Object.keys(decoded)).toEqual(["__proto_", "ok"]);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(decode(encode([{ id: "__proto__" }]))).toEqual([{ id: "__proto__" }]);
  });

  it("decodes maps from other producers as plain objects and int64 as number", () => {
    const fromOther = pack(new Map<unknown, unknown>([["k", 1], [2, "two"]]));
    expect(decode(fromOther)).toEqual({ k: 1, 2: "two" });
    const int64 = Uint8Array.from([0xd3, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]); // 1_700_000_000_000 as int64
    expect(decode(int64)).toBe(1_700_000_000_000);
  });
});

describe("decode rejects", () => {
  const cases: [string, Uint8Array][] = [
    ["empty bytes", new Uint8Array()],
    ["a truncated map", encode({ deviceId: "d1", readings: [1, 2, 3] }).subarray(0, 10)],
    ["trailing bytes", Uint8Array.from([...encode({ a: 1 }), 0x01])],
    ["a truncated string", Uint8Array.from([0xa5, 0x61])],
  ];
  it.each(cases)("%s with AIRTWIN_ERR_CODEC_DECODE", (_name, bytes) => {
    let caught: unknown;
    try {
      decode(bytes);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RuntimeError);
    expect(isRuntimeError(caught, "CODEC_DECODE")).toBe(true);
    expect((caught as RuntimeError).details).toEqual({ bytes: bytes.length });
  });
});

describe("msgpackHeaders", () => {
  it("sets Content-Type: application/msgpack, fresh each call", () => {
    const h = msgpackHeaders();
    expect(h.get("Content-Type")).toBe(MSGPACK_CONTENT_TYPE);
    expect(MSGPACK_CONTENT_TYPE).toBe("application/msgpack");
    h.set("X-Other", "1");
    expect(msgpackHeaders().has("X-Other")).toBe(false);
  });
});
