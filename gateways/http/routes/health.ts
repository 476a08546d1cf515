// GET /healthz (the process serves), /readyz (NATS connected and JetStream answering), /metrics.
import type { FastifyInstance } from "fastify";
import { errorBody } from "../../errors.ts";
import type { GatewayMetrics } from "../../metrics.ts";
import { schemas } from "../schemas.ts";

/** What readiness depends on. */
export interface HealthProbe {
  /** True while the NATS connection is up. */
  connected(): boolean;
  /** True when JetStream answered a request recently (implementations cache this briefly). */
  jetstream(): Promise<boolean>;
}

export function registerHealthRoutes(app: FastifyInstance, health: HealthProbe, metrics: GatewayMetrics, closing: () => boolean): void {
  app.get("/healthz", { schema: schemas.healthz }, async () => ({ status: "ok" }));

  app.get("/readyz", { schema: schemas.readyz }, async (_req, reply) => {
    const nats = health.connected();
    const jetstream = nats && (await health.jetstream());
    if (!closing() && nats && jetstream) return { status: "ready", nats: "connected", jetstream: "ok" };
    const why = closing() ? "shutting down" : !nats ? "not connected to NATS" : "JetStream does not answer";
    reply.header("retry-after", "1").code(503);
    return errorBody(closing() ? "AIRTWIN_ERR_GATEWAY_SHUTTING_DOWN" : "AIRTWIN_ERR_NATS_UNAVAILABLE", `not ready: ${why}`, {
      nats: nats ? "connected" : "disconnected",
      jetstream: jetstream ? "ok" : "unavailable",
    });
  });

  app.get("/metrics", { schema: schemas.metrics }, async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
