// The fingerprint of a keyed command: a hash of its kind and payload in a canonical form, recorded with
// the key (command-keys.ts) so that a key reused for a *different* command is refused instead of being
// answered with the first command's reply. Computed by the shard runner for keyed commands only.
//
// The canonical form is written here rather than taken from a serializer: fingerprints are persisted in
// snapshot records, so they must not change when a library's encoding choices do (float32, key order).
import { createHash } from "node:crypto";

/** Bytes of a fingerprint (the first bytes of a SHA-256): 128 bits, collisions out of reach. */
export const COMMAND_FINGERPRINT_BYTES = 16;

/**
 * The fingerprint of a command: SHA-256 over `kind` and the canonical form of `payload`, truncated to
 * {@link COMMAND_FINGERPRINT_BYTES}. Object keys are sorted (recursively), so the same JSON with its keys
 * in another order has the same fingerprint; arrays keep their order.
 */
export function commandFingerprint(kind: string, payload: unknown): Uint8Array {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(kind));
  hash.update(canonicalForm(payload));
  return new Uint8Array(hash.digest().subarray(0, COMMAND_FINGERPRINT_BYTES));
}

/** True when two fingerprints are the same bytes. */
export function sameFingerprint(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A payload as decoded from MessagePack, written as text: JSON with object keys sorted (by UTF-16 code
 * units) and no spaces, plus tokens JSON lacks for what MessagePack can carry — each starting with a
 * character no JSON value starts with, so no two different values share a form: `<hex>` bytes,
 * `@<ms>` a date, `<digits>n` a bigint (a JSON number never ends in `n`), `undefined`, `NaN`,
 * `Infinity`, `-Infinity`. -0 is 0 (as in JSON). A Map is written as an object, its keys as strings
 * (msgpackr decodes maps as either, depending on its options).
 */
export function canonicalForm(v: unknown): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return Number.isFinite(v) ? JSON.stringify(v) : String(v);
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return `${v}n`;
    case "undefined":
      return "undefined";
    case "object":
      break;
    default:
      // functions and symbols never come out of MessagePack
      throw new TypeError(`cannot fingerprint a ${typeof v}`);
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(canonicalForm).join(",")}]`;
  if (v instanceof Uint8Array) return `<${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex")}>`;
  if (v instanceof Date) return `@${v.getTime()}`;
  const entries = v instanceof Map ? [...v.entries()].map(([k, x]) => [String(k), x] as const) : Object.entries(v);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalForm(x)}`).join(",")}}`;
}
