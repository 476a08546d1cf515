// GET /v1/me: who the credentials belong to, so a page (the dashboard) can check a key at login and
// show what its holder may do (admin: the fleet and ops; a user: their own devices).
import type { FastifyInstance } from "fastify";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";

export function registerMeRoute(app: FastifyInstance, auth: AuthHooks): void {
  app.get("/v1/me", { schema: schemas.me, onRequest: auth.app }, async (req) => {
    const p = req.principal;
    return p?.kind === "user" ? { kind: "user", userId: p.userId } : { kind: "admin" };
  });
}
