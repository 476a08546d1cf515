// Configuration of `airtwin integrations`: the runtime's (NATS_URL, AIRTWIN_PREFIX, AIRTWIN_SHARDS,
// DATABASE_URL, AIRTWIN_ARCHIVE_SCHEMA, AIRTWIN_DATA_DIR, AIRTWIN_METRICS_PORT, …) plus each built-in's variables, and the
// providers to run (`--providers`, else AIRTWIN_INTEGRATIONS, else every built-in whose settings are
// present: webhook and push always, email with AIRTWIN_SMTP_URL, thermostat with AIRTWIN_THERMOSTAT_URL).
// Asking for a provider whose settings are missing fails fast with a coded error naming the variable.
import { loadConfig, type AirtwinConfig } from "../../runtime/mod.ts";
import type { IntegrationDefinition } from "./define.ts";
import { checkSmtpUrl, emailIntegration } from "./email/email.ts";
import { SQL_IDENTIFIER } from "../archive/db/mod.ts";
import { IntegrationError } from "./errors.ts";
import { pushIntegration } from "./push/push.ts";
import { thermostatIntegration } from "./thermostat/thermostat.ts";
import { allowPrivateFromEnv } from "./webhook/ssrf.ts";
import { webhookIntegration } from "./webhook/webhook.ts";

export const BUILTIN_PROVIDERS = ["webhook", "thermostat", "email", "push"] as const;
export type BuiltinName = (typeof BUILTIN_PROVIDERS)[number];

export interface IntegrationsConfig {
  readonly runtime: AirtwinConfig;
  readonly providers: readonly BuiltinName[];
  /** AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1. */
  readonly allowPrivate: boolean;
  /** AIRTWIN_SMTP_URL, AIRTWIN_SMTP_FROM. */
  readonly smtp: { url: string; from: string | undefined } | undefined;
  /** AIRTWIN_THERMOSTAT_URL, _CLIENT_ID, _CLIENT_SECRET, _CALLS_PER_S. */
  readonly thermostat: { baseUrl: string; clientId: string; clientSecret: string; callsPerSecond: number } | undefined;
  /** AIRTWIN_ARCHIVE_SCHEMA: the push outbox lives beside the archive's tables, in the same Postgres schema. */
  readonly schema: string | undefined;
}

const invalid = (variable: string, message: string): IntegrationError =>
  new IntegrationError("INTEGRATION_CONFIG_INVALID", `${variable}: ${message}`, { details: { variable } });

export function loadIntegrationsConfig(env: NodeJS.ProcessEnv = process.env, providersArg?: string): IntegrationsConfig {
  const runtime = loadConfig(env);
  const raw = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const schema = raw("AIRTWIN_ARCHIVE_SCHEMA");
  if (schema !== undefined && !SQL_IDENTIFIER.test(schema)) throw invalid("AIRTWIN_ARCHIVE_SCHEMA", "must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)");
  const smtpUrl = raw("AIRTWIN_SMTP_URL");
  const smtp = smtpUrl === undefined ? undefined : { url: checkSmtpUrl(smtpUrl), from: raw("AIRTWIN_SMTP_FROM") };
  const thermostatUrl = raw("AIRTWIN_THERMOSTAT_URL");
  let thermostat: IntegrationsConfig["thermostat"];
  if (thermostatUrl !== undefined) {
    if (!/^https?:\/\//.test(thermostatUrl)) throw invalid("AIRTWIN_THERMOSTAT_URL", "must be an http(s) URL");
    const clientId = raw("AIRTWIN_THERMOSTAT_CLIENT_ID");
    const clientSecret = raw("AIRTWIN_THERMOSTAT_CLIENT_SECRET");
    if (clientId === undefined) throw invalid("AIRTWIN_THERMOSTAT_CLIENT_ID", "required with AIRTWIN_THERMOSTAT_URL");
    if (clientSecret === undefined) throw invalid("AIRTWIN_THERMOSTAT_CLIENT_SECRET", "required with AIRTWIN_THERMOSTAT_URL");
    const rate = Number(raw("AIRTWIN_THERMOSTAT_CALLS_PER_S") ?? "2");
    if (!(rate > 0 && rate <= 1000)) throw invalid("AIRTWIN_THERMOSTAT_CALLS_PER_S", "must be a number in (0, 1000]");
    thermostat = { baseUrl: thermostatUrl, clientId, clientSecret, callsPerSecond: rate };
  }

  const list = providersArg ?? raw("AIRTWIN_INTEGRATIONS");
  let providers: BuiltinName[];
  if (list === undefined) {
    providers = BUILTIN_PROVIDERS.filter((p) => (p === "email" ? smtp !== undefined : p === "thermostat" ? thermostat !== undefined : true));
  } else {
    providers = [];
    for (const p of list.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      if (!(BUILTIN_PROVIDERS as readonly string[]).includes(p)) {
        throw new IntegrationError("INTEGRATION_PROVIDER_UNKNOWN", `no built-in integration "${p}" (built-ins: ${BUILTIN_PROVIDERS.join(", ")})`, { details: { provider: p } });
      }
      if (p === "email" && smtp === undefined) throw invalid("AIRTWIN_SMTP_URL", "required to run the email integration");
      if (p === "thermostat" && thermostat === undefined) throw invalid("AIRTWIN_THERMOSTAT_URL", "required to run the thermostat integration");
      if (!providers.includes(p as BuiltinName)) providers.push(p as BuiltinName);
    }
    if (providers.length === 0) throw invalid(providersArg === undefined ? "AIRTWIN_INTEGRATIONS" : "--providers", "names no provider");
  }
  return { runtime, providers, allowPrivate: allowPrivateFromEnv(env), smtp, thermostat, schema };
}

/** The definitions of the configured built-ins. */
export function builtinIntegrations(c: IntegrationsConfig): IntegrationDefinition[] {
  return c.providers.map((p): IntegrationDefinition => {
    switch (p) {
      case "webhook":
        return webhookIntegration({ allowPrivate: c.allowPrivate });
      case "email":
        return emailIntegration({ smtpUrl: (c.smtp as { url: string }).url, ...(c.smtp?.from === undefined ? {} : { from: c.smtp.from }) });
      case "thermostat":
        return thermostatIntegration({ partner: c.thermostat as NonNullable<IntegrationsConfig["thermostat"]>, replicas: c.runtime.replicas });
      case "push":
        return pushIntegration({
          database: { databaseUrl: c.runtime.databaseUrl, dataDir: c.runtime.dataDir, name: "integrations", ...(c.schema === undefined ? {} : { schema: c.schema }) },
        });
    }
  });
}
