import { describe, expect, it } from "vitest";
import { DomainError } from "./errors.ts";
import { STATS_BYTES } from "./snapshot.ts";
import { applyReadingToStats, createStats, decodeStats, encodeStats, recalibrate, resetStats, statsEqual, type TwinStats } from "./stats.ts";
import type { Reading } from "./types.ts";

const DAY0 = Date.UTC(2024, 0, 1);
const FIVE_MIN = 300_000;

/** A week of 5-minute readings on all channels with sensor-like resolution. */
function week(): TwinStats {
  const s = createStats();
  for (let i = 0; i < 7 * 288; i++) {
    const phase = Math.sin((2 * Math.PI * (i % 288)) / 288);
    const r: Reading = {
      t: DAY0 + i * FIVE_MIN,
      pm: Math.round(80 + 40 * phase + (i % 7)) / 10,
      co2: Math.round(600 + 300 * phase + (i % 11)),
      voc: Math.round(250 + 100 * phase + (i % 5)),
      tmp: Math.round(2150 + 150 * phase + (i % 3)) / 100,
      hum: Math.round(4200 + 300 * phase) / 100,
      allpollu: Math.round(200 + 100 * phase) / 10,
    };
    applyReadingToStats(s, "dev", r);
  }
  return s;
}

function expectCode(f: () => unknown, code: string): void {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe(code);
    return;
  }
  throw new Error("expected a DomainError");
}

describe("stats snapshot section", () => {
  it("round-trips the empty, single-reading, reset and recalibrated states", () => {
    const states: TwinStats[] = [createStats()];
    const one = createStats();
    applyReadingToStats(one, "d", { t: 1_700_000_000_123, tmp: 21.5 });
    states.push(one);
    const reset = week();
    resetStats(reset);
    states.push(reset);
    const recal = week();
    recalibrate(recal, "d", "co2", DAY0 + 8 * 86_400_000);
    states.push(recal);
    for (const s of states) expect(statsEqual(decodeStats(encodeStats(s)), s)).toBe(true);
    expect(encodeStats(createStats()).length).toBeLessThanOrEqual(4);
  });

  it("a week of 5-minute data on all six channels fits in about 1 KB (budget 1.7 KB)", () => {
    const s = week();
    const bytes = encodeStats(s);
    expect(statsEqual(decodeStats(bytes), s)).toBe(true);
    expect(bytes.length).toBeLessThan(1200);
    expect(STATS_BYTES).toBe(2768);
  });

  it("an unknown version is SNAPSHOT_VERSION", () => {
    const bytes = encodeStats(week());
    bytes[0] = 9;
    expectCode(() => decodeStats(bytes), "AIRTWIN_ERR_SNAPSHOT_VERSION");
  });

  it("every truncation and trailing garbage is SNAPSHOT_CORRUPT", () => {
    const bytes = encodeStats(week());
    for (let n = 0; n < bytes.length; n++) expectCode(() => decodeStats(bytes.subarray(0, n)), "AIRTWIN_ERR_SNAPSHOT_CORRUPT");
    expectCode(() => decodeStats(new Uint8Array([...bytes, 0])), "AIRTWIN_ERR_SNAPSHOT_CORRUPT");
  });

  it("flipped bytes either decode to some state or throw SNAPSHOT_CORRUPT/VERSION, never anything else", () => {
    const bytes = encodeStats(week());
    for (let i = 1; i < bytes.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = bytes.slice();
        bad[i]! ^= flip;
        try {
          decodeStats(bad);
        } catch (err) {
          expect(err).toBeInstanceOf(DomainError);
        }
      }
    }
  });
});
