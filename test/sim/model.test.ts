// The simulator's model: the same seed sends the same readings; every reading is valid; a resend
// repeats an upload exactly (the twin counts duplicates); a network outage loses nothing (backfilled
// later), a power outage loses exactly its span; and the rooms behave like rooms (CO2 follows
// occupancy, cooking raises PM2.5).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { validateReadings, type Reading } from "../../actors/device-twin/domain/mod.ts";
import { readCsvReadings, parseCsvMap, CsvSource } from "../../sim/csv.ts";
import { DeviceSim, type Upload } from "../../sim/model/device.ts";
import { Fleet } from "../../sim/model/fleet.ts";

const START = Date.UTC(2026, 0, 5); // a Monday
const take = (source: { next(): Upload | undefined }, n: number) => Array.from({ length: n }, () => source.next()!);

describe("simulated fleet", () => {
  it("sends the same uploads for the same seed, other ones for another seed", () => {
    const make = (seed: number) => new Fleet({ seed, devices: 6, idPrefix: "sim", startMs: START, intervalMs: 300_000 });
    const a = take(make(7), 3000);
    expect(take(make(7), 3000)).toEqual(a);
    const b = take(make(8), 3000);
    expect(b.map((u) => u.readings)).not.toEqual(a.map((u) => u.readings));
    // event-time order across the fleet
    for (let i = 1; i < a.length; i++) expect(a[i]!.sendAt).toBeGreaterThanOrEqual(a[i - 1]!.sendAt);
  });

  it("sends only valid readings, each device's in increasing time except for resends", () => {
    const fleet = new Fleet({ seed: 3, devices: 10, idPrefix: "sim", startMs: START, intervalMs: 120_000, faults: { outagesPerDay: 2, duplicateProbability: 0.05 } });
    const last = new Map<string, number>();
    for (const u of take(fleet, 8000)) {
      expect(validateReadings(u.readings).ok).toBe(true);
      for (const r of u.readings) expect(Object.keys(r).sort()).toEqual(["allpollu", "co2", "hum", "pm", "t", "tmp", "voc"]);
      if (u.kind === "resend") continue;
      const ts = u.readings.map((r) => r.t);
      expect(ts[0]!).toBeGreaterThan(last.get(u.deviceId) ?? -Infinity);
      for (let i = 1; i < ts.length; i++) expect(ts[i]!).toBeGreaterThan(ts[i - 1]!);
      last.set(u.deviceId, ts[ts.length - 1]!);
    }
  });

  it("resends an upload exactly, at about the configured rate", () => {
    const d = new DeviceSim({ seed: 1, index: 0, deviceId: "d", startMs: START, intervalMs: 60_000, faults: { outagesPerDay: 0, duplicateProbability: 0.2 } });
    const uploads = take(d, 5000);
    const resends = uploads.filter((u, i) => u.kind === "resend" && i > 0);
    expect(resends.length / uploads.length).toBeGreaterThan(0.12);
    expect(resends.length / uploads.length).toBeLessThan(0.22);
    uploads.forEach((u, i) => {
      if (u.kind === "resend") expect(u.readings).toEqual(uploads[i - 1]!.readings);
    });
  });

  it("backfills what a network outage held back: the same readings as without the outage", () => {
    const days = 6;
    const run = (faults: ConstructorParameters<typeof DeviceSim>[0]["faults"]) => {
      const d = new DeviceSim({ seed: 11, index: 2, deviceId: "d", startMs: START, intervalMs: 300_000, faults });
      const out: Upload[] = [];
      while (d.peekSendAt() < START + days * 86_400_000) out.push(d.next());
      return out;
    };
    const clean = run(false).flatMap((u) => u.readings);
    const withOutages = run({ outagesPerDay: 1, networkShare: 1, duplicateProbability: 0 });
    const backfills = withOutages.filter((u) => u.kind === "backfill");
    expect(backfills.length).toBeGreaterThan(2);
    for (const b of backfills) {
      expect(b.readings.length).toBeGreaterThan(1);
      expect(b.readings[0]!.t).toBeLessThan(b.sendAt); // sent late
    }
    const delivered = withOutages.flatMap((u) => u.readings);
    const lastT = delivered[delivered.length - 1]!.t;
    expect(delivered).toEqual(clean.filter((r) => r.t <= lastT));
  });

  it("measures nothing during a power outage, and only then", () => {
    const d = new DeviceSim({ seed: 5, index: 1, deviceId: "d", startMs: START, intervalMs: 300_000, faults: { outagesPerDay: 1, networkShare: 0, duplicateProbability: 0 } });
    const ts: number[] = [];
    while (d.peekSendAt() < START + 5 * 86_400_000) ts.push(...d.next().readings.map((r) => r.t));
    const outages = [-1, 0, 1, 2, 3, 4].flatMap((k) => d.plansAt(START + k * 86_400_000 + 1)[1]!.outages);
    expect(outages.length).toBeGreaterThan(2);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]!).filter((g) => g > 300_000);
    expect(gaps.length).toBeGreaterThan(0);
    for (const t of ts) expect(outages.some((o) => o.from <= t && t < o.to)).toBe(false);
  });

  it("models rooms: a bedroom's CO2 builds up at night, a kitchen's PM2.5 peaks while cooking", () => {
    const collect = (kind: "bedroom" | "kitchen", index: number) => {
      const d = new DeviceSim({ seed: 21, index, deviceId: kind, kind, startMs: START, intervalMs: 300_000, faults: false });
      const rs: Reading[] = [];
      while (d.peekSendAt() < START + 7 * 86_400_000) rs.push(...d.next().readings);
      return { d, rs };
    };
    const bedroom = collect("bedroom", 0).rs;
    const hourOf = (r: Reading) => new Date(r.t).getUTCHours();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const night = mean(bedroom.filter((r) => hourOf(r) >= 3 && hourOf(r) < 6).map((r) => r.co2!));
    const afternoon = mean(bedroom.filter((r) => hourOf(r) >= 14 && hourOf(r) < 17).map((r) => r.co2!));
    expect(night).toBeGreaterThan(afternoon + 300);

    const { d, rs } = collect("kitchen", 1);
    const cooking = [0, 1, 2, 3, 4, 5, 6].flatMap((k) => d.plansAt(START + k * 86_400_000 + 1)[1]!.cooking);
    expect(cooking.length).toBeGreaterThan(3);
    const during = rs.filter((r) => cooking.some((c) => c.from + 600_000 <= r.t && r.t < c.to + 600_000)).map((r) => r.pm!);
    const otherwise = rs.filter((r) => cooking.every((c) => r.t < c.from || r.t > c.to + 4 * 3_600_000)).map((r) => r.pm!);
    expect(mean(during)).toBeGreaterThan(3 * mean(otherwise));
    expect(Math.max(...rs.map((r) => r.pm!))).toBeGreaterThan(35.5); // crosses the default PM rule
  });
});

