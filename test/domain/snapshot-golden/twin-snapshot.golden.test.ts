import { describe, expect, it } from "vitest";
import { goldenCorpus, hash53, replayCorpusTwin } from "./corpus.ts";
import { GOLDEN_HASHES, GOLDEN_SNAPSHOTS } from "./data.ts";
import { GOLDEN_SNAPSHOTS as GOLDEN_SNAPSHOTS_V1 } from "./data-v1.ts";
import { GOLDEN_SNAPSHOTS as GOLDEN_SNAPSHOTS_V2_HYSTERESIS_06 } from "./data-v2-hysteresis-0.6.ts";
import { GOLDEN_SNAPSHOTS as GOLDEN_SNAPSHOTS_V2_LEARNED_1 } from "./data-v2-learned-section-1.ts";
import { statsEqual } from "../../../actors/device-twin/domain/stats.ts";
import { createLearned } from "../../../actors/device-twin/domain/learned/learned-state.ts";
import { decodeTwin, encodeTwin, twinEqual } from "../../../actors/device-twin/domain/twin-snapshot.ts";
import type { TwinState } from "../../../actors/device-twin/domain/twin.ts";

// The snapshot format is a contract with every snapshot already stored: these fail when the encoder's
// bytes or the decoder's reading of old bytes change, even if encode∘decode still round-trips.
// data.ts: the current version (2), recorded by scripts/record-golden-snapshots.ts; data-v1.ts:
// version 1 snapshots (before the learned state), which must keep decoding; data-v2-hysteresis-0.6.ts:
// version 2 snapshots written before the occupancy model's hysteresis changed (other occupancy
// decisions) and data-v2-learned-section-1.ts: version 2 snapshots whose learned section is version 1
// (before the move directions in its flags) — both must keep decoding, and re-encode to the same bytes
// but for the learned section's version byte (1 → 2: a version 1 section holds no directions).

const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** A v1 snapshot re-encoded by a twin that learned nothing: the same map with `v` 2 (a positive fixint after the key "v"). */
function asVersion2(v1: Uint8Array): Uint8Array {
  const out = Uint8Array.from(v1);
  const at = out.findIndex((b, i) => b === 0xa1 && out[i + 1] === 0x76 && out[i + 2] === 0x01);
  expect(at).toBeGreaterThan(0);
  out[at + 2] = 0x02;
  return out;
}

/**
 * A snapshot whose learned section is version 1, as the current encoder writes it after decoding it:
 * the same bytes with the section's version byte 2. `l` is the map's last key: its bin (0xc4 n or
 * 0xc5 nn) is found from the end and checked against the decoded section.
 */
function withLearnedSectionVersion2(bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  let at = -1;
  for (let i = out.length - 3; i >= 0 && at < 0; i--) {
    if (out[i] !== 0xa1 || out[i + 1] !== 0x6c) continue;
    if (out[i + 2] === 0xc4 && i + 4 + out[i + 3]! === out.length) at = i + 4;
    else if (out[i + 2] === 0xc5 && i + 5 + ((out[i + 3]! << 8) | out[i + 4]!) === out.length) at = i + 5;
  }
  if (at < 0) return out; // nothing learned: no section
  expect(out[at]).toBe(1);
  out[at] = 2;
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
    expect(Object.keys(GOLDEN_SNAPSHOTS_V2_LEARNED_1).sort()).toEqual(Object.keys(GOLDEN_SNAPSHOTS).sort());
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
        expect(encodeTwin(earlier)).toEqual(withLearnedSectionVersion2(fromBase64(recordedV2Earlier!)));
        // v2 with a version 1 learned section (before the move directions and the hourly statistics)
        const recordedLearned1 = GOLDEN_SNAPSHOTS_V2_LEARNED_1[`${twin.name}@${index}`];
        expect(recordedLearned1).toBeDefined();
        const learned1 = decodeTwin(fromBase64(recordedLearned1!));
        expect(statsEqual(learned1.stats, state.stats)).toBe(true);
        expect(encodeTwin(learned1)).toEqual(withLearnedSectionVersion2(fromBase64(recordedLearned1!)));
        decodedOld++;
      });
      expect(got).toEqual(GOLDEN_HASHES[twin.name]);
      expect(decodedOld).toBeGreaterThan(0);
    });
  }
});
