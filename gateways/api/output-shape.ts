// The shape of an output (alert, report) as twins publish it, checked where the system passes outputs
// on to people and partners — the live streams and the integrations. Anything else on an output
// subject was not written by a twin: passed on, it would reach a user's browser or webhook (an id with
// a line break even forges server-sent events), so it is skipped or dead-lettered instead.

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** Epoch ms a Date can represent (outputs are printed as ISO 8601). */
export const isEpochMs = (v: unknown): boolean => Number.isSafeInteger(v) && Math.abs(v as number) <= 8.64e15;
/** Ids travel in SSE `id:` lines and HTTP headers (`webhook-id`): printable ASCII only. */
const PRINTABLE = /^[\x20-\x7e]{1,512}$/;

/**
 * Why `v` is not an output of `deviceId` carrying the epoch-ms fields `times`; undefined when it is one.
 * Checks what consumers rely on (id, kind, device, times), not every field of the kind.
 */
export function outputProblem(v: unknown, deviceId: string, times: readonly string[]): string | undefined {
  if (!isObject(v)) return "not a map";
  if (typeof v.id !== "string" || !PRINTABLE.test(v.id)) return "id is not printable text";
  if (typeof v.kind !== "string") return "no kind";
  if (v.deviceId !== deviceId) return "deviceId is not the subject's device";
  for (const field of times) if (!isEpochMs(v[field])) return `${field} is not epoch ms`;
  return undefined;
}