describe("CSV replay", () => {
  const uci = readFileSync(resolve(import.meta.dirname, "../../data/uci-occupancy/datatest.txt"), "utf8");

  it("reads the UCI file by its column names, the row id dropped, times as UTC", () => {
    const rs = readCsvReadings(uci, undefined);
    expect(rs).toHaveLength(2665);
    expect(rs[0]).toEqual({ t: Date.UTC(2015, 1, 2, 14, 19), tmp: 23.7, hum: 26.272, co2: 749.2 });
    const mapped = readCsvReadings(uci, parseCsvMap("co2=CO2"));
    expect(Object.keys(mapped[0]!).sort()).toEqual(["co2", "t"]);
  });

  it("refuses a map naming a missing column, and rows out of range, saying which", () => {
    expect(() => readCsvReadings(uci, parseCsvMap("pm=PM25"))).toThrow(/AIRTWIN|no column for pm=PM25/);
    expect(() => parseCsvMap("lux=Light")).toThrow(/not <channel>=<column>/);
    expect(() => readCsvReadings("time,co2\n1700000000,500\n1700000060,-5\n", undefined)).toThrow(/line 3: co2/);
  });

  it("replays as a backfill (all due at once) or paced by event time, shifted to a start", () => {
    const rs = readCsvReadings(uci, undefined).slice(0, 10);
    const backfill = new CsvSource({ readings: rs, deviceIds: ["a", "b"], paced: false });
    expect(backfill.peekSendAt()).toBe(-Infinity);
    const all = take(backfill, 20);
    expect(backfill.next()).toBeUndefined();
    expect(all.filter((u) => u.deviceId === "b").map((u) => u.readings[0])).toEqual(rs);
    const paced = new CsvSource({ readings: rs, deviceIds: ["a"], paced: true, startMs: START });
    expect(take(paced, 10).map((u) => u.sendAt)).toEqual(rs.map((r) => r.t - rs[0]!.t + START));
  });
});
