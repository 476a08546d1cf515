import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { applyInput, createTwin } from "../twin.ts";
import type { TwinState } from "../twin.ts";
import { decodeTwin, encodeTwin, twinEqual } from "../twin-snapshot.ts";
import type { Alert, Reading, TwinOutput } from "../types.ts";
import { twinView } from "../view.ts";
import { rng } from "../../../../test/harness/rng.ts";
import { createStats, decodeStats, encodeStats, resetStats, statsEqual } from "../stats.ts";
import { isLearnedEmpty, isOccupied, resetLearned } from "./learned-state.ts";
import { decodeLearned, encodeLearned } from "./learned-snapshot.ts";

const T0 = Date.UTC(2025, 0, 6); // a Monday, 00:00 UTC
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const STEP = 5 * MIN;

/** A normal room at Foobot's cadence: daily cycles and noise on every channel, co2 below the default rule. */
function normalDays(days: number, seed = 1): Reading[] {
  const rand = rng(seed);
  const noise = () => rand() + rand() - 1;
  const out: Reading[] = [];
  for (let t = T0; t < T0 + days * DAY; t += STEP) {
    const day = Math.sin((2 * Math.PI * (t % DAY)) / DAY);
    out.push({
      t,
      pm: Math.round((8 + 3 * day + 1.5 * noise()) * 10) / 10,
      co2: Math.round(650 + 200 * day + 25 * noise()),
      voc: Math.round(150 + 40 * day + 10 * noise()),
      tmp: Math.round((21 + 1.5 * day + 0.1 * noise()) * 100) / 100,
      hum: Math.round((45 + 5 * day + 0.5 * noise()) * 10) / 10,
      allpollu: Math.round((20 + 5 * day + 2 * noise()) * 10) / 10,
    });
  }
  return out;
}

function feed(twin: TwinState, readings: readonly Reading[], perUpload = 1): TwinOutput[] {
  const outputs: TwinOutput[] = [];
  for (let i = 0; i < readings.length; i += perUpload) {
    const batch = readings.slice(i, i + perUpload);
    outputs.push(...applyInput(twin, { type: "readings", readings: batch, receivedAt: batch[batch.length - 1]!.t + 1000 }).outputs);
  }
  return outputs;
}

const alertsOf = (outputs: TwinOutput[], kind: Alert["kind"]): Alert[] =>
  outputs.flatMap((o) => (o.type === "alert" && o.alert.kind === kind ? [o.alert] : []));

describe("anomaly alerts", () => {
  it("a one-reading spike raises one `spike` alert with the next reading; a real change does not", () => {
    const twin = createTwin("dev");
    const days = normalDays(3);
    expect(alertsOf(feed(twin, days), "anomaly")).toEqual([]);
    const last = days[days.length - 1]!;
    const spikeT = last.t + STEP;
    const spike = { ...last, t: spikeT, voc: 900 };
    const after = normalDays(4).slice(days.length + 1, days.length + 4);
    const out = feed(twin, [spike, ...after]);
    const anomalies = alertsOf(out, "anomaly");
    expect(anomalies).toHaveLength(1);
    expect(anomalies[0]).toMatchObject({ id: `dev:voc:anomaly:${spikeT + STEP}`, channel: "voc", kind: "anomaly", reason: "spike", value: 900, at: spikeT + STEP });
    expect(anomalies[0]!.score).toBeGreaterThanOrEqual(8);
    expect(Math.abs(anomalies[0]!.expected! - 150)).toBeLessThan(80);

    // cooking: voc stays high for half an hour — an event, not a glitch
    const cooking = normalDays(5).slice(days.length + 4, days.length + 30).map((r, i) => (i < 6 ? { ...r, voc: 900 + 10 * i } : r));
    expect(alertsOf(feed(twin, cooking), "anomaly").filter((a) => a.reason === "spike")).toEqual([]);
  });

  it("alerts at most once per channel per hour", () => {
    const twin = createTwin("dev");
    const days = normalDays(3);
    feed(twin, days);
    const rest = normalDays(4).slice(days.length, days.length + 36);
    // spikes at +0, +30 min and +2 h (each one reading)
    for (const k of [0, 6, 24]) rest[k] = { ...rest[k]!, pm: 400 };
    const spikes = alertsOf(feed(twin, rest), "anomaly").filter((a) => a.channel === "pm");
    expect(spikes.map((a) => a.at)).toEqual([rest[1]!.t, rest[25]!.t]);
  });

  it("a sensor stuck on one value for over 2 h raises one `stuck` alert; co2 flat at its empty-room floor does not", () => {
    const twin = createTwin("dev");
    const days = normalDays(3);
    feed(twin, days);
    const next = normalDays(4).slice(days.length, days.length + 48).map((r) => ({ ...r, hum: 47.3 }));
    const stuck = alertsOf(feed(twin, next), "anomaly");
    expect(stuck.map((a) => [a.channel, a.reason])).toEqual([["hum", "stuck"]]);
    expect(stuck[0]!.at - next[0]!.t).toBe(2 * HOUR);

    const office = createTwin("office");
    const quiet = normalDays(3).map((r, i) => ({ ...r, co2: i % 288 < 120 ? 420 : (r.co2 as number) }));
    expect(alertsOf(feed(office, quiet), "anomaly").filter((a) => a.channel === "co2")).toEqual([]);
  });

  it("a slow drift raises one `drift` alert", () => {
    const twin = createTwin("dev");
    const days = normalDays(9);
    const drifting = days.map((r) => (r.t < T0 + 6 * DAY ? r : { ...r, tmp: Math.round(((r.tmp as number) + Math.min(6, (r.t - T0 - 6 * DAY) / HOUR / 3)) * 100) / 100 }));
    const drifts = alertsOf(feed(twin, drifting), "anomaly").filter((a) => a.reason === "drift");
    expect(drifts).toHaveLength(1);
    expect(drifts[0]).toMatchObject({ channel: "tmp" });
    expect(drifts[0]!.at).toBeGreaterThan(T0 + 6 * DAY);
  });
});

