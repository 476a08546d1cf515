// Reading series for the ML benchmark: the two UCI files as two real devices (1-minute readings of
// co2/tmp/hum, one office) and a synthetic fleet from the simulator (sim/model: 5-minute readings of
// all six channels, rooms of every kind, without outages or resends: faults are injected by inject.ts
// where a scenario wants them).

import type { Reading } from "../../actors/device-twin/domain/types.ts";
import { DeviceSim } from "../../sim/model/device.ts";
import { UCI_TEST, UCI_TRAINING, loadUciReadings } from "../../test/domain/uci.ts";

/** One device's clean readings. */
export interface DeviceSeries {
  name: string;
  readings: Reading[];
}

export const FIVE_MIN = 300_000;

/** The UCI training and test files as two devices. */
export function uciDevices(): DeviceSeries[] {
  return [
    { name: "uci-training", readings: loadUciReadings(UCI_TRAINING) },
    { name: "uci-test", readings: loadUciReadings(UCI_TEST) },
  ];
}

/** `devices` simulated devices, `days` days of 5-minute readings from 2025-01-06 (a Monday). */
export function simDevices(devices: number, days: number, seed = 7): DeviceSeries[] {
  const startMs = Date.UTC(2025, 0, 6);
  const endMs = startMs + days * 86_400_000;
  return Array.from({ length: devices }, (_, index) => {
    const deviceId = `sim-${index + 1}`;
    const sim = new DeviceSim({ seed, index, deviceId, startMs, intervalMs: FIVE_MIN, faults: false });
    const readings: Reading[] = [];
    while (sim.peekSendAt() < endMs) for (const r of sim.next().readings) readings.push(r);
    return { name: `${deviceId}-${sim.room.kind}`, readings };
  });
}
