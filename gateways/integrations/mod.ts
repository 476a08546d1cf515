// Public entry of the integrations SDK (`airtwin/integrations`): define an integration, run it, and the
// built-in ones. The test kit is the separate `airtwin/testing` entry (testing.ts).
export {
  backoffDelayMs, defineIntegration, disableSubscription, DisableSubscription, permanentFailure, PermanentFailure, retryAfter, RetryAfter,
} from "./define.ts";
export type { BackoffOptions, Delivery, DeliveryContext, IntegrationDefinition, StartContext } from "./define.ts";
export { IntegrationError, IntegrationErrors } from "./errors.ts";
export { IntegrationMetrics } from "./metrics.ts";
export { retryAfterMs } from "./retry-after.ts";
export { consumerName, deadLetterStream, deadLetterSubject, runIntegration } from "./runner.ts";
export type { DeadLetter, IntegrationLog, RunIntegrationOptions, RunningIntegration } from "./runner.ts";
export { startIntegrations } from "./service.ts";
export type { RunningIntegrations, StartIntegrationsOptions } from "./service.ts";
export { signWebhook } from "./webhook/signing.ts";
export { webhookBody, webhookIntegration } from "./webhook/webhook.ts";
export type { WebhookBody, WebhookOptions } from "./webhook/webhook.ts";
export { thermostatBucket, thermostatIntegration, VENTILATED_CHANNELS } from "./thermostat/thermostat.ts";
export type { ThermostatIntegration, ThermostatOptions } from "./thermostat/thermostat.ts";
export { ThermostatPartner } from "./thermostat/partner-client.ts";
export type { ThermostatPartnerOptions, VentMode } from "./thermostat/partner-client.ts";
export { checkSmtpUrl, emailIntegration } from "./email/email.ts";
export type { EmailOptions } from "./email/email.ts";
export { renderAlertEmail, renderReportEmail } from "./email/render.ts";
export type { RenderedEmail } from "./email/render.ts";
export { PUSH_MIGRATIONS, pushIntegration } from "./push/push.ts";
export type { PushOptions, PushRow } from "./push/push.ts";
export { renderPush } from "./email/render.ts";
