import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteFormatError, ByteReader, ByteWriter, bitWidth, unzigzag, zigzag } from "./bytes.ts";

function roundTrip<T>(write: (w: ByteWriter) => void, read: (r: ByteReader) => T): { value: T; bytes: number } {
  const w = new ByteWriter(4);
  write(w);
  const bytes = w.finish();
  const r = new ByteReader(bytes);
  const value = read(r);
  r.end();
  return { value, bytes: bytes.length };
}

describe("bytes", () => {
  it.each([
    [0, 1],
    [127, 1],
    [128, 2],
    [16383, 2],
    [16384, 3],
    [Number.MAX_SAFE_INTEGER, 8],
  ])("varuint %d takes %d bytes", (n, len) => {
    expect(roundTrip((w) => w.varuint(n), (r) => r.varuint())).toEqual({ value: n, bytes: len });
  });

  it("rejects what varuint cannot represent", () => {
    const w = new ByteWriter();
    expect(() => w.varuint(-1)).toThrow(RangeError);
    expect(() => w.varuint(1.5)).toThrow(RangeError);
    expect(() => w.varuint(2 ** 53)).toThrow(RangeError);
  });

  it("zigzag interleaves signs", () => {
    expect([0, -1, 1, -2, 2].map(zigzag)).toEqual([0, 1, 2, 3, 4]);
    fc.assert(fc.property(fc.integer({ min: -(2 ** 51), max: 2 ** 51 }), (n) => unzigzag(zigzag(n)) === n));
  });

  it("bitWidth", () => {
    expect([0, 1, 2, 3, 255, 256, 2 ** 40].map(bitWidth)).toEqual([0, 1, 2, 2, 8, 9, 41]);
  });

  it.each([
    [23.18, 3],
    [400, 2],
    [-40, 2],
    [0.001, 1],
    [12345.678, 4],
    [1 / 3, 9],
    [-0, 9],
    [NaN, 9],
    [1e300, 9],
  ])("num %d round-trips bit for bit in %d bytes", (n, len) => {
    const { value, bytes } = roundTrip((w) => w.num(n), (r) => r.num());
    expect(Object.is(value, n)).toBe(true);
    expect(bytes).toBe(len);
  });

  it("num, f64, varint and ms round-trip arbitrary values", () => {
    fc.assert(
      fc.property(fc.double(), fc.integer({ min: -(2 ** 51), max: 2 ** 51 }), fc.integer({ min: 0, max: 2 ** 52 - 1 }), (x, i, ms) => {
        const { value } = roundTrip(
          (w) => {
            w.num(x);
            w.f64(x);
            w.varint(i);
            w.ms(ms);
          },
          (r) => [r.num(), r.f64(), r.varint(), r.ms()],
        );
        expect(Object.is(value[0], x) && Object.is(value[1], x)).toBe(true);
        expect(value.slice(2)).toEqual([i, ms]);
      }),
    );
  });

  it("ms costs less for whole seconds", () => {
    expect(roundTrip((w) => w.ms(1_704_067_200_000), (r) => r.ms()).bytes).toBeLessThan(roundTrip((w) => w.ms(1_704_067_200_001), (r) => r.ms()).bytes);
  });

  it("series bit-packs at the widest value, a flat run costs one byte, outliers fall back to varints", () => {
    expect(roundTrip((w) => w.series([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), (r) => r.series(10))).toEqual({ value: Array(10).fill(0), bytes: 1 });
    expect(roundTrip((w) => w.series([1, 2, 3, 0, 1, 2, 3, 0]), (r) => r.series(8))).toEqual({ value: [1, 2, 3, 0, 1, 2, 3, 0], bytes: 3 });
    const outlier = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2 ** 40];
    expect(roundTrip((w) => w.series(outlier), (r) => r.series(outlier.length)).value).toEqual(outlier);
    expect(roundTrip((w) => w.series(outlier), (r) => r.series(outlier.length)).bytes).toBeLessThan(1 + (16 * 41) / 8);
  });

  it("series round-trips arbitrary non-negative integers", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(300), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))), (xs) => {
        expect(roundTrip((w) => w.series(xs), (r) => r.series(xs.length)).value).toEqual(xs);
      }),
    );
  });

  it("reader throws ByteFormatError on truncation, overlong varints, bad tags and trailing bytes", () => {
    expect(() => new ByteReader(new Uint8Array([0x80])).varuint()).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array(9).fill(0xff)).varuint()).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array([1, 2])).f64()).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array([9])).num()).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array([60])).series(1)).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array([8])).series(1)).toThrow(ByteFormatError);
    expect(() => new ByteReader(new Uint8Array([1])).end()).toThrow(ByteFormatError);
  });
});
