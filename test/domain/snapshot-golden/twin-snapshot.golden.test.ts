import { describe, expect, it } from "vitest";
import { goldenCorpus, hash53, replayCorpusTwin } from "./corpus.ts";
import { GOLDEN_HASHES, GOLDEN_SNAPSHOTS } from "./data.ts";
import { decodeTwin, encodeTwin, twinEqual } from "../../../actors/device-twin/domain/twin-snapshot.ts";

// The snapshot format is a contract with every snapshot already stored: these fail when the encoder's
// bytes or the decoder's reading of old bytes change, even if encode∘decode still round-trips.

const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

describe("snapshot format (golden corpus recorded by scripts/record-golden-snapshots.ts)", () => {
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
