// The registry over HTTP (admin): create/delete users and devices, disable a device; list devices
// (admin: all, a user: their own).
import type { FastifyInstance } from "fastify";
import type { RegistryApi } from "../app.ts";
import type { AuthHooks } from "../auth.ts";
import { schemas } from "../schemas.ts";
import type { DeviceImportEntry } from "../../registry/device-import.ts";

export function registerAdminRoutes(app: FastifyInstance, registry: RegistryApi, auth: AuthHooks): void {
  app.post<{ Body: { userId: string } }>("/v1/users", { schema: schemas.createUser, onRequest: auth.admin }, async (req, reply) => {
    const created = await registry.createUser(req.body.userId);
    reply.code(201);
    return created;
  });

  app.delete<{ Params: { id: string } }>("/v1/users/:id", { schema: schemas.deleteUser, onRequest: auth.admin }, async (req, reply) => {
    await registry.deleteUser(req.params.id);
    reply.code(204);
  });

  app.post<{ Body: { deviceId: string; ownerId: string } }>("/v1/devices", { schema: schemas.createDevice, onRequest: auth.admin }, async (req, reply) => {
    const created = await registry.createDevice(req.body.deviceId, req.body.ownerId);
    reply.code(201);
    return created;
  });

  // a whole import in one body: 10,000 entries of the longest ids are ~1.6 MB
  app.post<{ Body: { devices: DeviceImportEntry[] } }>(
    "/v1/devices/import",
    { schema: schemas.importDevices, onRequest: auth.admin, bodyLimit: 2 * 1024 * 1024 },
    async (req) => {
      const devices = await registry.importDevices(req.body.devices);
      return { created: devices.filter((d) => "token" in d).length, devices };
    },
  );

  app.get("/v1/devices", { schema: schemas.listDevices, onRequest: auth.app }, async (req) => {
    const p = req.principal;
    return { devices: registry.listDevices(p?.kind === "user" ? p.userId : undefined) };
  });

  app.delete<{ Params: { id: string } }>(
    "/v1/devices/:id",
    { schema: schemas.deleteDevice, onRequest: [auth.validDeviceId, auth.admin] },
    async (req, reply) => {
      await registry.deleteDevice(req.params.id);
      reply.code(204);
    },
  );

  app.patch<{ Params: { id: string }; Body: { disabled: boolean } }>(
    "/v1/devices/:id",
    { schema: schemas.patchDevice, onRequest: [auth.validDeviceId, auth.admin] },
    async (req) => registry.setDeviceDisabled(req.params.id, req.body.disabled),
  );
}
