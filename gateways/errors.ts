// Error catalogue of gateways/ and the one table that maps every error code the gateway can answer with
// (its own, the runtime's, the twin domain's) to an HTTP status. Codes follow AIRTWIN_ERR_<AREA>_<WHAT>;
// docs/errors.md lists them (checked by a test). Responses carry `{ statusCode, code, error, message,
// details? }` and never a stack trace.
import { STATUS_CODES } from "node:http";
import { DomainError, type DomainErrors } from "../actors/device-twin/domain/mod.ts";
import { PublishError, RuntimeError, RuntimeErrors } from "../runtime/mod.ts";

export const GatewayErrors = {
  AUTH_UNAUTHORIZED: { code: "AIRTWIN_ERR_AUTH_UNAUTHORIZED", message: "missing or invalid credentials", status: 401 },
  AUTH_FORBIDDEN: { code: "AIRTWIN_ERR_AUTH_FORBIDDEN", message: "these credentials do not give access to this resource", status: 403 },
  HTTP_NOT_FOUND: { code: "AIRTWIN_ERR_HTTP_NOT_FOUND", message: "no such route", status: 404 },
  HTTP_BODY_INVALID: { code: "AIRTWIN_ERR_HTTP_BODY_INVALID", message: "the request body is not valid JSON", status: 400 },
  HTTP_BODY_TOO_LARGE: { code: "AIRTWIN_ERR_HTTP_BODY_TOO_LARGE", message: "the request body is too large", status: 413 },
  HTTP_CONTENT_TYPE: {
    code: "AIRTWIN_ERR_HTTP_CONTENT_TYPE",
    message: "unsupported Content-Type (application/json or application/msgpack)",
    status: 415,
  },
  HTTP_VALIDATION: { code: "AIRTWIN_ERR_HTTP_VALIDATION", message: "the request does not match the route's schema", status: 400 },
  HTTP_QUERY_INVALID: { code: "AIRTWIN_ERR_HTTP_QUERY_INVALID", message: "a query parameter is invalid", status: 400 },
  HTTP_INTERNAL: { code: "AIRTWIN_ERR_HTTP_INTERNAL", message: "internal error", status: 500 },
  HTTP_REQUEST_TIMEOUT: { code: "AIRTWIN_ERR_HTTP_REQUEST_TIMEOUT", message: "the request was not received in time", status: 408 },
  HTTP_HEADERS_TOO_LARGE: { code: "AIRTWIN_ERR_HTTP_HEADERS_TOO_LARGE", message: "the request line and headers are too large", status: 431 },
  HTTP_MALFORMED: { code: "AIRTWIN_ERR_HTTP_MALFORMED", message: "the request is not valid HTTP/1.1", status: 400 },
  HTTP_URL_INVALID: { code: "AIRTWIN_ERR_HTTP_URL_INVALID", message: "the URL path is not valid (bad percent-encoding)", status: 400 },
  HTTP_URL_TOO_LONG: { code: "AIRTWIN_ERR_HTTP_URL_TOO_LONG", message: "a path parameter of the URL is too long", status: 414 },
  HTTP_EXPECTATION_FAILED: { code: "AIRTWIN_ERR_HTTP_EXPECTATION_FAILED", message: "the only expectation supported is Expect: 100-continue", status: 417 },
  HTTP_METHOD_NOT_ALLOWED: { code: "AIRTWIN_ERR_HTTP_METHOD_NOT_ALLOWED", message: "this server does not support this method", status: 405 },
  HTTP_TOO_MANY_CONNECTIONS: {
    code: "AIRTWIN_ERR_HTTP_TOO_MANY_CONNECTIONS",
    message: "too many open connections from this client; close some and retry",
    status: 429,
  },
  GATEWAY_SHUTTING_DOWN: { code: "AIRTWIN_ERR_GATEWAY_SHUTTING_DOWN", message: "the gateway is shutting down; retry", status: 503 },
  INGEST_RATE_LIMITED: { code: "AIRTWIN_ERR_INGEST_RATE_LIMITED", message: "too many requests for this device; retry later", status: 429 },
  INPUT_NOT_STORED: {
    code: "AIRTWIN_ERR_INPUT_NOT_STORED",
    message: "JetStream did not confirm the input in time; resend it (re-sending readings is harmless)",
    status: 503,
  },
  REGISTRY_DEVICE_NOT_FOUND: { code: "AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND", message: "no such device", status: 404 },
  REGISTRY_DEVICE_EXISTS: { code: "AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS", message: "a device with this id is already registered", status: 409 },
  REGISTRY_USER_NOT_FOUND: { code: "AIRTWIN_ERR_REGISTRY_USER_NOT_FOUND", message: "no such user", status: 404 },
  REGISTRY_USER_EXISTS: { code: "AIRTWIN_ERR_REGISTRY_USER_EXISTS", message: "a user with this id already exists", status: 409 },
  REGISTRY_USER_ID_INVALID: { code: "AIRTWIN_ERR_REGISTRY_USER_ID_INVALID", message: "user id must be 1-64 characters of [A-Za-z0-9_-]", status: 400 },
  REGISTRY_OWNER_UNKNOWN: { code: "AIRTWIN_ERR_REGISTRY_OWNER_UNKNOWN", message: "the owner is not a registered user", status: 400 },
  REGISTRY_IMPORT_INVALID: {
    code: "AIRTWIN_ERR_REGISTRY_IMPORT_INVALID",
    message: "the device import has invalid entries; nothing was registered",
    status: 400,
  },
  REGISTRY_CONFLICT: {
    code: "AIRTWIN_ERR_REGISTRY_CONFLICT",
    message: "the registry entry changed concurrently; retry",
    status: 409,
  },
  REGISTRY_LOOKUP_UNAVAILABLE: {
    code: "AIRTWIN_ERR_REGISTRY_LOOKUP_UNAVAILABLE",
    message: "this gateway does not know the device yet and could not ask the registry now; retry",
    status: 503,
  },
  ARCHIVE_DB_OPTIONS: { code: "AIRTWIN_ERR_ARCHIVE_DB_OPTIONS", message: "invalid archive database options", status: 500 },
  ARCHIVE_DB_LOCKED: { code: "AIRTWIN_ERR_ARCHIVE_DB_LOCKED", message: "the embedded archive database is open in another process", status: 500 },
  ARCHIVE_MIGRATION_INVALID: { code: "AIRTWIN_ERR_ARCHIVE_MIGRATION_INVALID", message: "a component's migrations are not numbered 1, 2, 3, …", status: 500 },
  ARCHIVE_MIGRATION_CHANGED: { code: "AIRTWIN_ERR_ARCHIVE_MIGRATION_CHANGED", message: "the database schema does not match the migrations of this program", status: 500 },
  ARCHIVE_UNAVAILABLE: { code: "AIRTWIN_ERR_ARCHIVE_UNAVAILABLE", message: "no archive answered; retry", status: 503 },
  ARCHIVE_CURSOR_INVALID: { code: "AIRTWIN_ERR_ARCHIVE_CURSOR_INVALID", message: "the cursor is not one this route returned", status: 400 },
  ARCHIVE_RESTORE_BUSY: { code: "AIRTWIN_ERR_ARCHIVE_RESTORE_BUSY", message: "a shard to restore is owned by a running node", status: 409 },
  ARCHIVE_RESTORE_INVALID: { code: "AIRTWIN_ERR_ARCHIVE_RESTORE_INVALID", message: "invalid restore or export arguments", status: 400 },
} as const;

