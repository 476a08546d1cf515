import { describe, expect, it } from "vitest";
import { createPresence, isOnline, presenceOnReadings, presenceOnTick, presenceWakeAt } from "./presence.ts";

const OFF = 15 * 60_000;
const T = 1_700_000_000_000;

describe("presence", () => {
  it("a never-seen device has no wake-up and never goes offline", () => {
    const p = createPresence();
    expect(presenceWakeAt(p, OFF)).toBeUndefined();
    expect(presenceOnTick(p, "d", T + 10 * OFF, OFF)).toEqual([]);
    expect(isOnline(p)).toBe(false);
  });

  it("the first reading emits nothing and schedules a wake-up at lastSeen + offlineAfterMs", () => {
    const p = createPresence();
    expect(presenceOnReadings(p, "d", T, OFF)).toEqual([]);
    expect(isOnline(p)).toBe(true);
    expect(presenceWakeAt(p, OFF)).toBe(T + OFF);
  });

  it("goes offline exactly once, at lastSeen + offlineAfterMs, then online with the next reading", () => {
    const p = createPresence();
    presenceOnReadings(p, "d", T, OFF);
    expect(presenceOnTick(p, "d", T + OFF - 1, OFF)).toEqual([]);
    const offline = { id: `d:offline:${T}`, deviceId: "d", channel: "device", kind: "offline", at: T + OFF };
    expect(presenceOnTick(p, "d", T + OFF + 5000, OFF)).toEqual([offline]);
    expect(presenceOnTick(p, "d", T + OFF + 6000, OFF)).toEqual([]);
    expect(presenceOnTick(p, "d", T + 10 * OFF, OFF)).toEqual([]);
    expect(presenceWakeAt(p, OFF)).toBeUndefined();
    expect(isOnline(p)).toBe(false);
    const back = T + 2 * OFF;
    expect(presenceOnReadings(p, "d", back, OFF)).toEqual([{ id: `d:online:${back}`, deviceId: "d", channel: "device", kind: "online", at: back }]);
    expect(presenceOnReadings(p, "d", back + 1, OFF)).toEqual([]);
    expect(presenceWakeAt(p, OFF)).toBe(back + 1 + OFF);
  });

  it("a reading after the deadline without a tick emits the missed offline, then online (same ids)", () => {
    const ticked = createPresence();
    const passive = createPresence();
    presenceOnReadings(ticked, "d", T, OFF);
    presenceOnReadings(passive, "d", T, OFF);
    const viaTick = [...presenceOnTick(ticked, "d", T + OFF + 999, OFF), ...presenceOnReadings(ticked, "d", T + 3 * OFF, OFF)];
    const viaReading = presenceOnReadings(passive, "d", T + 3 * OFF, OFF);
    expect(viaReading).toEqual(viaTick);
    expect(viaReading.map((a) => a.kind)).toEqual(["offline", "online"]);
  });

  it("readings keep the device online; lastSeen never moves backwards", () => {
    const p = createPresence();
    presenceOnReadings(p, "d", T, OFF);
    presenceOnReadings(p, "d", T + OFF - 1, OFF);
    presenceOnReadings(p, "d", T + 5, OFF);
    expect(p.lastSeen).toBe(T + OFF - 1);
    expect(presenceOnTick(p, "d", T + OFF + 10, OFF)).toEqual([]);
  });
});
