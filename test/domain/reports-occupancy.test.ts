// Occupied hours in the daily reports, on real data: the UCI occupancy recordings (4–10 Feb 2015, with
// the true occupancy of every minute) replayed through a twin. The reports count the learned occupancy
// between readings; their hours must follow the truth (weekend days empty, office days close to it).
import { describe, expect, it } from "vitest";
import { applyInput, createTwin } from "../../actors/device-twin/domain/twin.ts";
import type { Report } from "../../actors/device-twin/domain/types.ts";
import { loadUciRows } from "./uci.ts";

const DAY = 86_400_000;
const GAP = 15 * 60_000;

describe("occupied hours in daily reports (UCI occupancy data)", () => {
  it("follow the labelled occupancy day by day", () => {
    const rows = loadUciRows();
    const twin = createTwin("uci");
    const reports: Report[] = [];
    for (let i = 0; i < rows.length; i += 50) {
      const batch = rows.slice(i, i + 50).map((r) => r.reading);
      for (const o of applyInput(twin, { type: "readings", readings: batch, receivedAt: batch.at(-1)!.t }).outputs) if (o.type === "report") reports.push(o.report);
    }
    // the truth, counted the same way: the label of a row holds until the next row (at most 15 min)
    const truth = new Map<number, number>();
    for (let i = 1; i < rows.length; i++) {
      const prev = rows[i - 1]!;
      if (!prev.occupied) continue;
      const from = prev.reading.t;
      const to = Math.min(rows[i]!.reading.t, from + GAP);
      const day = Math.floor(from / DAY) * DAY;
      truth.set(day, (truth.get(day) ?? 0) + (to - from));
    }
    const days = reports.filter((r) => r.kind === "report.day");
    expect(days.length).toBeGreaterThanOrEqual(5);
    const rowsOf = days.map((d) => ({ day: new Date(d.start).toISOString().slice(0, 10), reported: d.occupiedHours, truth: Math.round((truth.get(d.start) ?? 0) / 360_000) / 10 }));
    for (const r of rowsOf) {
      // weekend days (7–8 Feb 2015) nobody came; office days: within 1.5 h or 25 % of the truth
      expect(Math.abs(r.reported - r.truth), JSON.stringify(r)).toBeLessThanOrEqual(Math.max(1.5, 0.25 * r.truth));
    }
    expect(rowsOf.some((r) => r.reported > 5)).toBe(true);
  });
});