export type GatewayErrorName = keyof typeof GatewayErrors;
export type GatewayErrorCode = (typeof GatewayErrors)[GatewayErrorName]["code"];

/** One offending field of a request (and the index of the reading or datapoint, if any). */
export interface ErrorDetail {
  index?: number;
  field: string;
  message: string;
}

/** The body of every error response (HTTP and the NATS services). */
export interface ErrorBody {
  statusCode: number;
  code: string;
  /** HTTP reason phrase of `statusCode`. */
  error: string;
  message: string;
  details?: ErrorDetail[] | Record<string, unknown>;
}

/** An error of the gateway: a catalogue `code`, its HTTP `statusCode`, a message, `details` and the `cause`. */
export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly code: GatewayErrorCode;
  readonly statusCode: number;
  readonly details: ErrorBody["details"];
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    which: GatewayErrorName,
    message?: string,
    options?: { cause?: unknown; details?: ErrorBody["details"]; headers?: Record<string, string> },
  ) {
    super(message ?? GatewayErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = GatewayErrors[which].code;
    this.statusCode = GatewayErrors[which].status;
    this.details = options?.details;
    this.headers = options?.headers ?? {};
  }
}

/** An error carrying a code of the twin domain (a rejected reading batch, command, rule, ...). */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  constructor(
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
  }
}

