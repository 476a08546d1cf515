// The body of POST /v1/devices/:id/commands as the OpenAPI documents it: one shape per command type.
// Documentation only — the twin domain validates commands (validateCommand), so its errors name every
// offending field; this schema must accept exactly what it accepts (checked against the bodies
// test/gateway/openapi-responses.test.ts sends).
import { CHANNELS, COMMAND_TYPES, SUBSCRIPTION_KINDS, type Command } from "../../actors/device-twin/domain/mod.ts";
import { ID } from "./response-schemas.ts";

/** One command type's body: `type` and its fields, all required. */
function command<T extends Command["type"]>(type: T, fields: Record<string, unknown> = {}) {
  return {
    type: "object",
    properties: { type: { type: "string", enum: [type] }, ...fields },
    required: ["type", ...Object.keys(fields)],
    additionalProperties: false,
  } as const;
}

const subscription = {
  type: "object",
  description: "A webhook target is an http(s) URL and may have a secret; an email target is an address.",
  properties: {
    id: ID,
    provider: { type: "string", pattern: "^[a-z0-9-]{1,32}$", description: "webhook, thermostat, push, email, or a custom integration's name" },
    match: {
      type: "object",
      description: "Each list, when given, is non-empty; an alert must match every list given.",
      properties: {
        kinds: { type: "array", minItems: 1, items: { type: "string", enum: [...SUBSCRIPTION_KINDS] } },
        ruleIds: { type: "array", minItems: 1, items: ID },
        channels: { type: "array", minItems: 1, items: { type: "string", enum: [...CHANNELS, "device"] } },
      },
      additionalProperties: false,
    },
    target: { type: "string", minLength: 1 },
    secret: { type: "string", pattern: "^whsec_[A-Za-z0-9+/]+={0,2}$", description: "webhook only: the Standard Webhooks signing key, whsec_ + base64 of 24–64 bytes" },
  },
  required: ["id", "provider", "match", "target"],
  additionalProperties: false,
} as const;

/** The command body: one of the command types. */
export const commandBody = {
  description: `A command by its type (${COMMAND_TYPES.join(", ")}); unknown fields are refused.`,
  oneOf: [
    command("putRule", { rule: { $ref: "Rule#" } }),
    command("deleteRule", { ruleId: ID }),
    command("subscribe", { subscription }),
    command("unsubscribe", { subscriptionId: ID }),
    command("recalibrate", { channel: { type: "string", enum: ["co2", "voc"] } }),
    command("reset"),
  ],
} as const;
