// The `Idempotency-Key` header of commands, over HTTP and the NATS service alike: a caller that retries
// a command under the same key gets the first application's result instead of a second application
// (the twin's runner keeps the last keys per device; see docs/runtime.md, "Idempotent commands").
import { idempotencyKeyProblem, IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN, RuntimeErrors } from "../../runtime/mod.ts";
import { ProblemError } from "../errors.ts";

/** Request header (HTTP and NATS) carrying a command's idempotency key. */
export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";

/** Response header (HTTP and NATS), `true` on a command answered from an earlier application under its key. */
export const IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed";

/** JSON-schema of a valid key (documentation; {@link idempotencyKeyOf} checks it). */
export const IDEMPOTENCY_KEY_SCHEMA = {
  type: "string",
  minLength: 1,
  maxLength: IDEMPOTENCY_KEY_MAX_LENGTH,
  pattern: IDEMPOTENCY_KEY_PATTERN.source,
} as const;

/**
 * The key of a request from every value its header had (none: no key).
 * @throws ProblemError 400 AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID when it is invalid or given more than once.
 */
export function idempotencyKeyOf(values: readonly string[]): string | undefined {
  if (values.length === 0) return undefined;
  if (values.length > 1) throw invalid("must be given once");
  const problem = idempotencyKeyProblem(values[0]);
  if (problem !== undefined) throw invalid(problem);
  return values[0];
}

function invalid(problem: string): ProblemError {
  const field = `headers.${IDEMPOTENCY_KEY_HEADER.toLowerCase()}`;
  return new ProblemError(RuntimeErrors.IDEMPOTENCY_KEY_INVALID.code, `${IDEMPOTENCY_KEY_HEADER} ${problem}`, [{ field, message: problem }]);
}
