// Device presence (docs/design.md §4 "Offline"): wall-clock liveness from reading arrivals and runtime ticks.
//
// Every alert here is a pure function of `lastSeen` and `offlineAfterMs`, never of when a tick happened
// to run: `offline` is stamped at lastSeen + offlineAfterMs, and a reading that arrives after that
// deadline without a tick having marked the device offline emits the missed `offline` before `online`.
// So outputs (and their ids) are the same whether the twin was awake, passivated or ticked late.
// The state is mutated in place (owned by the twin's actor).

import type { Alert } from "./types.ts";

/** Default silence after which a device is offline: 15 min (three missed Foobot uploads). */
export const DEFAULT_OFFLINE_AFTER_MS = 15 * 60 * 1000;

/** Liveness of one device. */
export interface Presence {
  /** Wall-clock ms of the latest reading arrival (`receivedAt`); undefined until the first reading. */
  lastSeen?: number;
  /** True once the `offline` alert has been emitted, until the next reading. */
  offline: boolean;
}

/** A device never seen (neither online nor offline; no alert until it has been seen). */
export function createPresence(): Presence {
  return { offline: false };
}

function offlineAlert(p: Presence & { lastSeen: number }, deviceId: string, offlineAfterMs: number): Alert {
  return { id: `${deviceId}:offline:${p.lastSeen}`, deviceId, channel: "device", kind: "offline", at: p.lastSeen + offlineAfterMs };
}

/**
 * Records readings that arrived at wall-clock `receivedAt` (duplicates and late ones count: the device
 * is alive). Emits `online` when the device was offline; the very first reading emits nothing.
 */
export function presenceOnReadings(p: Presence, deviceId: string, receivedAt: number, offlineAfterMs: number, out: Alert[] = []): Alert[] {
  if (p.lastSeen !== undefined && !p.offline && receivedAt >= p.lastSeen + offlineAfterMs) {
    out.push(offlineAlert(p as Presence & { lastSeen: number }, deviceId, offlineAfterMs));
    p.offline = true;
  }
  if (p.offline) {
    out.push({ id: `${deviceId}:online:${receivedAt}`, deviceId, channel: "device", kind: "online", at: receivedAt });
    p.offline = false;
  }
  // Wall clocks of different gateways may disagree slightly; never move lastSeen backwards.
  if (p.lastSeen === undefined || receivedAt > p.lastSeen) p.lastSeen = receivedAt;
  return out;
}

/** A wall-clock tick: emits `offline` once when `now` has reached lastSeen + offlineAfterMs. */
export function presenceOnTick(p: Presence, deviceId: string, now: number, offlineAfterMs: number, out: Alert[] = []): Alert[] {
  if (p.lastSeen !== undefined && !p.offline && now >= p.lastSeen + offlineAfterMs) {
    out.push(offlineAlert(p as Presence & { lastSeen: number }, deviceId, offlineAfterMs));
    p.offline = true;
  }
  return out;
}

/** When the runtime should tick this twin next; undefined when already offline or never seen. */
export function presenceWakeAt(p: Presence, offlineAfterMs: number): number | undefined {
  return p.lastSeen === undefined || p.offline ? undefined : p.lastSeen + offlineAfterMs;
}

/** True when the device has been seen and is not offline (as of the last input). */
export function isOnline(p: Presence): boolean {
  return p.lastSeen !== undefined && !p.offline;
}
