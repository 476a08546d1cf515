import { describe, expect, it } from "vitest";
import { goldenCorpus, hash53, replayCorpusTwin } from "./corpus.ts";
import { GOLDEN_HASHES, GOLDEN_SNAPSHOTS } from "./data.ts";
import { GOLDEN_SNAPSHOTS as GOLDEN_SNAPSHOTS_V1 } from "./data-v1.ts";
import { GOLDEN_SNAPSHOTS as GOLDEN_SNAPSHOTS_V2_HYSTERESIS_06 } from "./data-v2-hysteresis-0.6.ts";
import { statsEqual } from "../../../actors/device-twin/domain/stats.ts";
import { createLearned } from "../../../actors/device-twin/domain/learned/learned-state.ts";
import { decodeTwin, encodeTwin, twinEqual } from "../../../actors/device-twin/domain/twin-snapshot.ts";
import type { TwinState } from "../../../actors/device-twin/domain/twin.ts";

// The snapshot format is a contract with every snapshot already stored: these fail when the encoder's
// bytes or the decoder's reading of old bytes change, even if encode∘decode still round-trips.
// data.ts: the current version (2), recorded by scripts/record-golden-snapshots.ts; data-v1.ts:
// version 1 snapshots (before the learned state), which must keep decoding; data-v2-hysteresis-0.6.ts:
// version 2 snapshots written before the occupancy model's hysteresis changed (same format, other
// occupancy decisions), which must keep decoding to the same bytes.

const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** A v1 snapshot re-encoded by a twin that learned nothing: the same map with `v` 2 (a positive fixint after the key "v"). */
function asVersion2(v1: Uint8Array): Uint8Array {
  const out = Uint8Array.from(v1);
  const at = out.findIndex((b, i) => b === 0xa1 && out[i + 1] === 0x76 && out[i + 2] === 0x01);
  expect(at).toBeGreaterThan(0);
  out[at + 2] = 0x02;
  return out;
}

/** A twin as a v1 snapshot holds it: no learned state, so no occupied time in the report accumulators. */
function withoutLearned(state: TwinState): TwinState {
  const reports = structuredClone(state.reports);
  reports.day.occupiedHours = 0;
  if (reports.week !== undefined) reports.week.occupiedHours = 0;
  return { ...state, learned: createLearned(), reports };
}

describe("snapshot format (golden corpus recorded by scripts/record-golden-snapshots.ts)", () => {
  const corpus = goldenCorpus();

  it("covers every recorded twin", () => {
    expect(corpus.map((t) => t.name).sort()).toEqual(Object.keys(GOLDEN_HASHES).sort());
    expect(Object.keys(GOLDEN_SNAPSHOTS_V1).sort()).toEqual(Object.keys(GOLDEN_SNAPSHOTS).sort());
    expect(Object.keys(GOLDEN_SNAPSHOTS_V2_HYSTERESIS_06).sort()).toEqual(Object.keys(GOLDEN_SNAPSHOTS).sort());
  });

  for (const twin of corpus) {
    it(`${twin.name}: encodeTwin writes the recorded bytes at every checkpoint; recorded v2 and v1 bytes decode to the same twin`, () => {
      const got: string[] = [];
      let decodedOld = 0;
      replayCorpusTwin(twin, (state, index) => {
        const bytes = encodeTwin(state);
        got.push(`${bytes.length}:${hash53(bytes)}`);
        const recorded = GOLDEN_SNAPSHOTS[`${twin.name}@${index}`];
        const recordedV1 = GOLDEN_SNAPSHOTS_V1[`${twin.name}@${index}`];
        if (recorded === undefined || recordedV1 === undefined) return;
        // compared here, while `state` is the live twin at this checkpoint (the next segment mutates it)
        const old = decodeTwin(fromBase64(recorded));
        expect(twinEqual(old, state)).toBe(true);
        expect(encodeTwin(old)).toEqual(fromBase64(recorded));
        // v1: everything but the learned state, which starts afresh, and the occupied time it feeds into reports
        const v1 = decodeTwin(fromBase64(recordedV1));
        expect(twinEqual(v1, withoutLearned(state))).toBe(true);
        expect(encodeTwin(v1)).toEqual(asVersion2(fromBase64(recordedV1)));
        // v2 from the earlier occupancy hysteresis: the same statistics; every byte read back as written
        const recordedV2Earlier = GOLDEN_SNAPSHOTS_V2_HYSTERESIS_06[`${twin.name}@${index}`];
        expect(recordedV2Earlier).toBeDefined();
        const earlier = decodeTwin(fromBase64(recordedV2Earlier!));
        expect(statsEqual(earlier.stats, state.stats)).toBe(true);
        expect(encodeTwin(earlier)).toEqual(fromBase64(recordedV2Earlier!));
        decodedOld++;
      });
      expect(got).toEqual(GOLDEN_HASHES[twin.name]);
      expect(decodedOld).toBeGreaterThan(0);
    });
  }
});