describe("forecast alerts", () => {
  it("a co2 rise toward the rule's enter raises one `forecast` alert before event.start, none while the event is on", () => {
    const twin = createTwin("dev");
    const days = normalDays(1);
    feed(twin, days);
    const start = days[days.length - 1]!.t + STEP;
    const rise: Reading[] = [];
    for (let i = 0; i < 40; i++) rise.push({ t: start + i * STEP, co2: Math.min(1700, 700 + 30 * i) });
    const out = feed(twin, rise);
    const forecasts = alertsOf(out, "forecast");
    const starts = alertsOf(out, "event.start").filter((a) => a.ruleId === "default-co2");
    expect(forecasts).toHaveLength(1);
    expect(starts).toHaveLength(1);
    const f = forecasts[0]!;
    expect(f).toMatchObject({ id: `dev:default-co2:forecast:${f.at}`, ruleId: "default-co2", channel: "co2", threshold: 1400 });
    expect(f.at).toBeLessThan(starts[0]!.at);
    expect(f.expectedAt! - f.at).toBeLessThanOrEqual(30 * MIN);
    expect(f.value).toBeGreaterThanOrEqual(1400);
  });
});

describe("forecast alerts want a sustained move", () => {
  it("a one-reading jump toward enter that stops there raises no `forecast` alert; the same level reached in two rising readings does", () => {
    const jumped = createTwin("dev");
    const days = normalDays(1);
    feed(jumped, days);
    const start = days[days.length - 1]!.t + STEP;
    const jump: Reading[] = [];
    for (let i = 0; i < 14; i++) jump.push({ t: start + i * STEP, co2: i < 3 ? 700 : 1340 });
    expect(alertsOf(feed(jumped, jump), "forecast")).toEqual([]);

    const rising = createTwin("dev");
    feed(rising, days);
    const steps: Reading[] = [];
    for (let i = 0; i < 14; i++) steps.push({ t: start + i * STEP, co2: i < 3 ? 700 : i === 3 ? 1000 : 1340 });
    const forecasts = alertsOf(feed(rising, steps), "forecast");
    expect(forecasts).toHaveLength(1);
    expect(forecasts[0]).toMatchObject({ ruleId: "default-co2", at: start + 4 * STEP });
  });
});

