// Integration subscriptions (docs/design.md §4): validation, the per-device list, matching and forwarding.
// The list is an immutable value (each change builds a new array), so a rejected command changes nothing.

import { problem } from "./errors.ts";
import { isRecord, isValidId } from "./rules.ts";
import { CHANNELS } from "./types.ts";
import type { Alert, AlertKind, BuiltinProvider, Channel, Problem, Provider, Report, ReportKind, Result, Subscription, SubscriptionKind, SubscriptionView, TwinOutput } from "./types.ts";

/** Most subscriptions one device may have. */
export const MAX_SUBSCRIPTIONS = 16;

/** Longest `target` (characters). */
export const MAX_TARGET_LENGTH = 2048;

/** Longest list in a `match` filter. */
export const MAX_MATCH_ITEMS = 32;

/** Every alert kind a subscription can ask for. */
export const ALERT_KINDS: readonly AlertKind[] = ["event.start", "event.end", "offline", "online", "anomaly", "forecast"];

/** Every report kind; a subscription receives reports only when its `match.kinds` names them. */
export const REPORT_KINDS: readonly ReportKind[] = ["report.day", "report.week"];

/** Every kind `match.kinds` may name. */
export const SUBSCRIPTION_KINDS: readonly SubscriptionKind[] = [...ALERT_KINDS, ...REPORT_KINDS];

/** Bytes of key a webhook secret carries, after `whsec_` and base64 (Standard Webhooks: 24–64). */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;

/** The shared empty subscription list (lists are immutable values). */
export const NO_SUBSCRIPTIONS: readonly Subscription[] = Object.freeze([]);

/** Every provider. */
export const PROVIDERS: readonly BuiltinProvider[] = ["webhook", "thermostat", "push", "email"];

/** A provider name: a subject token of 1–32 of [a-z0-9-] (built-in or served by a custom integration). */
export const PROVIDER_PATTERN = /^[a-z0-9-]{1,32}$/;

const SUBSCRIPTION_FIELDS = new Set(["id", "provider", "match", "target", "secret"]);
const MATCH_FIELDS = new Set(["kinds", "ruleIds", "channels"]);
const MATCH_CHANNELS: ReadonlyArray<Channel | "device"> = [...CHANNELS, "device"];

/** Validates an untrusted subscription; on success returns a fresh copy holding only its fields. */
export function validateSubscription(x: unknown): Result<Subscription> {
  if (!isRecord(x)) {
    return { ok: false, error: problem("SUBSCRIPTION_INVALID", undefined, [{ field: "subscription", message: "must be an object" }]) };
  }
  const details: NonNullable<Problem["details"]> = [];
  const bad = (field: string, message: string): void => {
    details.push({ field, message });
  };
  for (const key of Object.keys(x)) if (!SUBSCRIPTION_FIELDS.has(key)) bad(key, "unknown field");
  if (!isValidId(x.id)) bad("id", "must be 1-64 characters of [A-Za-z0-9_-]");
  const provider = typeof x.provider === "string" && PROVIDER_PATTERN.test(x.provider) ? (x.provider as Provider) : undefined;
  if (provider === undefined) bad("provider", `must be ${PROVIDERS.join(", ")} or the name (1-32 of [a-z0-9-]) of a custom integration`);

  const match: Subscription["match"] = {};
  if (!isRecord(x.match)) bad("match", "must be an object");
  else {
    for (const key of Object.keys(x.match)) if (!MATCH_FIELDS.has(key)) bad(`match.${key}`, "unknown field");
    const list = <T>(field: "kinds" | "ruleIds" | "channels", ok: (v: unknown) => boolean, what: string): T[] | undefined => {
      const v = (x.match as Record<string, unknown>)[field];
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || v.length === 0 || v.length > MAX_MATCH_ITEMS) {
        bad(`match.${field}`, `must be a non-empty array of at most ${MAX_MATCH_ITEMS} ${what}`);
        return undefined;
      }
      v.forEach((item, i) => {
        if (!ok(item)) bad(`match.${field}.${i}`, `must be ${what}`);
      });
      return [...v] as T[];
    };
    const kinds = list<SubscriptionKind>("kinds", (v) => SUBSCRIPTION_KINDS.includes(v as SubscriptionKind), `kinds (${SUBSCRIPTION_KINDS.join(", ")})`);
    const ruleIds = list<string>("ruleIds", isValidId, "rule ids");
    const channels = list<Channel | "device">("channels", (v) => MATCH_CHANNELS.includes(v as Channel), `channels (${MATCH_CHANNELS.join(", ")})`);
    if (kinds !== undefined) match.kinds = kinds;
    if (ruleIds !== undefined) match.ruleIds = ruleIds;
    if (channels !== undefined) match.channels = channels;
  }

  const target = x.target;
  if (typeof target !== "string" || target.length === 0 || target.length > MAX_TARGET_LENGTH) {
    bad("target", `must be a non-empty string of at most ${MAX_TARGET_LENGTH} characters`);
  } else if (provider === "webhook" && !isHttpUrl(target)) {
    bad("target", "must be an absolute http(s) URL for a webhook");
  } else if (provider === "email" && !isEmailAddress(target)) {
    bad("target", "must be an e-mail address (local@domain) for email");
  }
  const secret = x.secret;
  if (secret !== undefined) {
    if (provider !== "webhook") bad("secret", "only webhook subscriptions are signed");
    else if (!isWebhookSecret(secret)) bad("secret", `must be "whsec_" followed by the base64 of ${SECRET_MIN_BYTES}-${SECRET_MAX_BYTES} bytes`);
  }
  if (details.length > 0) return { ok: false, error: problem("SUBSCRIPTION_INVALID", undefined, details) };
  const sub: Subscription = { id: x.id as string, provider: provider as Provider, match, target: target as string };
  if (secret !== undefined) sub.secret = secret as string;
  return { ok: true, value: sub };
}

