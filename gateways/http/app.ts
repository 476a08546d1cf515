// buildApp(deps): the HTTP API v1 (docs/design.md §5) as a fastify instance, without listening — tests use
// `app.inject()`, the gateway process calls `listen`. Plugins: OpenAPI from the route schemas at /docs,
// msgpack bodies, one error handler that answers every error as
// `{ statusCode, code, error, message, details? }`, and request metrics.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from "fastify";
import { decode } from "../../runtime/mod.ts";
import type { HistoryApi } from "../api/history-api.ts";
import type { TwinApi } from "../api/twin-api.ts";
import type { LiveFeed } from "../api/live.ts";
import { errorBody, GatewayError, GatewayErrors, mapError, type ErrorDetail } from "../errors.ts";
import type { GatewayMetrics } from "../metrics.ts";
import type { Registry } from "../registry/registry.ts";
import { authHooks } from "./auth.ts";
import { registerAdminRoutes } from "./routes/admin.ts";
import { registerDashboardRoutes } from "./routes/dashboard.ts";
import { registerHealthRoutes, type HealthProbe } from "./routes/health.ts";
import { registerIngestRoute } from "./routes/ingest.ts";
import { LiveStreams, registerLiveRoute } from "./routes/live.ts";
import { registerMeRoute } from "./routes/me.ts";
import { registerOpsRoutes, type OpsApi } from "./routes/ops.ts";
import { registerHistoryRoutes } from "./routes/history.ts";
import { registerTwinRoutes } from "./routes/twin.ts";
import { sharedSchemas } from "./schemas.ts";
import { clientErrorHandler, DEFAULT_HTTP_SERVER_LIMITS, httpServerFactory, type ClientErrorSink, type HttpServerLimits } from "./server.ts";
import { strictBodyCompilers } from "./validation.ts";

/** The registry operations the HTTP API uses (Registry implements them). */
export type RegistryApi = Pick<
  Registry,
  "device" | "user" | "listDevices" | "verifyDevice" | "lookUpDevice" | "verifyApiKey" | "createUser" | "deleteUser" | "createDevice" | "importDevices" | "deleteDevice" | "setDeviceDisabled"
>;

/** Tunables of the HTTP API. */
export interface HttpOptions {
  /** Body limit of every route but ingest (bytes). Default 65 536. */
  bodyLimitBytes?: number;
  /** Body limit of POST /v1/devices/:id/readings (bytes); more → 413. Default 524 288 (1000 readings fit in ~120 KiB). */
  ingestBodyLimitBytes?: number;
  /** Ingest requests one device may make per window; more → 429 with Retry-After. Default 120. */
  rateLimitMax?: number;
  /** The rate-limit window (ms). Default 60 000. */
  rateLimitWindowMs?: number;
  /** Devices whose rate-limit windows are kept (beyond, the oldest window is forgotten). Default 100 000. */
  rateLimitCacheSize?: number;
  /** Retry-After of 503 answers (seconds). Default 1. */
  retryAfterSeconds?: number;
  /** Comment line sent on idle SSE streams (ms). Default 15 000. */
  liveHeartbeatMs?: number;
  /** Unsent bytes after which a slow SSE client is disconnected. Default 1 MiB. */
  liveMaxBufferedBytes?: number;
  /** Timeouts and the per-client connection bound of the HTTP server (defaults: DEFAULT_HTTP_SERVER_LIMITS). */
  limits?: Partial<HttpServerLimits>;
  /** fastify logger: false (default), or a pino instance/options. */
  logger?: FastifyServerOptions["logger"] | FastifyBaseLogger;
}

