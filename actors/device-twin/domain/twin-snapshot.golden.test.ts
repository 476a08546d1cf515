import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { goldenCorpus, hash53, replayCorpusTwin } from "./snapshot-golden-corpus.ts";
import { GOLDEN_HASHES, GOLDEN_SNAPSHOTS } from "./snapshot-golden-data.ts";
import { encodeStats } from "./stats.ts";
import { applyInput, createTwin } from "./twin.ts";
import { decodeTwin, encodeTwin, twinEqual } from "./twin-snapshot.ts";

// The snapshot format is a contract with every snapshot already stored: these fail when the encoder's
// bytes or the decoder's reading of old bytes change, even if encode∘decode still round-trips.

const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

describe("snapshot format (golden corpus recorded by the encoder of 327c28c)", () => {
  const corpus = goldenCorpus();

  it("covers every recorded twin", () => {
    expect(corpus.map((t) => t.name).sort()).toEqual(Object.keys(GOLDEN_HASHES).sort());
  });

  for (const twin of corpus) {
    it(`${twin.name}: encodeTwin writes the recorded bytes at every checkpoint, and old bytes decode to the same twin`, () => {
      const got: string[] = [];
      let decodedOld = 0;
      replayCorpusTwin(twin, (state, index) => {
        const bytes = encodeTwin(state);
        got.push(`${bytes.length}:${hash53(bytes)}`);
        const recorded = GOLDEN_SNAPSHOTS[`${twin.name}@${index}`];
        if (recorded === undefined) return;
        // compared here, while `state` is the live twin at this checkpoint (the next segment mutates it)
        const old = decodeTwin(fromBase64(recorded));
        expect(twinEqual(old, state)).toBe(true);
        expect(encodeTwin(old)).toEqual(fromBase64(recorded));
        decodedOld++;
      });
      expect(got).toEqual(GOLDEN_HASHES[twin.name]);
      expect(decodedOld).toBeGreaterThan(0);
    });
  }
});

describe("the direct envelope of a plain twin (no rules changed, no open event, no subscription)", () => {
  const packr = new Packr({ useRecords: false });
  const num = fc.oneof(
    fc.integer({ min: 0, max: 300 }),
    fc.integer({ min: -40_000, max: 40_000 }),
    fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001, -(2 ** 31), -(2 ** 31) - 1, -0, 0.5),
    fc.double({ noNaN: true }),
    fc.integer({ min: 0, max: 7_258_118_400_000 }),
  );
  const count = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER));

  it("writes what msgpackr writes for the same map, for any counters, presence, lastT, id and stats size", () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        fc.integer({ min: 0, max: 3 }),
        count, count, count,
        fc.option(num, { nil: undefined }), fc.boolean(),
        fc.option(num, { nil: undefined }),
        (id, readings, r, d, l, lastSeen, offline, lastT) => {
          const state = createTwin(id);
          for (let i = 0; i < readings; i++) applyInput(state, { type: "readings", readings: [{ t: 1_700_000_000_000 + i * 600_000, co2: 400 + i, tmp: 20.25 }], receivedAt: 0 });
          state.readings = r;
          state.duplicates = d;
          state.late = l;
          state.presence = lastSeen === undefined ? { offline: false } : { lastSeen, offline };
          if (lastT === undefined) delete state.lastT;
          else state.lastT = lastT;
          const snap: Record<string, unknown> = { v: 1, id, s: encodeStats(state.stats), c: [r, d, l], p: [lastSeen ?? null, lastSeen !== undefined && offline ? 1 : 0] };
          if (lastT !== undefined) snap.t = lastT;
          expect(encodeTwin(state)).toEqual(new Uint8Array(packr.pack(snap)));
        },
      ),
      { numRuns: 500 },
    );
  });
});
