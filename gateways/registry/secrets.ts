// Credentials of the registry: random device tokens and user API keys, stored only as SHA-256 digests
// and compared in constant time (crypto.timingSafeEqual on equal-length digests; a token already
// verified, kept in memory, by sameSecret).
import * as nodeCrypto from "node:crypto";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

// crypto.hash (Node >= 20.12; engines allow 20.9) digests in one call without a Hash object: ~40% less
// per call, and every ingest request verifies a token.
const oneShotHash: typeof nodeCrypto.hash | undefined = nodeCrypto.hash;

/** Bytes of randomness in a device token or an API key secret. */
export const SECRET_BYTES = 32;

/** A new device token: 32 random bytes, base64url (43 characters). */
export function newDeviceToken(): string {
  return randomBytes(SECRET_BYTES).toString("base64url");
}

/**
 * A new API key of a user: `<userId>.<32 random bytes, base64url>`. The user id makes the key
 * self-identifying, so verifying it is one lookup and one constant-time compare; `.` cannot occur in
 * an id, so the split is unambiguous.
 */
export function newApiKey(userId: string): string {
  return `${userId}.${randomBytes(SECRET_BYTES).toString("base64url")}`;
}

/** The user id an API key names, or undefined when it has no `<id>.` prefix. */
export function apiKeyUser(key: string): string | undefined {
  const dot = key.lastIndexOf(".");
  return dot <= 0 ? undefined : key.slice(0, dot);
}

/** SHA-256 of a secret. */
export function sha256(secret: string): Buffer {
  return oneShotHash !== undefined ? oneShotHash("sha256", secret, "buffer") : createHash("sha256").update(secret, "utf8").digest();
}

/** SHA-256 of a secret, lowercase hex (what the registry stores). */
export function sha256Hex(secret: string): string {
  return sha256(secret).toString("hex");
}

/** Compared against when there is nothing to compare with, so a miss costs what a hit costs. */
const DUMMY_DIGEST = sha256("airtwin: no such credential");

/**
 * True when `presented` hashes to `expected` (a 32-byte digest). Constant time in the secret; with
 * `expected` undefined it does the same work and answers false (callers do not reveal what was missing).
 */
export function secretMatches(presented: string, expected: Buffer | undefined): boolean {
  const digest = sha256(presented);
  const ok = timingSafeEqual(digest, expected ?? DUMMY_DIGEST);
  return ok && expected !== undefined;
}

/**
 * True when `presented` is the secret whose characters (latin-1, one byte each) are `known[at, at +
 * length)`; for equal lengths the time does not depend on where they differ (every character is
 * compared). Lengths are not secret (a device token is always 43 characters). The registry keeps a
 * verified device token so, in a shared arena instead of a string per device (device-table.ts).
 */
export function sameSecret(presented: string, known: Uint8Array, at = 0, length = known.length - at): boolean {
  if (presented.length !== length) return false;
  let diff = 0;
  for (let i = 0; i < length; i++) diff |= presented.charCodeAt(i) ^ known[at + i]!;
  return diff === 0;
}
