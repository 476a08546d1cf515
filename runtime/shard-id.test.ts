// shardOf agrees with published FNV-1a vectors, with a byte-wise reference over UTF-8, and with a real
// nats-server's {{partition(n,1)}} subject mapping for 1,000 ids (so server-side mappings and clients agree).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, type TestNatsServer } from "../test/harness/nats-server.ts";
import { waitFor } from "../test/harness/wait-for.ts";
import { fnv1a32, fnv1a32Bytes, shardOf } from "./shard-id.ts";

/** Reference: the textbook definition, over Node's own UTF-8 encoding. */
function reference(str: string): number {
  let h = 0x811c9dc5n;
  for (const b of Buffer.from(str, "utf8")) h = ((h ^ BigInt(b)) * 0x01000193n) & 0xffffffffn;
  return Number(h);
}

describe("fnv1a32", () => {
  // vectors from the FNV reference test suite (http://www.isthe.com/chongo/src/fnv/test_fnv.c)
  it.each([
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["b", 0xe70c2de5],
    ["foo", 0xa9f37ed7],
    ["foobar", 0xbf9cf968],
    ["chongo was here!\n", 0xd49930d5],
  ])("fnv1a32(%j) = %i", (input, expected) => {
    expect(fnv1a32(input)).toBe(expected);
    expect(fnv1a32Bytes(new TextEncoder().encode(input))).toBe(expected);
  });

  it("hashes the UTF-8 bytes of any string (non-ASCII included)", () => {
    expect(fnv1a32("µg/m³")).toBe(reference("µg/m³"));
    fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (s) => fnv1a32(s) === reference(s)));
  });
});

describe("shardOf", () => {
  it("is fnv1a32 modulo the shard count, always in range", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), fc.integer({ min: 1, max: 4096 }), (id, n) => {
        const s = shardOf(id, n);
        return s === fnv1a32(id) % n && s >= 0 && s < n && Number.isInteger(s);
      }),
    );
    expect(shardOf("anything", 1)).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN])("rejects shard count %s", (n) => {
    expect(() => shardOf("x", n)).toThrow(RangeError);
  });
});

/** 1,000 device-like ids from a fixed seed: 1-64 chars of [A-Za-z0-9_-]. */
function deviceIds(count: number): string[] {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  // mulberry32: a small PRNG whose low bits are as random as its high ones
  let seed = 42;
  const next = (): number => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  const ids = new Set<string>(["a", "-", "_", "0", "x".repeat(64)]);
  while (ids.size < count) {
    const len = 1 + (next() % 64);
    let id = "";
    for (let i = 0; i < len; i++) id += alphabet[next() % alphabet.length];
    ids.add(id);
  }
  return [...ids];
}

describe("shardOf against nats-server {{partition(n,1)}}", () => {
  const counts = [64, 7, 4096];
  let ns: TestNatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    ns = await startNatsServer({
      jetstream: false,
      mappings: Object.fromEntries(
        counts.map((n) => [`airtwin.map${n}.*`, `airtwin.mapped${n}.{{partition(${n},1)}}.{{wildcard(1)}}`]),
      ),
    });
    nc = await connect({ servers: ns.url, noAsyncTraces: true });
  });
  afterAll(async () => {
    await nc?.close();
    await ns?.stop();
  });

  it.each(counts)("puts 1,000 ids in the same partition as shardOf(id, %i)", async (n) => {
    const ids = deviceIds(1000);
    const seen = new Map<string, number>();
    const sub = nc.subscribe(`airtwin.mapped${n}.*.*`, {
      callback: (_err, m) => {
        const [, , partition, id] = m.subject.split(".");
        seen.set(id!, Number(partition));
      },
    });
    await nc.flush();
    for (const id of ids) nc.publish(`airtwin.map${n}.${id}`);
    await nc.flush();
    await waitFor(() => seen.size === ids.length, { message: `all ${ids.length} mapped messages` });
    sub.unsubscribe();
    expect(seen.size).toBe(1000);
    const mismatches = ids.filter((id) => seen.get(id) !== shardOf(id, n));
    expect(mismatches).toEqual([]);
    // the ids actually spread: a broken hash putting everything in one partition would not pass
    expect(new Set(seen.values()).size).toBeGreaterThan(Math.min(n, 1000) / 2);
  });
});
