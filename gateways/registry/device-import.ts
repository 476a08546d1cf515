// A bulk registration of devices (an operator bringing a fleet in: `POST /v1/devices/import`,
// `airtwin ops device import`): the entries, what each one came to, and the checks made before anything
// is written — the whole import is refused for any bad entry, so a typo never half-registers a file.
import { validateDeviceId } from "../../actors/device-twin/domain/mod.ts";
import type { ErrorDetail } from "../errors.ts";
import { isValidUserId } from "./records.ts";

/** Most devices in one import (one request, one call): a bigger file is imported in several. */
export const DEVICE_IMPORT_MAX = 10_000;

/** Problems reported in an error's `details` at most (the count is in its message). */
const DETAILS_MAX = 100;

/** One device to register. */
export interface DeviceImportEntry {
  deviceId: string;
  ownerId: string;
}

/**
 * What one entry came to: its token (shown once, like a single registration's), or why it was not
 * registered — `AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS` (left as it was: an interrupted import run again
 * skips what it did) or `AIRTWIN_ERR_NATS_UNAVAILABLE` (not stored: import that entry again).
 */
export type DeviceImportResult = { deviceId: string; token: string } | { deviceId: string; code: string; message: string };

/**
 * Every problem of an import, each with its entry's index: ids that are not valid device ids, owners
 * that are not registered users, an id given twice, more than `max` entries (one request's
 * {@link DEVICE_IMPORT_MAX}; a file the CLI sends in parts is checked whole).
 * Empty when the import may go ahead. At most 100 are listed; `count` is how many there are.
 */
export function importProblems(entries: readonly unknown[], userExists: (userId: string) => boolean, max = DEVICE_IMPORT_MAX): { count: number; details: ErrorDetail[] } {
  const details: ErrorDetail[] = [];
  let count = 0;
  const add = (d: ErrorDetail) => {
    count++;
    if (details.length < DETAILS_MAX) details.push(d);
  };
  if (entries.length === 0) add({ field: "devices", message: "must list at least one device" });
  if (entries.length > max) add({ field: "devices", message: `must list at most ${max} devices (import a bigger fleet in parts)` });
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    const e = (typeof entry === "object" && entry !== null ? entry : {}) as Partial<Record<keyof DeviceImportEntry, unknown>>;
    const problem = validateDeviceId(e.deviceId);
    if (problem !== undefined) add({ index, field: "deviceId", message: problem.details?.[0]?.message ?? problem.message });
    else if (seen.has(e.deviceId as string)) add({ index, field: "deviceId", message: `"${e.deviceId as string}" is listed twice` });
    else seen.add(e.deviceId as string);
    if (!isValidUserId(e.ownerId) || !userExists(e.ownerId)) add({ index, field: "ownerId", message: "must be a registered user" });
  });
  return { count, details };
}

/**
 * Parses an import file: one device a line, `deviceId` or `deviceId,ownerId` (CSV; a first line
 * `deviceId,ownerId` is a header), or JSON lines `{"deviceId": …, "ownerId": …}`. `ownerId` defaults to
 * `defaultOwner`. Blank lines are skipped; a line that is neither gets an entry the checks refuse.
 */
export function parseImportLines(text: string, defaultOwner: string | undefined): DeviceImportEntry[] {
  const out: DeviceImportEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || /^deviceId\s*(,\s*ownerId\s*)?$/i.test(line)) continue;
    if (line.startsWith("{")) {
      let v: { deviceId?: unknown; ownerId?: unknown } = {};
      try {
        v = JSON.parse(line) as typeof v;
      } catch {
        // left empty: refused below as an invalid id
      }
      out.push({ deviceId: v.deviceId as string, ownerId: (v.ownerId ?? defaultOwner) as string });
      continue;
    }
    const [deviceId, ownerId] = line.split(",").map((s) => s.trim());
    out.push({ deviceId: deviceId!, ownerId: (ownerId === undefined || ownerId === "" ? defaultOwner : ownerId) as string });
  }
  return out;
}
