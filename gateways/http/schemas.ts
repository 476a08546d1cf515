// JSON schemas of the HTTP API: they document the routes in the OpenAPI at /docs and validate the
// parts the domain does not (admin and ops bodies, query strings). Readings and commands are validated
// by the twin domain instead, so their errors name every offending index and field.
import { CHANNELS } from "../../actors/device-twin/domain/mod.ts";
import { COMMAND_KEYS_MAX_BYTES, COMMAND_KEYS_PER_ENTITY } from "../../runtime/mod.ts";
import { IDEMPOTENCY_KEY_SCHEMA } from "../api/idempotency-key.ts";
import { commandBody } from "./command-schema.ts";
import { ID, responseSchemas, successResponses } from "./response-schemas.ts";

/** Shared schemas, added with `app.addSchema`. */
export const sharedSchemas = [
  {
    $id: "Error",
    type: "object",
    description: "Every error: a catalogue code (docs/errors.md), the HTTP status and reason, a message, and details naming offending fields.",
    properties: {
      statusCode: { type: "integer" },
      code: { type: "string", example: "AIRTWIN_ERR_READING_INVALID" },
      error: { type: "string" },
      message: { type: "string" },
      details: {},
    },
    required: ["statusCode", "code", "error", "message"],
  },
  {
    $id: "Reading",
    type: "object",
    description: "One reading: t in epoch ms and any non-empty subset of the channels.",
    properties: {
      t: { type: "integer", minimum: 0 },
      pm: { type: "number", minimum: 0, maximum: 1000 },
      co2: { type: "number", minimum: 0, maximum: 40000 },
      voc: { type: "number", minimum: 0, maximum: 60000 },
      tmp: { type: "number", minimum: -40, maximum: 85 },
      hum: { type: "number", minimum: 0, maximum: 100 },
      allpollu: { type: "number", minimum: 0, maximum: 1000 },
    },
    required: ["t"],
  },
  {
    $id: "Device",
    type: "object",
    properties: { deviceId: { type: "string" }, ownerId: { type: "string" }, createdAt: { type: "integer", description: "epoch ms" }, disabled: { type: "boolean" } },
    required: ["deviceId", "ownerId", "createdAt", "disabled"],
    additionalProperties: false,
  },
  ...responseSchemas,
] as const;

const errors = {
  "4xx": { $ref: "Error#" },
  "5xx": { $ref: "Error#" },
} as const;
/** What even the probes may answer: the HTTP server's refusals (408, 414, 431, …) in the error shape. */
const clientErrors = { "4xx": { $ref: "Error#" } } as const;

/** An endless text/event-stream answer (the route writes it itself). */
const eventStream = {
  description: "A text/event-stream: `event:` / `data:` (JSON) frames, `: keep-alive` comments while idle",
  content: { "text/event-stream": { schema: { type: "string" } } },
} as const;

const deviceParams = { type: "object", properties: { id: ID }, required: ["id"] } as const;

const adminSecurity = [{ bearer: [] }];
const appSecurity = [{ bearer: [] }];
const timeQuery = {
  from: { type: "string", description: "Start (inclusive): epoch ms or an ISO 8601 date-time." },
  to: { type: "string", description: "End (exclusive): epoch ms or an ISO 8601 date-time." },
} as const;
const consistencyQuery = {
  consistency: {
    type: "string",
    enum: ["live", "snapshot"],
    default: "live",
    description: "live: asked from the twin's owner; snapshot: the last committed snapshot, without waking the twin.",
  },
} as const;
const limitQuery = { limit: { type: "integer", minimum: 1, maximum: 10000, default: 1000 } } as const;
const cursorQuery = { cursor: { type: "string", maxLength: 512, description: "The `next` of the previous page." } } as const;