/**
 * HTTP status of every code the gateway answers with: its own catalogue, the twin domain's and the
 * runtime's. The one table (STYLE: "the gateway maps codes to HTTP status in one table").
 */
const DOMAIN_STATUS: Record<(typeof DomainErrors)[keyof typeof DomainErrors]["code"], number> = {
  AIRTWIN_ERR_DEVICE_ID_INVALID: 400,
  AIRTWIN_ERR_READING_INVALID: 400,
  AIRTWIN_ERR_READINGS_TOO_MANY: 413,
  AIRTWIN_ERR_FOOBOT_SHAPE_INVALID: 400,
  AIRTWIN_ERR_COMMAND_INVALID: 400,
  AIRTWIN_ERR_RULE_INVALID: 400,
  AIRTWIN_ERR_RULE_NOT_FOUND: 404,
  AIRTWIN_ERR_RULE_LIMIT: 409,
  AIRTWIN_ERR_SUBSCRIPTION_INVALID: 400,
  AIRTWIN_ERR_SUBSCRIPTION_NOT_FOUND: 404,
  AIRTWIN_ERR_SUBSCRIPTION_LIMIT: 409,
  AIRTWIN_ERR_SNAPSHOT_VERSION: 500,
  AIRTWIN_ERR_SNAPSHOT_CORRUPT: 500,
};

/**
 * Runtime codes. Partial on purpose: the runtime's catalogue grows in other hands, and a code missing
 * here answers 500 (test/gateway/ops-health.test.ts, "maps every runtime code per the table", fails
 * until it is mapped; test/docs/errors-doc.test.ts checks docs/errors.md against this table).
 */
const RUNTIME_STATUS: Partial<Record<(typeof RuntimeErrors)[keyof typeof RuntimeErrors]["code"], number>> = {
  AIRTWIN_ERR_CONFIG_INVALID: 500,
  AIRTWIN_ERR_NATS_UNAVAILABLE: 503,
  AIRTWIN_ERR_CODEC_DECODE: 400,
  AIRTWIN_ERR_SHARDS_MISMATCH: 500,
  AIRTWIN_ERR_LEASE_FENCED: 503,
  AIRTWIN_ERR_REQUEST_TIMEOUT: 504,
  AIRTWIN_ERR_ENTITY_UNKNOWN: 500,
  AIRTWIN_ERR_ENTITY_APPLY: 500,
  AIRTWIN_ERR_ENTITY_QUERY: 500,
  AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID: 400,
  // as draft-ietf-httpapi-idempotency-key-header: a key reused with a different payload
  AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED: 422,
  AIRTWIN_ERR_CLUSTER_META_INVALID: 500,
  AIRTWIN_ERR_CLUSTER_NODE_ID_IN_USE: 409,
  AIRTWIN_ERR_OPS_INVALID_REQUEST: 400,
  AIRTWIN_ERR_OPS_SHARD_RANGE: 400,
  AIRTWIN_ERR_OPS_NODE_UNKNOWN: 404,
  AIRTWIN_ERR_OPS_NODE_DRAINING: 409,
  AIRTWIN_ERR_OPS_NOT_COORDINATOR: 503,
  AIRTWIN_ERR_OPS_NO_COORDINATOR: 503,
  // today only airtwin ops meets it; a cluster whose first node has not started yet is worth a retry
  AIRTWIN_ERR_OPS_NO_CLUSTER: 503,
};

const GATEWAY_STATUS = Object.fromEntries(Object.values(GatewayErrors).map((e) => [e.code, e.status])) as Record<GatewayErrorCode, number>;

