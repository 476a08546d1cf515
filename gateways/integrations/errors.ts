// Error catalogue of the integrations service (gateways/integrations). Codes follow
// AIRTWIN_ERR_<AREA>_<WHAT>; docs/errors.md lists them (checked by a test). None reaches an HTTP client:
// they stop `airtwin integrations` at start (configuration) or travel with a dead letter.

export const IntegrationErrors = {
  INTEGRATION_DEFINITION_INVALID: { code: "AIRTWIN_ERR_INTEGRATION_DEFINITION_INVALID", message: "an integration definition is invalid" },
  INTEGRATION_CONFIG_INVALID: { code: "AIRTWIN_ERR_INTEGRATION_CONFIG_INVALID", message: "the integrations configuration is invalid" },
  INTEGRATION_PROVIDER_UNKNOWN: { code: "AIRTWIN_ERR_INTEGRATION_PROVIDER_UNKNOWN", message: "no integration is defined for this provider" },
  INTEGRATION_TARGET_REFUSED: { code: "AIRTWIN_ERR_INTEGRATION_TARGET_REFUSED", message: "the delivery target is refused (not http(s), or a loopback/private address)" },
  INTEGRATION_PARTNER_FAILED: { code: "AIRTWIN_ERR_INTEGRATION_PARTNER_FAILED", message: "the partner did not accept the delivery" },
  INTEGRATION_MESSAGE_INVALID: { code: "AIRTWIN_ERR_INTEGRATION_MESSAGE_INVALID", message: "an integration message cannot be decoded" },
} as const;

export type IntegrationErrorName = keyof typeof IntegrationErrors;

/** An error of the integrations service: a catalogue `code`, a message, optional `details` and `cause`. */
export class IntegrationError extends Error {
  override readonly name = "IntegrationError";
  readonly code: string;
  readonly details: unknown;
  constructor(which: IntegrationErrorName, message?: string, options?: { cause?: unknown; details?: unknown }) {
    super(message ?? IntegrationErrors[which].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = IntegrationErrors[which].code;
    this.details = options?.details;
  }
}
