// Device id validation (docs/design.md §4): an id becomes a NATS subject token and a KV key.

import { problem } from "./errors.ts";
import type { Problem } from "./types.ts";

/** Longest device id, in characters. */
export const MAX_DEVICE_ID_LENGTH = 64;
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** undefined when `id` is 1–64 characters of [A-Za-z0-9_-], else AIRTWIN_ERR_DEVICE_ID_INVALID. */
export function validateDeviceId(id: unknown): Problem | undefined {
  if (typeof id === "string" && DEVICE_ID.test(id)) return undefined;
  const why =
    typeof id !== "string"
      ? "must be a string"
      : id.length === 0 || id.length > MAX_DEVICE_ID_LENGTH
        ? `must be 1-${MAX_DEVICE_ID_LENGTH} characters long`
        : "may contain only A-Z, a-z, 0-9, _ and -";
  return problem("DEVICE_ID_INVALID", undefined, [{ field: "deviceId", message: why }]);
}