export const HTTP_STATUS: Readonly<Record<string, number>> = Object.freeze({ ...RUNTIME_STATUS, ...DOMAIN_STATUS, ...GATEWAY_STATUS });

/** Codes that mean "try again shortly": their responses carry Retry-After. */
const RETRYABLE = new Set<string>([
  GatewayErrors.INPUT_NOT_STORED.code,
  GatewayErrors.HTTP_TOO_MANY_CONNECTIONS.code,
  GatewayErrors.GATEWAY_SHUTTING_DOWN.code,
  GatewayErrors.REGISTRY_LOOKUP_UNAVAILABLE.code,
  GatewayErrors.ARCHIVE_UNAVAILABLE.code,
  RuntimeErrors.NATS_UNAVAILABLE.code,
  RuntimeErrors.LEASE_FENCED.code,
  RuntimeErrors.OPS_NO_COORDINATOR.code,
  RuntimeErrors.OPS_NOT_COORDINATOR.code,
  RuntimeErrors.OPS_NO_CLUSTER.code,
]);

/** HTTP status of a code; 500 for a code not in the table. */
export function statusOf(code: string): number {
  return HTTP_STATUS[code] ?? 500;
}

/** True when answers with this code carry `Retry-After`. */
export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

/** Builds the error body for a code. */
export function errorBody(code: string, message: string, details?: ErrorBody["details"], statusCode = statusOf(code)): ErrorBody {
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? "Error", message };
  if (details !== undefined && (!Array.isArray(details) || details.length > 0)) body.details = details;
  return body;
}

/** An error mapped for a response: body, extra headers, and whether it was unexpected (to be logged). */
export interface MappedError {
  body: ErrorBody;
  headers: Record<string, string>;
  /** True for errors the gateway did not expect (answered as a generic 500 and logged). */
  unexpected: boolean;
}

/**
 * Maps any error to its response. Known coded errors keep their code, message and details; a
 * PublishError (JetStream did not confirm) becomes AIRTWIN_ERR_INPUT_NOT_STORED; anything else becomes
 * a generic AIRTWIN_ERR_HTTP_INTERNAL without internals. Retryable codes get `Retry-After`.
 */
export function mapError(err: unknown, retryAfterSeconds = 1): MappedError {
  let mapped: MappedError;
  if (err instanceof GatewayError) {
    mapped = { body: errorBody(err.code, err.message, err.details, err.statusCode), headers: { ...err.headers }, unexpected: false };
  } else if (err instanceof ProblemError) {
    mapped = { body: errorBody(err.code, err.message, err.details), headers: {}, unexpected: false };
  } else if (err instanceof PublishError) {
    mapped = { body: errorBody(GatewayErrors.INPUT_NOT_STORED.code, `${GatewayErrors.INPUT_NOT_STORED.message} (${err.message})`), headers: {}, unexpected: false };
  } else if (err instanceof RuntimeError || err instanceof DomainError) {
    const status = statusOf(err.code);
    // runtime errors of status 500 (config, meta) are internals: say nothing about them
    mapped =
      status >= 500 && !isRetryable(err.code) && status !== 504
        ? { body: errorBody(GatewayErrors.HTTP_INTERNAL.code, GatewayErrors.HTTP_INTERNAL.message), headers: {}, unexpected: true }
        : { body: errorBody(err.code, err.message, detailsOf(err.details)), headers: {}, unexpected: false };
  } else {
    mapped = { body: errorBody(GatewayErrors.HTTP_INTERNAL.code, GatewayErrors.HTTP_INTERNAL.message), headers: {}, unexpected: true };
  }
  if (isRetryable(mapped.body.code) && mapped.headers["retry-after"] === undefined) mapped.headers["retry-after"] = String(retryAfterSeconds);
  return mapped;
}

function detailsOf(details: unknown): ErrorBody["details"] {
  if (details === undefined || details === null) return undefined;
  if (Array.isArray(details)) return details as ErrorDetail[];
  if (typeof details === "object") return { ...(details as Record<string, unknown>) };
  return undefined;
}
