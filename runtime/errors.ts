// Error catalogue of the actor runtime. Codes follow AIRTWIN_ERR_<AREA>_<WHAT>; docs/errors.md lists
// them with their HTTP status (checked by a test). The gateway maps codes to HTTP status in one table.

export const RuntimeErrors = {
  CONFIG_INVALID: { code: "AIRTWIN_ERR_CONFIG_INVALID", message: "configuration is invalid" },
  NATS_UNAVAILABLE: { code: "AIRTWIN_ERR_NATS_UNAVAILABLE", message: "cannot reach NATS" },
  CODEC_DECODE: { code: "AIRTWIN_ERR_CODEC_DECODE", message: "payload is not valid MessagePack" },
  SHARDS_MISMATCH: {
    code: "AIRTWIN_ERR_SHARDS_MISMATCH",
    message: "shard or stream count differs from the one the cluster was created with",
  },
  LEASE_FENCED: { code: "AIRTWIN_ERR_LEASE_FENCED", message: "shard lease lost: a newer owner holds it" },
  REQUEST_TIMEOUT: { code: "AIRTWIN_ERR_REQUEST_TIMEOUT", message: "request timed out" },
  ENTITY_UNKNOWN: { code: "AIRTWIN_ERR_ENTITY_UNKNOWN", message: "unknown entity type" },
  ENTITY_APPLY: { code: "AIRTWIN_ERR_ENTITY_APPLY", message: "the entity could not apply this input" },
  IDEMPOTENCY_KEY_INVALID: {
    code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID",
    message: "an idempotency key must be 1-128 printable ASCII characters, not beginning or ending with a space",
  },
  IDEMPOTENCY_KEY_REUSED: {
    code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED",
    message: "this idempotency key was used for a different command",
  },
  ENTITY_QUERY: { code: "AIRTWIN_ERR_ENTITY_QUERY", message: "the entity could not answer this query" },
  CLUSTER_META_INVALID: {
    code: "AIRTWIN_ERR_CLUSTER_META_INVALID",
    message: "the cluster meta record is unreadable or of an unknown version",
  },
  CLUSTER_NODE_ID_IN_USE: { code: "AIRTWIN_ERR_CLUSTER_NODE_ID_IN_USE", message: "another live node uses this node id" },
  OPS_INVALID_REQUEST: { code: "AIRTWIN_ERR_OPS_INVALID_REQUEST", message: "malformed ops request" },
  OPS_SHARD_RANGE: { code: "AIRTWIN_ERR_OPS_SHARD_RANGE", message: "shard is out of range" },
  OPS_NODE_UNKNOWN: { code: "AIRTWIN_ERR_OPS_NODE_UNKNOWN", message: "no live node has this id" },
  OPS_NODE_DRAINING: { code: "AIRTWIN_ERR_OPS_NODE_DRAINING", message: "the node is draining or leaving and takes no shards" },
  OPS_NOT_COORDINATOR: { code: "AIRTWIN_ERR_OPS_NOT_COORDINATOR", message: "this node is not the cluster coordinator" },
  OPS_NO_COORDINATOR: { code: "AIRTWIN_ERR_OPS_NO_COORDINATOR", message: "no cluster coordinator answered" },
  OPS_NO_CLUSTER: { code: "AIRTWIN_ERR_OPS_NO_CLUSTER", message: "no airtwin cluster runs on this NATS server" },
} as const;

export type RuntimeErrorName = keyof typeof RuntimeErrors;
export type RuntimeErrorCode = (typeof RuntimeErrors)[RuntimeErrorName]["code"];

/** An error of the runtime: a catalogue `code`, a human message, structured `details` and the `cause`. */
export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  readonly code: RuntimeErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(
    which: RuntimeErrorName,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? RuntimeErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = RuntimeErrors[which].code;
    this.details = options?.details;
  }
}

/** True when `err` is a RuntimeError, of catalogue entry `which` if given. */
export function isRuntimeError(err: unknown, which?: RuntimeErrorName): err is RuntimeError {
  return err instanceof RuntimeError && (which === undefined || err.code === RuntimeErrors[which].code);
}
