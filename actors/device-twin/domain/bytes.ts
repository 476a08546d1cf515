// Compact byte writer/reader for snapshot sections: LEB128 varints, zigzag, float64, "decimal or float"
// numbers, millisecond timestamps and bit-packed integer series. Pure and allocation-light.

/** Largest integer the varint helpers accept (2^53 − 1). */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const POW10 = [1, 10, 100, 1000] as const;
/** Series header meaning "each value as a varint" (any other header ≤ 53 is a bit width). */
const SERIES_VARINT = 255;

/** Thrown by ByteReader on truncated or malformed input; codecs wrap it in their own coded error. */
export class ByteFormatError extends Error {
  override readonly name = "ByteFormatError";
}

/** Maps a signed safe integer to an unsigned one (0, −1, 1, −2 … → 0, 1, 2, 3 …). */
export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(z: number): number {
  // below 2^31: bit operations (int32 results), not a float remainder
  if (z >= 0 && z <= 0x7fffffff && (z | 0) === z) return (z >>> 1) ^ -(z & 1);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Number of bits needed for a non-negative integer (0 for 0). */
export function bitWidth(n: number): number {
  if (n < 2 ** 31) return 32 - Math.clz32(n);
  let w = 0;
  while (n >= 1) {
    n = Math.floor(n / 2);
    w++;
  }
  return w;
}

function varuintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Append-only byte buffer that grows by doubling. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialBytes = 512) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Empties the writer for reuse (its buffer stays allocated). */
  reset(): this {
    this.pos = 0;
    return this;
  }

  u8(n: number): void {
    this.ensure(1);
    this.buf[this.pos++] = n;
  }

  /** Unsigned LEB128 of a safe non-negative integer (1 byte below 128, at most 8). */
  varuint(n: number): void {
    if ((n >>> 0) === n) {
      // uint32 (the usual case): shifts instead of float division
      this.ensure(5);
      const buf = this.buf;
      let pos = this.pos;
      while (n >= 128) {
        buf[pos++] = (n & 127) | 128;
        n >>>= 7;
      }
      buf[pos++] = n;
      this.pos = pos;
      return;
    }
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varuint out of range: ${n}`);
    this.ensure(8);
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 128;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  /** Zigzag varint of a signed integer with |n| < 2^52. */
  varint(n: number): void {
    this.varuint(zigzag(n));
  }

  f64(n: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, n, true);
    this.pos += 8;
  }

  /** A float32 (n should already be one: it is rounded to float32 here). */
  f32(n: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, n, true);
    this.pos += 4;
  }

  /**
   * A float that is usually a short decimal (a sensor value, a sum of integers): written as a varint of
   * (zigzag(k)·5 + d) when `k / 10^d` reproduces it bit for bit (d ≤ 3), else as tag 4 plus float64.
   */
  num(n: number): void {
    if (!Object.is(n, -0)) {
      for (let d = 0; d < 4; d++) {
        const p = POW10[d] as number;
        const k = Math.round(n * p);
        if (Math.abs(k) < 2 ** 49 && k / p === n) {
          this.varuint(zigzag(k) * 5 + d);
          return;
        }
      }
    }
    this.varuint(4);
    this.f64(n);
  }

  /** A non-negative millisecond duration or timestamp; whole seconds cost a bit less. */
  ms(n: number): void {
    // an int32 n (the usual: a duration within the week) takes an integer remainder, not a float one
    const rest = (n | 0) === n ? (n | 0) % 1000 : n % 1000;
    this.varuint(rest === 0 ? (n / 1000) * 2 : n * 2 + 1);
  }

  /**
   * The first `n` values of a series of non-negative safe integers whose length the reader knows: either
   * bit-packed at the width of the largest (a run of zeros costs one byte) or as varints, whichever is shorter.
   */
  series(values: ArrayLike<number>, n: number = values.length): void {
    let max = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i] as number;
      // (v >>> 0) === v: a uint32, the usual case, checked without Number.isInteger
      if ((v >>> 0) !== v && !(v >= 0 && v <= MAX_SAFE && Number.isInteger(v))) throw new RangeError(`series value out of range: ${v}`);
      if (v > max) max = v;
    }
    this.seriesUpTo(values, n, max);
  }

  /**
   * As {@link series}, for a caller that already knows every value is an integer in 0..max (and max is
   * the largest): the same bytes, without the checking pass.
   */
  seriesUpTo(values: ArrayLike<number>, n: number, max: number): void {
    // Below 2^8 every value costs ≥ 1 varint byte and ≤ 1 packed byte, so packing never loses and the
    // varint size need not be counted (the usual case: deltas and spreads of quantized buckets).
    let varintBytes = n;
    if (max >= 256) {
      varintBytes = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i] as number;
        varintBytes += v < 128 ? 1 : v < 16384 ? 2 : varuintLength(v);
      }
    }
    const width = bitWidth(max);
    const packedBytes = Math.ceil((n * width) / 8);
    if (packedBytes > varintBytes) {
      this.u8(SERIES_VARINT);
      for (let i = 0; i < n; i++) this.varuint(values[i] as number);
      return;
    }
    this.ensure(1 + packedBytes);
    this.buf[this.pos++] = width;
    if (width === 0) return;
    if (width <= 24) {
      // fast path: pending bits (< 8) plus one value fit a 32-bit integer
      const buf = this.buf;
      let pos = this.pos;
      let acc = 0;
      let bits = 0;
      for (let i = 0; i < n; i++) {
        acc |= (values[i] as number) << bits;
        bits += width;
        while (bits >= 8) {
          buf[pos++] = acc & 255;
          acc >>>= 8;
          bits -= 8;
        }
      }
      if (bits > 0) buf[pos++] = acc;
      this.pos = pos;
      return;
    }
    let acc = 0;
    let bits = 0;
    for (let i = 0; i < n; i++) {
      let rest = values[i] as number;
      let left = width;
      while (left > 0) {
        const take = Math.min(left, 8 - bits);
        const unit = 1 << take;
        acc |= (rest % unit) << bits;
        rest = Math.floor(rest / unit);
        bits += take;
        left -= take;
        if (bits === 8) {
          this.buf[this.pos++] = acc;
          acc = 0;
          bits = 0;
        }
      }
    }
    if (bits > 0) this.buf[this.pos++] = acc;
  }

  /** The bytes written so far, as a view of the writer's buffer: valid until its next reset or write. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** The bytes written so far (a copy sized exactly). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Reads what ByteWriter wrote; every read is bounds-checked and throws ByteFormatError. */
export class ByteReader {
  private readonly view: DataView;
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new ByteFormatError("unexpected end of input");
    return this.buf[this.pos++] as number;
  }

  varuint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 127) * scale;
      if (b < 128) {
        if (n > MAX_SAFE) throw new ByteFormatError("varint exceeds 2^53");
        return n;
      }
      scale *= 128;
    }
    throw new ByteFormatError("varint longer than 8 bytes");
  }

  varint(): number {
    return unzigzag(this.varuint());
  }

  f64(): number {
    if (this.remaining < 8) throw new ByteFormatError("unexpected end of input");
    const n = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return n;
  }

  f32(): number {
    if (this.remaining < 4) throw new ByteFormatError("unexpected end of input");
    const n = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return n;
  }

  num(): number {
    const tag = this.varuint();
    const d = tag % 5;
    if (d === 4) {
      if (tag !== 4) throw new ByteFormatError("bad number tag");
      return this.f64();
    }
    return unzigzag((tag - d) / 5) / (POW10[d] as number);
  }

  ms(): number {
    const z = this.varuint();
    const odd = z <= 0x7fffffff ? z & 1 : z % 2;
    return odd === 0 ? (z / 2) * 1000 : (z - 1) / 2;
  }

  /** Reads `count` values written by ByteWriter.series. */
  series(count: number): number[] {
    const out = new Array<number>(count);
    this.seriesInto(out, count);
    return out;
  }

  /** Reads `count` values written by ByteWriter.series into `out` (no allocation). */
  seriesInto(out: { [i: number]: number; length: number }, count: number): void {
    if (out.length < count) throw new RangeError("series buffer too small");
    const header = this.u8();
    if (header === SERIES_VARINT) {
      for (let i = 0; i < count; i++) out[i] = this.varuint();
      return;
    }
    if (header > 53) throw new ByteFormatError(`bad series width ${header}`);
    if (this.remaining < Math.ceil((count * header) / 8)) throw new ByteFormatError("unexpected end of input");
    if (header <= 24) {
      // pending bits (< width ≤ 24) plus one byte stay below 2^31: plain int32 bit operations
      const mask = (1 << header) - 1;
      const buf = this.buf;
      let pos = this.pos;
      let acc = 0;
      let bits = 0;
      for (let i = 0; i < count; i++) {
        while (bits < header) {
          acc |= (buf[pos++] as number) << bits;
          bits += 8;
        }
        out[i] = acc & mask;
        acc >>>= header;
        bits -= header;
      }
      this.pos = pos;
      return;
    }
    let acc = 0;
    let bits = 0;
    for (let i = 0; i < count; i++) {
      let v = 0;
      let scale = 1;
      let left = header;
      while (left > 0) {
        if (bits === 0) {
          acc = this.u8();
          bits = 8;
        }
        const take = Math.min(left, bits);
        const unit = 1 << take;
        v += (acc % unit) * scale;
        acc >>>= take;
        scale *= unit;
        bits -= take;
        left -= take;
      }
      out[i] = v;
    }
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) throw new ByteFormatError(`${this.buf.length - this.pos} trailing bytes`);
  }
}