export const schemas = {
  createUser: {
    tags: ["registry"],
    summary: "Create a user (admin); the API key is shown once",
    security: adminSecurity,
    body: { type: "object", properties: { userId: { type: "string" } }, required: ["userId"], additionalProperties: false },
    response: { 201: { type: "object", properties: { userId: { type: "string" }, apiKey: { type: "string" } }, required: ["userId", "apiKey"], additionalProperties: false }, ...errors },
  },
  deleteUser: {
    tags: ["registry"],
    summary: "Delete a user (admin); their API key stops working",
    security: adminSecurity,
    params: { type: "object", properties: { id: ID }, required: ["id"] },
    response: { 204: { type: "null", description: "Deleted" }, ...errors },
  },
  createDevice: {
    tags: ["registry"],
    summary: "Register a device (admin); the token is shown once",
    security: adminSecurity,
    body: {
      type: "object",
      properties: { deviceId: { type: "string" }, ownerId: { type: "string" } },
      required: ["deviceId", "ownerId"],
      additionalProperties: false,
    },
    response: { 201: { type: "object", properties: { deviceId: { type: "string" }, token: { type: "string" } }, required: ["deviceId", "token"], additionalProperties: false }, ...errors },
  },
  importDevices: {
    tags: ["registry"],
    summary: "Register up to 10,000 devices at once (admin); every entry checked first, each token shown once",
    description:
      "Any invalid entry (id, unknown owner, an id twice, more than 10,000) refuses the whole import with AIRTWIN_ERR_REGISTRY_IMPORT_INVALID, its details naming each by index. A device already registered is left as it is and reported with AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS, so an interrupted import can be sent again; one not stored is reported with AIRTWIN_ERR_NATS_UNAVAILABLE (send it again).",
    security: adminSecurity,
    body: {
      type: "object",
      properties: {
        devices: {
          type: "array",
          items: { type: "object", properties: { deviceId: { type: "string" }, ownerId: { type: "string" } }, required: ["deviceId", "ownerId"], additionalProperties: false },
        },
      },
      required: ["devices"],
      additionalProperties: false,
    },
    response: {
      200: {
        type: "object",
        properties: {
          created: { type: "integer" },
          devices: {
            type: "array",
            items: {
              type: "object",
              properties: { deviceId: { type: "string" }, token: { type: "string" }, code: { type: "string" }, message: { type: "string" } },
              required: ["deviceId"],
              additionalProperties: false,
            },
          },
        },
        required: ["created", "devices"],
        additionalProperties: false,
      },
      ...errors,
    },
  },
  listDevices: {
    tags: ["registry"],
    summary: "List devices: all for admin, own for a user",
    security: appSecurity,
    response: { 200: { type: "object", properties: { devices: { type: "array", items: { $ref: "Device#" } } }, required: ["devices"], additionalProperties: false }, ...errors },
  },
  deleteDevice: {
    tags: ["registry"],
    summary: "Unregister a device (admin): its twin is erased (statistics, rules, subscriptions, events), then its token stops working",
    security: adminSecurity,
    params: deviceParams,
    response: { 204: { type: "null", description: "Deleted" }, ...errors },
  },
  patchDevice: {
    tags: ["registry"],
    summary: "Disable or re-enable a device (admin); a disabled device's token is refused",
    security: adminSecurity,
    params: deviceParams,
    body: { type: "object", properties: { disabled: { type: "boolean" } }, required: ["disabled"], additionalProperties: false },
    response: { 200: { $ref: "Device#" }, ...errors },
  },
  ingest: {
    tags: ["devices"],
    summary: "Post readings (device token); 202 once JetStream stored them",
    description:
      "Body: `{ readings: [...] }` or the Foobot datapoints shape `{ sensors, units, datapoints }` (time in seconds), as " +
      "application/json or application/msgpack; at most 1000 readings. The whole request is rejected on any bad field, " +
      "with every offending index and field in `details`. 503 with Retry-After when NATS is down or did not confirm: resend " +
      "(readings are de-duplicated by (device, t)).",
    security: [{ bearer: [] }, { foobotToken: [] }] as Array<Record<string, string[]>>,
    consumes: ["application/json", "application/msgpack"],
    params: deviceParams,
    body: {
      oneOf: [
        { type: "object", properties: { readings: { type: "array", maxItems: 1000, items: { $ref: "Reading#" } } }, required: ["readings"] },
        {
          type: "object",
          description: "Foobot API datapoints",
          properties: {
            sensors: { type: "array", items: { type: "string", enum: ["time", ...CHANNELS] } },
            units: { type: "array", items: { type: "string" } },
            datapoints: { type: "array", maxItems: 1000, items: { type: "array", items: { type: "number" } } },
          },
          required: ["sensors", "datapoints"],
        },
      ],
    },
    response: { 202: { type: "object", properties: { accepted: { type: "integer" } }, required: ["accepted"], additionalProperties: false }, ...errors },
  },
  twin: {
    tags: ["apps"],
    summary: "The twin: statistics per channel, calibration, rules, event states, subscriptions, presence",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { ...consistencyQuery } },
    response: { 200: successResponses.twin, ...errors },
  },
  aggregates: {
    tags: ["apps"],
    summary: "Hourly or daily buckets per channel: the twin's (last 24 h / 7 days) and, before them, the archive's rollups",
    description: "Oldest first, without gaps or repeats at the boundary (`coverage.twinFrom`); `next` is the cursor of the following page; `coverage.uncovered` names ranges no source answered.",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { resolution: { type: "string", enum: ["hour", "day"], default: "hour" }, ...timeQuery, ...limitQuery, ...cursorQuery, ...consistencyQuery } },
    response: { 200: successResponses.aggregates, ...errors },
  },
  events: {
    tags: ["apps"],
    summary: "Current event state per rule (twin) and the events in the window (output stream and archive, merged by id)",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { ...timeQuery, ...limitQuery, ...cursorQuery, ...consistencyQuery } },
    response: { 200: successResponses.events, ...errors },
  },
  alerts: {
    tags: ["apps"],
    summary: "Alerts in the window, oldest first (default: the last 24 h): the output stream's and the archive's, merged by id",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { ...timeQuery, ...limitQuery, ...cursorQuery } },
    response: { 200: successResponses.alerts, ...errors },
  },
  readings: {
    tags: ["apps"],
    summary: "Raw archived readings, oldest first, in pages (`Accept: text/csv` for CSV; the next cursor is then in header `airtwin-next-cursor`)",
    description: "Every accepted reading once; `late: true` when the twin counted it late, `repeats` when it was resent. 503 AIRTWIN_ERR_ARCHIVE_UNAVAILABLE without a running archive.",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { ...timeQuery, ...limitQuery, ...cursorQuery } },
    response: {
      200: {
        description: "A page of readings (JSON), or CSV with `Accept: text/csv`",
        content: { "application/json": { schema: successResponses.readings }, "text/csv": { schema: { type: "string", description: "t,pm,co2,voc,tmp,hum,allpollu,accepted_at,late,repeats" } } },
      },
      ...errors,
    },
  },
  reports: {
    tags: ["apps"],
    summary: "Daily or weekly reports with from <= start < to, oldest first (from the archive)",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { period: { type: "string", enum: ["day", "week"], default: "day" }, ...timeQuery, ...limitQuery, ...cursorQuery } },
    response: { 200: successResponses.reports, ...errors },
  },
  command: {
    tags: ["apps"],
    summary: "Run a command; 200 with its result once the twin applied it",
    description:
      "Send an `Idempotency-Key` header to make retries safe: the twin applies the first command it gets under a key " +
      "and answers every later one with that command's result (or refusal) without applying it again, with " +
      "`Idempotent-Replayed: true`; a key reused for a different command (the same JSON with keys in another order is the same) " +
      "is 422 AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED and not applied. " +
      `Keys are per device; a device remembers its last ${COMMAND_KEYS_PER_ENTITY} keyed commands ` +
      `(at most ${COMMAND_KEYS_MAX_BYTES / 1024} KiB of them; an older key is forgotten and applies again). Retry a 504 or 503 with the same key.`,
    security: appSecurity,
    params: deviceParams,
    headers: {
      type: "object",
      properties: {
        "idempotency-key": {
          ...IDEMPOTENCY_KEY_SCHEMA,
          description:
            "1–128 printable ASCII characters (0x20–0x7E), no space at either end, given once; anything else is 400 " +
            "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID. A UUID per logical command does.",
        },
      },
    },
    body: commandBody,
    response: {
      200: {
        ...successResponses.command,
        headers: {
          "idempotent-replayed": {
            type: "string",
            enum: ["true"],
            description: "Present when this is the result of a command applied earlier under the same Idempotency-Key (not applied again now).",
          },
        },
      },
      ...errors,
    },
  },
  live: {
    tags: ["apps"],
    summary: "Server-sent events: `readings` (each accepted request) and `alert` (as the twin publishes them)",
    description: "Browsers' EventSource cannot set headers: pass the API key as `?token=` instead.",
    security: appSecurity,
    params: deviceParams,
    querystring: { type: "object", properties: { token: { type: "string" } } },
    response: { 200: eventStream, ...errors },
  },
  alertsLive: {
    tags: ["apps"],
    summary: "Server-sent events: `alert` for every device (admin) or for the caller's devices (user key)",
    description: "Send the key in the Authorization header (e.g. with fetch streaming); this route takes no key in the URL.",
    security: appSecurity,
    response: { 200: eventStream, ...errors },
  },
  me: {
    tags: ["apps"],
    summary: "Who the credentials belong to: `{ kind: \"admin\" }` or `{ kind: \"user\", userId }`",
    security: appSecurity,
    response: {
      200: {
        type: "object",
        properties: { kind: { type: "string", enum: ["admin", "user"] }, userId: { type: "string" } },
        required: ["kind"],
        additionalProperties: false,
      },
      ...errors,
    },
  },
  opsCluster: {
    tags: ["ops"],
    summary: "Nodes, coordinator, and per shard: assignment, owner, epoch, lag",
    security: adminSecurity,
    response: { 200: successResponses.opsCluster, ...errors },
  },
  opsMove: {
    tags: ["ops"],
    summary: "Move a shard to a node and pin it there",
    security: adminSecurity,
    params: { type: "object", properties: { shard: { type: "integer", minimum: 0 } }, required: ["shard"] },
    body: { type: "object", properties: { node: ID }, required: ["node"], additionalProperties: false },
    response: { 200: successResponses.opsMove, ...errors },
  },
  opsDrain: {
    tags: ["ops"],
    summary: "Move every shard off a node over the next rounds",
    security: adminSecurity,
    params: { type: "object", properties: { node: ID }, required: ["node"] },
    response: { 200: successResponses.opsDrain, ...errors },
  },
  opsRebalance: {
    tags: ["ops"],
    summary: "Plan a rebalancing round now; with dryRun only show the plan",
    security: adminSecurity,
    body: {
      type: ["object", "null"],
      properties: { dryRun: { type: "boolean", default: false }, unpin: { type: "boolean", default: false } },
      additionalProperties: false,
    },
    response: { 200: successResponses.opsRebalance, ...errors },
  },
  opsArchive: {
    tags: ["ops"],
    summary: "The archive: lag per source stream, rows written, failed batches, database (503 without a running archive)",
    security: adminSecurity,
    response: { 200: successResponses.opsArchive, ...errors },
  },
  healthz: {
    tags: ["health"],
    summary: "Liveness: 200 while the process serves",
    response: { 200: { type: "object", properties: { status: { type: "string", enum: ["ok"] } }, required: ["status"], additionalProperties: false }, ...clientErrors },
  },
  readyz: {
    tags: ["health"],
    summary: "Readiness: 200 when NATS is connected and JetStream answers, else 503",
    response: {
      200: {
        type: "object",
        properties: { status: { type: "string", enum: ["ready"] }, nats: { type: "string", enum: ["connected"] }, jetstream: { type: "string", enum: ["ok"] } },
        required: ["status", "nats", "jetstream"],
        additionalProperties: false,
      },
      503: { $ref: "Error#" },
      ...clientErrors,
    },
  },
  metrics: {
    tags: ["health"],
    summary: "Prometheus metrics",
    response: { 200: { description: "Prometheus text exposition format", content: { "text/plain": { schema: { type: "string" } } } }, ...clientErrors },
  },
};