/** Everything the HTTP API needs; tests pass real or failure-injecting implementations. */
export interface AppDeps {
  registry: RegistryApi;
  twins: TwinApi;
  /** History across the twin and the archive. */
  history: HistoryApi;
  live: LiveFeed;
  ops: OpsApi;
  health: HealthProbe;
  metrics: GatewayMetrics;
  adminToken: string;
  options?: HttpOptions;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const o = deps.options ?? {};
  const retryAfterSeconds = o.retryAfterSeconds ?? 1;
  const loggerOption = o.logger ?? false;
  const isLoggerInstance = typeof loggerOption === "object" && loggerOption !== null && "child" in loggerOption;
  const limits = serverLimits(o.limits);
  // the server exists before the app (and its logger): refusals find the app through this
  const late: { log?: FastifyBaseLogger } = {};
  const sink: ClientErrorSink = {
    refused(code, detail) {
      deps.metrics.httpRefused.inc({ code });
      late.log?.info({ code, ...detail }, "HTTP client refused");
    },
  };
  const app = Fastify<Server, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    serverFactory: httpServerFactory(limits, sink),
    clientErrorHandler: clientErrorHandler(limits, sink),
    // bad percent-encoding, path parameters over 100 characters: our shape and code, not fastify's
    frameworkErrors: (err, _req, reply) => {
      const which = err.code === "FST_ERR_MAX_PARAM_LENGTH" ? "HTTP_URL_TOO_LONG" : err.code === "FST_ERR_BAD_URL" ? "HTTP_URL_INVALID" : "HTTP_INTERNAL";
      (reply as FastifyReply).code(GatewayErrors[which].status).send(errorBody(GatewayErrors[which].code, GatewayErrors[which].message));
    },
    schemaController: { compilersFactory: strictBodyCompilers() },
    ...(isLoggerInstance ? { loggerInstance: loggerOption as FastifyBaseLogger } : { logger: loggerOption as FastifyServerOptions["logger"] }),
    // per-request log lines cost throughput; errors are logged by the error handler
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.bodyLimitBytes ?? 64 * 1024,
    // our own 503 (in the error shape) while closing; see the onRequest hook below
    return503OnClosing: false,
    forceCloseConnections: "idle",
  });
  late.log = app.log;
  app.decorateRequest("principal", null);
  for (const s of sharedSchemas) app.addSchema(s);

  let closing = false;
  const live = new LiveStreams(deps.metrics);
  app.addHook("preClose", async () => {
    closing = true;
    live.closeAll();
  });
  // callback-style hooks (not async): every request runs them, and a promise each costs a microtask turn
  app.addHook("onRequest", (_req, reply, done) => {
    if (closing) {
      reply.header("connection", "close");
      done(new GatewayError("GATEWAY_SHUTTING_DOWN", undefined, { headers: { "retry-after": String(retryAfterSeconds) } }));
      return;
    }
    done();
  });
  app.addHook("onResponse", (req, reply, done) => {
    deps.metrics.observeRequest(req.routeOptions.url ?? "unmatched", req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  // JSON (fastify's, with prototype-poisoning protection) and MessagePack only: anything else is 415
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser(["application/msgpack", "application/x-msgpack"], { parseAs: "buffer" }, (_req, body, done) => {
    try {
      done(null, decode(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (clientWentAway(err, req.raw)) {
      // an abort or a broken body: the client's doing, and nobody is left to answer
      req.log.info({ code: err.code, route: req.routeOptions.url }, "client closed the connection before the request was read");
      reply.code(400).send(errorBody(GatewayErrors.HTTP_BODY_INVALID.code, "the request body was cut off"));
      return;
    }
    const mapped = fastifyError(err) ?? mapError(err, retryAfterSeconds);
    if (mapped.unexpected) req.log.error({ err, route: req.routeOptions.url }, "request failed");
    reply.headers(mapped.headers).code(mapped.body.statusCode).send(mapped.body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(GatewayErrors.HTTP_NOT_FOUND.code, `no route ${req.method} ${req.url.split("?")[0]}`));
  });

  await app.register(fastifySwagger, {
    // components named by their schema's $id (Alert, Report, …) rather than def-0, def-1, …
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "airtwin HTTP API",
        version: "1",
        description: "Live twins of indoor air-quality monitors. Errors: `{ statusCode, code, error, message, details? }`, codes in docs/errors.md.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", description: "Admin token, user API key, or (ingest) device token" },
          foobotToken: { type: "apiKey", in: "header", name: "X-API-KEY-TOKEN", description: "Device token, Foobot style" },
        },
      },
      tags: [
        { name: "devices", description: "What devices call" },
        { name: "apps", description: "What apps call (user API key: own devices; admin: all)" },
        { name: "registry", description: "Devices and users" },
        { name: "ops", description: "Cluster operations (admin)" },
        { name: "health", description: "Probes and metrics" },
      ],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  const auth = authHooks(deps.registry, deps.adminToken);
  registerHealthRoutes(app, deps.health, deps.metrics, () => closing);
  registerAdminRoutes(app, deps.registry, auth);
  registerIngestRoute(app, deps.twins, auth, {
    bodyLimitBytes: o.ingestBodyLimitBytes ?? 512 * 1024,
    rateLimitMax: o.rateLimitMax ?? 120,
    rateLimitWindowMs: o.rateLimitWindowMs ?? 60_000,
    rateLimitCacheSize: o.rateLimitCacheSize ?? 100_000,
  });
  registerTwinRoutes(app, deps.twins, auth);
  registerHistoryRoutes(app, deps.history, auth, deps.registry);
  registerLiveRoute(app, deps.live, auth, live, { heartbeatMs: o.liveHeartbeatMs ?? 15_000, maxBufferedBytes: o.liveMaxBufferedBytes ?? 1024 * 1024 }, deps.registry);
  registerOpsRoutes(app, deps.ops, auth);
  registerMeRoute(app, auth);
  await registerDashboardRoutes(app);
  return app;
}

/** The limits with their defaults; a request timeout shorter than the headers one would never fire. */
function serverLimits(given: Partial<HttpServerLimits> = {}): HttpServerLimits {
  const limits = { ...DEFAULT_HTTP_SERVER_LIMITS, ...given };
  return { ...limits, requestTimeoutMs: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs) };
}

/** True when a request failed because its client aborted or its connection broke while the body was read. */
function clientWentAway(err: FastifyError, raw: { complete?: boolean; destroyed: boolean; socket?: { destroyed: boolean } | null }): boolean {
  const code = typeof err.code === "string" ? err.code : "";
  if (code === "ECONNRESET" || code === "ECONNABORTED" || code === "ERR_STREAM_PREMATURE_CLOSE") return true;
  // a request whose body was read whole is destroyed too (Node's autoDestroy): its errors are the handler's
  return raw.complete !== true && (raw.destroyed || raw.socket?.destroyed === true);
}

/** fastify's own errors (body parsing, schema validation) in our shape; undefined for everything else. */
function fastifyError(err: FastifyError): ReturnType<typeof mapError> | undefined {
  if (err instanceof GatewayError) return undefined;
  if (Array.isArray(err.validation)) {
    const details: ErrorDetail[] = err.validation.map((v) => ({
      field: [err.validationContext, ...v.instancePath.split("/").filter(Boolean), (v.params as { missingProperty?: string })?.missingProperty]
        .filter(Boolean)
        .join("."),
      message: v.message ?? "is invalid",
    }));
    return { body: errorBody(GatewayErrors.HTTP_VALIDATION.code, `invalid ${err.validationContext ?? "request"}`, details), headers: {}, unexpected: false };
  }
  const code = typeof err.code === "string" ? err.code : "";
  if (!code.startsWith("FST_")) return undefined;
  const which =
    code === "FST_ERR_CTP_BODY_TOO_LARGE"
      ? "HTTP_BODY_TOO_LARGE"
      : code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? "HTTP_CONTENT_TYPE"
        : code.startsWith("FST_ERR_CTP_")
          ? "HTTP_BODY_INVALID"
          : (err.statusCode ?? 500) < 500
            ? "HTTP_VALIDATION"
            : undefined;
  if (which === undefined) return undefined;
  const message = which === "HTTP_BODY_TOO_LARGE" || which === "HTTP_CONTENT_TYPE" ? GatewayErrors[which].message : err.message;
  return { body: errorBody(GatewayErrors[which].code, message), headers: {}, unexpected: false };
}
