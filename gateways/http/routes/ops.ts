// Cluster operations over HTTP (admin), answered by the coordinator through the ops client.
import type { FastifyInstance } from "fastify";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

/** The ops client the routes call (runtime's OpsClient implements it). */
export interface OpsApi {
  cluster(): Promise<unknown>;
  move(shard: number, node: string): Promise<unknown>;
  drain(node: string): Promise<unknown>;
  rebalance(opts: { dryRun?: boolean; unpin?: boolean }): Promise<unknown>;
}

export function registerOpsRoutes(app: FastifyInstance, ops: OpsApi, auth: AuthHooks): void {
  app.get("/v1/ops/cluster", { schema: schemas.opsCluster, onRequest: auth.admin }, async () => ops.cluster());

  app.post<{ Params: { shard: number }; Body: { node: string } }>(
    "/v1/ops/shards/:shard/move",
    { schema: schemas.opsMove, onRequest: auth.admin },
    async (req) => ops.move(req.params.shard, req.body.node),
  );

  app.post<{ Params: { node: string } }>("/v1/ops/nodes/:node/drain", { schema: schemas.opsDrain, onRequest: auth.admin }, async (req) =>
    ops.drain(req.params.node),
  );

  app.post<{ Body: { dryRun?: boolean; unpin?: boolean } | null | undefined }>(
    "/v1/ops/rebalance",
    { schema: schemas.opsRebalance, onRequest: auth.admin },
    async (req) => ops.rebalance({ dryRun: req.body?.dryRun === true, unpin: req.body?.unpin === true }),
  );
}
