// Standard Webhooks signatures (https://www.standardwebhooks.com): `v1,<base64 HMAC-SHA256>` of
// "<webhook-id>.<webhook-timestamp>.<body>", keyed by the base64-decoded part of `whsec_<base64>`.
import { createHmac } from "node:crypto";

/** The `webhook-signature` header value for one delivery attempt. */
export function signWebhook(secret: string, id: string, timestampSec: number, body: string): string {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestampSec}.${body}`).digest("base64")}`;
}