describe("occupancy, view and reset", () => {
  it("the view shows occupancy and each channel's expected value and forecast; reset forgets them", () => {
    const twin = createTwin("dev");
    const days = normalDays(1);
    const out = feed(twin, days, 12);
    const view = twinView(twin);
    expect(view.occupancy).toMatchObject({ occupied: isOccupied(twin) });
    const changes = out.flatMap((o) => (o.type === "occupancy" ? [o.occupancy] : []));
    if (changes.length > 0) expect(view.occupancy!.since).toBe(changes[changes.length - 1]!.at);
    for (const ch of ["pm", "co2", "voc", "tmp", "hum", "allpollu"] as const) {
      const c = view.channels[ch]!;
      expect(Number.isFinite(c.expected)).toBe(true);
      expect(c.forecast!.map((f) => f.at - c.lastAt)).toEqual([15, 30, 45, 60].map((m) => m * MIN));
    }
    applyInput(twin, { type: "command", command: { type: "reset" }, at: 0 });
    const after = twinView(twin);
    expect(after.occupancy).toBeUndefined();
    expect(isOccupied(twin)).toBe(false);
    expect(encodeTwin(twin).length).toBeLessThan(200);
  });
});

describe("learned state in snapshots", () => {
  it("a twin restored at any point continues with the same outputs (same ids) as the original", () => {
    const base = normalDays(3, 3);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: base.length - 1 }),
        fc.array(fc.record({ at: fc.integer({ min: 0, max: base.length - 1 }), ch: fc.constantFrom("pm", "co2", "voc", "tmp", "hum", "allpollu" as const), factor: fc.double({ min: 0, max: 4, noNaN: true }), len: fc.integer({ min: 1, max: 40 }) }), { maxLength: 6 }),
        (cut, faults) => {
          const readings = base.map((r) => ({ ...r }));
          for (const f of faults) for (let i = f.at; i < Math.min(readings.length, f.at + f.len); i++) readings[i]![f.ch] = Math.round((readings[f.at]![f.ch] as number) * f.factor);
          const original = createTwin("dev");
          feed(original, readings.slice(0, cut), 3);
          const restored = decodeTwin(encodeTwin(original));
          expect(twinEqual(restored, original)).toBe(true);
          // the original holds its last decision's score, the restored twin its probability: one view
          expect(twinView(restored).occupancy).toEqual(twinView(original).occupancy);
          expect(feed(restored, readings.slice(cut), 3)).toEqual(feed(original, readings.slice(cut), 3));
        },
      ),
      { numRuns: 15 },
    );
  });

  it("refuses a corrupt learned section with SNAPSHOT_CORRUPT, an unknown section version with SNAPSHOT_VERSION", () => {
    const twin = createTwin("dev");
    feed(twin, normalDays(1));
    const bytes = encodeLearned(twin.learned);
    expect(bytes.length).toBeGreaterThan(100);
    expect(bytes.length).toBeLessThan(600);
    for (const bad of [bytes.subarray(0, bytes.length - 1), Uint8Array.from([...bytes, 0]), Uint8Array.from([1, 3, 0])]) {
      expect(() => decodeLearned(bad)).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT" }));
    }
    expect(() => decodeLearned(Uint8Array.from([9, ...bytes.subarray(1)]))).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_VERSION" }));
    const packr = new Packr({ useRecords: false });
    const snap = packr.unpack(encodeTwin(twin)) as Record<string, unknown>;
    expect(() => decodeTwin(packr.pack({ ...snap, v: 1 }))).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT" }));
    expect(() => decodeTwin(packr.pack({ ...snap, l: "x" }))).toThrow(expect.objectContaining({ code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT" }));
  });
});

describe("learned state inside the statistics' buffer", () => {
  it("shares the twin's one buffer without touching the statistics' bytes, nor they its", () => {
    const twin = createTwin("dev");
    feed(twin, normalDays(2));
    const learnedBytes = encodeLearned(twin.learned);
    const statsBytes = encodeStats(twin.stats);
    expect(learnedBytes.length).toBeGreaterThan(100);

    // the statistics alone: a copy without room for the learned state still equals them
    expect(statsEqual(decodeStats(statsBytes), twin.stats)).toBe(true);
    resetLearned(twin.learned);
    expect(encodeStats(twin.stats)).toEqual(statsBytes);
    expect(isLearnedEmpty(twin.learned)).toBe(true);

    const restored = decodeLearned(learnedBytes, twin.stats);
    expect(encodeLearned(restored)).toEqual(learnedBytes);
    resetStats(twin.stats);
    expect(encodeLearned(twin.learned)).toEqual(learnedBytes);
    expect(encodeStats(twin.stats)).toEqual(encodeStats(createStats()));
  });
});
