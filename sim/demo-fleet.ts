// The demo fleet of `airtwin dev --simulate N` (npm start): a user `demo` and N devices named after their
// rooms (demo-001-kitchen, …), simulated from a week in the past at 288× (a day every 5 minutes, one
// reading per device every ~1 s of wall time) until event time reaches the wall clock, then following it
// with a reading every 10 s. The user's API key, the device tokens and the fleet's clock are kept in
// <data dir>/demo-fleet.json, so a restart reuses them and resumes where the fleet stopped.
import { fleetDeviceId } from "./model/fleet.ts";
import { readFleetFile, writeFleetFile, type FleetFile } from "./fleet-file.ts";
import { setupHttpFleet } from "./setup.ts";

export const DEMO_FLEET_FILE = "demo-fleet.json";

/**
 * Wall-clock silence after which `airtwin dev --simulate` has twins report a device offline (ms): three
 * missed uploads at the demo's live cadence (10 s), as the default 15 min is for a Foobot's 5 minutes.
 */
export const DEMO_OFFLINE_AFTER_MS = 30_000;

/** The demo's settings (recorded in the fleet file at its first start). */
export const DEMO = {
  userId: "demo",
  idPrefix: "demo",
  seed: 2026,
  speed: 288,
  intervalMs: 300_000,
  liveIntervalMs: 10_000,
  historyMs: 7 * 86_400_000,
} as const;

export interface DemoFleetInfo {
  userId: string;
  apiKey: string;
  devices: number;
  first: string;
  last: string;
  speed: number;
}

export interface PrepareDemoOptions {
  gatewayUrl: string;
  adminToken: string;
  fleetFile: string;
  devices: number;
  log?: (line: string) => void;
  now?: number;
}

/** Registers what is missing of the demo fleet and records it in the fleet file; idempotent. */
export async function prepareDemoFleet(o: PrepareDemoOptions): Promise<DemoFleetInfo> {
  const now = o.now ?? Date.now();
  const earlier = readFleetFile(o.fleetFile);
  const file: FleetFile = earlier ?? {
    version: 1,
    userId: DEMO.userId,
    tokens: {},
    seed: DEMO.seed,
    idPrefix: DEMO.idPrefix,
    kindInId: true,
    intervalMs: DEMO.intervalMs,
    liveIntervalMs: DEMO.liveIntervalMs,
    speed: DEMO.speed,
    startMs: Math.floor((now - DEMO.historyMs) / 3_600_000) * 3_600_000,
  };
  file.devices = o.devices;
  file.gatewayUrl = o.gatewayUrl;
  const ids = Array.from({ length: o.devices }, (_, i) => fleetDeviceId({ seed: file.seed ?? DEMO.seed, devices: o.devices, idPrefix: file.idPrefix ?? DEMO.idPrefix, kindInId: true }, i));
  await setupHttpFleet({
    gatewayUrl: o.gatewayUrl,
    adminToken: o.adminToken,
    userId: file.userId,
    deviceIds: ids,
    file,
    replaceUnknown: true,
    ...(o.log ? { log: (l: string) => o.log!(`airtwin dev: ${l}`) } : {}),
  });
  writeFleetFile(o.fleetFile, file);
  return { userId: file.userId, apiKey: file.apiKey ?? "(unknown)", devices: ids.length, first: ids[0]!, last: ids[ids.length - 1]!, speed: file.speed ?? DEMO.speed };
}
