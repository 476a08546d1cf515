// Error catalogue of the twin domain. Codes follow AIRTWIN_ERR_<AREA>_<WHAT>; docs/errors.md lists them
// (checked by a test). The gateway maps codes to HTTP status in one table.

import type { Problem } from "./types.ts";

export const DomainErrors = {
  DEVICE_ID_INVALID: { code: "AIRTWIN_ERR_DEVICE_ID_INVALID", message: "device id must be 1-64 characters of [A-Za-z0-9_-]" },
  READING_INVALID: { code: "AIRTWIN_ERR_READING_INVALID", message: "one or more readings are invalid" },
  READINGS_TOO_MANY: { code: "AIRTWIN_ERR_READINGS_TOO_MANY", message: "too many readings in one request" },
  FOOBOT_SHAPE_INVALID: { code: "AIRTWIN_ERR_FOOBOT_SHAPE_INVALID", message: "Foobot datapoints body is malformed" },
  COMMAND_INVALID: { code: "AIRTWIN_ERR_COMMAND_INVALID", message: "command is malformed" },
  RULE_INVALID: { code: "AIRTWIN_ERR_RULE_INVALID", message: "rule is invalid" },
  RULE_NOT_FOUND: { code: "AIRTWIN_ERR_RULE_NOT_FOUND", message: "no such rule" },
  RULE_LIMIT: { code: "AIRTWIN_ERR_RULE_LIMIT", message: "too many rules on this device" },
  SUBSCRIPTION_INVALID: { code: "AIRTWIN_ERR_SUBSCRIPTION_INVALID", message: "subscription is invalid" },
  SUBSCRIPTION_NOT_FOUND: { code: "AIRTWIN_ERR_SUBSCRIPTION_NOT_FOUND", message: "no such subscription" },
  SUBSCRIPTION_LIMIT: { code: "AIRTWIN_ERR_SUBSCRIPTION_LIMIT", message: "too many subscriptions on this device" },
  SNAPSHOT_VERSION: { code: "AIRTWIN_ERR_SNAPSHOT_VERSION", message: "snapshot has an unknown version" },
  SNAPSHOT_CORRUPT: { code: "AIRTWIN_ERR_SNAPSHOT_CORRUPT", message: "snapshot cannot be decoded" },
} as const;

export type DomainErrorName = keyof typeof DomainErrors;

/** Thrown only where a value cannot be returned (snapshot decoding); elsewhere the domain returns a Problem. */
export class DomainError extends Error {
  override readonly name = "DomainError";
  readonly code: string;
  readonly details: unknown;
  constructor(which: DomainErrorName, message?: string, options?: { cause?: unknown; details?: unknown }) {
    super(message ?? DomainErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = DomainErrors[which].code;
    this.details = options?.details;
  }
}

/** Builds a Problem value from a catalogue entry. */
export function problem(which: DomainErrorName, message?: string, details?: Problem["details"]): Problem {
  const p: Problem = { code: DomainErrors[which].code, message: message ?? DomainErrors[which].message };
  if (details !== undefined && details.length > 0) p.details = details;
  return p;
}