/** `whsec_` + canonical base64 of SECRET_MIN_BYTES–SECRET_MAX_BYTES bytes (no `node:*` here: the length is computed). */
export function isWebhookSecret(x: unknown): x is string {
  if (typeof x !== "string" || !x.startsWith("whsec_")) return false;
  const b64 = x.slice(6);
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return false;
  const bytes = (b64.length / 4) * 3 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
  return bytes >= SECRET_MIN_BYTES && bytes <= SECRET_MAX_BYTES;
}

/** A plausible address: one `@`, no spaces, a dot in the domain; at most 254 characters (RFC 5321). */
function isEmailAddress(s: string): boolean {
  return s.length <= 254 && /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>.]+$/.test(s);
}

/** A subscription as views and replies show it: `secret: true` instead of the secret. */
export function subscriptionView(s: Subscription): SubscriptionView {
  const match: Subscription["match"] = {};
  if (s.match.kinds !== undefined) match.kinds = [...s.match.kinds];
  if (s.match.ruleIds !== undefined) match.ruleIds = [...s.match.ruleIds];
  if (s.match.channels !== undefined) match.channels = [...s.match.channels];
  const view: SubscriptionView = { id: s.id, provider: s.provider, match, target: s.target };
  if (s.secret !== undefined) view.secret = true;
  return view;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

/** True when every filter present in `sub.match` admits the alert (AND across filters, any-of within one). */
export function matches(sub: Subscription, alert: Alert): boolean {
  const m = sub.match;
  if (m.kinds !== undefined && !m.kinds.includes(alert.kind)) return false;
  if (m.ruleIds !== undefined && (alert.ruleId === undefined || !m.ruleIds.includes(alert.ruleId))) return false;
  if (m.channels !== undefined && !m.channels.includes(alert.channel)) return false;
  return true;
}

/** One `integration` output per matching subscription, id `${alert.id}:${sub.id}`; appended to `out`. */
export function integrationOutputs(subs: readonly Subscription[], alert: Alert, out: TwinOutput[] = []): TwinOutput[] {
  for (const sub of subs) {
    if (!matches(sub, alert)) continue;
    out.push({
      type: "integration", id: `${alert.id}:${sub.id}`, provider: sub.provider, deviceId: alert.deviceId,
      subscriptionId: sub.id, target: sub.target, alert,
    });
  }
  return out;
}

/**
 * One `integration` output per subscription whose `match.kinds` names the report's kind (reports are
 * never sent to a subscription that did not ask for them; `ruleIds`/`channels` do not apply); id
 * `${report.id}:${sub.id}`.
 */
export function reportIntegrationOutputs(subs: readonly Subscription[], report: Report, out: TwinOutput[]): void {
  for (const sub of subs) {
    if (sub.match.kinds === undefined || !sub.match.kinds.includes(report.kind)) continue;
    out.push({
      type: "integration", id: `${report.id}:${sub.id}`, provider: sub.provider, deviceId: report.deviceId,
      subscriptionId: sub.id, target: sub.target, report,
    });
  }
}

/** Adds or replaces (same id, same position) a validated subscription; SUBSCRIPTION_LIMIT beyond 16. */
export function putSubscription(subs: readonly Subscription[], sub: Subscription): Result<readonly Subscription[]> {
  const at = subs.findIndex((s) => s.id === sub.id);
  if (at >= 0) return { ok: true, value: subs.map((s, i) => (i === at ? sub : s)) };
  if (subs.length >= MAX_SUBSCRIPTIONS) {
    return { ok: false, error: problem("SUBSCRIPTION_LIMIT", `a device has at most ${MAX_SUBSCRIPTIONS} subscriptions`, [{ field: "subscription.id", message: `limit of ${MAX_SUBSCRIPTIONS} subscriptions reached` }]) };
  }
  return { ok: true, value: subs.concat(sub) };
}

/** Removes a subscription; SUBSCRIPTION_NOT_FOUND when absent. */
export function removeSubscription(subs: readonly Subscription[], id: string): Result<readonly Subscription[]> {
  if (!subs.some((s) => s.id === id)) {
    return { ok: false, error: problem("SUBSCRIPTION_NOT_FOUND", `no subscription "${id}" on this device`, [{ field: "subscriptionId", message: "no such subscription" }]) };
  }
  const rest = subs.filter((s) => s.id !== id);
  return { ok: true, value: rest.length === 0 ? NO_SUBSCRIPTIONS : rest.slice() };
}
