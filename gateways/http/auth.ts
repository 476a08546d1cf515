// Authentication and authorisation of the HTTP API (docs/design.md §5): device tokens for ingest (Bearer or
// Foobot's X-API-KEY-TOKEN), user API keys (own devices only) and the one admin token for everything.
// Failures never reveal whether a device exists: an unknown device and a wrong token get the same 401,
// and a user asking for a device that is not theirs gets 403 whether it exists or not. (Ingest from a
// device the registry view does not know yet waits for one bounded lookup first — docs/gateway.md,
// Registry — so an unknown id answers later than a wrong token: the id is not a secret, the token is.)
import type { FastifyReply, FastifyRequest } from "fastify";
import { validateDeviceId } from "../../actors/device-twin/domain/mod.ts";
import { GatewayError } from "../errors.ts";
import type { DeviceInfo } from "../registry/registry.ts";
import type { LookupOutcome } from "../registry/unknown-device-lookup.ts";
import { secretMatches, sha256 } from "../registry/secrets.ts";
import { problemError } from "../api/twin-api.ts";

/** Who is calling. */
export type Principal = { kind: "admin" } | { kind: "user"; userId: string } | { kind: "device"; deviceId: string };

/** The registry reads authentication needs. */
export interface CredentialStore {
  device(deviceId: string): DeviceInfo | undefined;
  verifyDevice(deviceId: string, token: string): boolean;
  lookUpDevice(deviceId: string): Promise<LookupOutcome>;
  verifyApiKey(apiKey: string): string | undefined;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the auth hooks of the route. */
    principal: Principal | null;
  }
}

const CHALLENGE = { "www-authenticate": 'Bearer realm="airtwin"' };

function unauthorized(): GatewayError {
  return new GatewayError("AUTH_UNAUTHORIZED", undefined, { headers: CHALLENGE });
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Builds the hooks of the routes, bound to one registry and admin token. */
export function authHooks(store: CredentialStore, adminToken: string) {
  const adminDigest = sha256(adminToken);

  const isAdmin = (token: string): boolean => secretMatches(token, adminDigest);

  /** Admin or user, from the bearer token (or `?token=` where allowed); 401 otherwise. */
  const appPrincipal = (req: FastifyRequest, allowQueryToken: boolean): Principal => {
    let token = bearerToken(req);
    if (token === undefined && allowQueryToken) {
      const q = (req.query as { token?: unknown } | undefined)?.token;
      if (typeof q === "string" && q !== "") token = q;
    }
    if (token === undefined) throw unauthorized();
    if (isAdmin(token)) return { kind: "admin" };
    const userId = store.verifyApiKey(token);
    if (userId === undefined) throw unauthorized();
    return { kind: "user", userId };
  };

  /** 400 unless `:id` is a valid device id (checked before auth: an invalid id cannot exist). */
  const checkDeviceId = (req: FastifyRequest): void => {
    const problem = validateDeviceId((req.params as { id?: unknown }).id);
    if (problem !== undefined) throw problemError(problem);
  };

  /**
   * The token of device `:id` when the registry view knows the device: verified, or 401 (disabled
   * device, wrong token, no token). Undefined when the view does not know the device: then it is
   * looked up ({@link lookUpDeviceToken}) before the answer.
   */
  const checkDeviceToken = (req: FastifyRequest): string | undefined => {
    const deviceId = (req.params as { id: string }).id;
    const header = req.headers["x-api-key-token"];
    const token = bearerToken(req) ?? (typeof header === "string" && header !== "" ? header : undefined);
    if (token === undefined) throw unauthorized();
    if (store.verifyDevice(deviceId, token)) {
      req.principal = { kind: "device", deviceId };
      return undefined;
    }
    if (store.device(deviceId) !== undefined) throw unauthorized();
    return token;
  };

  /** A device the view did not know: looked up once, then its token checked. Absent: 401; not looked up: 503. */
  const lookUpDeviceToken = async (req: FastifyRequest, token: string): Promise<void> => {
    const deviceId = (req.params as { id: string }).id;
    const outcome = await store.lookUpDevice(deviceId);
    if (outcome === "busy") throw new GatewayError("REGISTRY_LOOKUP_UNAVAILABLE");
    if (outcome === "absent" || !store.verifyDevice(deviceId, token)) throw unauthorized();
    req.principal = { kind: "device", deviceId };
  };

  return {
    /** onRequest: 400 unless `:id` is a valid device id (before auth: an invalid id cannot exist). */
    async validDeviceId(req: FastifyRequest): Promise<void> {
      checkDeviceId(req);
    },

    /**
     * onRequest of ingest: the token of device `:id`. Unknown device (after its lookup), disabled device,
     * wrong token: the same 401.
     */
    async device(req: FastifyRequest): Promise<void> {
      const unknown = checkDeviceToken(req);
      if (unknown !== undefined) await lookUpDeviceToken(req, unknown);
    },

    /**
     * validDeviceId then device, for ingest's callback-style hook: synchronous (throws the same errors;
     * no promise, no microtask turn) when the view knows the device — every request but a new device's
     * first ones on this gateway. Returns the lookup to wait for otherwise (it rejects with the error).
     */
    deviceSync(req: FastifyRequest): Promise<void> | undefined {
      checkDeviceId(req);
      const unknown = checkDeviceToken(req);
      return unknown === undefined ? undefined : lookUpDeviceToken(req, unknown);
    },

    /** onRequest of admin routes: 401 without valid credentials, 403 for a user key. */
    async admin(req: FastifyRequest): Promise<void> {
      const p = appPrincipal(req, false);
      if (p.kind !== "admin") throw new GatewayError("AUTH_FORBIDDEN", "this route needs the admin token");
      req.principal = p;
    },

    /** onRequest of routes open to users and admin (e.g. listing devices). */
    async app(req: FastifyRequest): Promise<void> {
      req.principal = appPrincipal(req, false);
    },

    /**
     * onRequest of device routes for apps: admin, or the user owning `:id`. A user gets 403 for a device
     * that is not theirs and for one that does not exist; admin gets 404 for an unknown device.
     */
    deviceOwner(options: { allowQueryToken?: boolean } = {}) {
      return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
        const p = appPrincipal(req, options.allowQueryToken === true);
        const deviceId = (req.params as { id: string }).id;
        const device = store.device(deviceId);
        if (p.kind === "user" && device?.ownerId !== p.userId) throw new GatewayError("AUTH_FORBIDDEN", "this device is not yours");
        if (device === undefined) throw new GatewayError("REGISTRY_DEVICE_NOT_FOUND", `no device "${deviceId}"`);
        req.principal = p;
      };
    },
  };
}

export type AuthHooks = ReturnType<typeof authHooks>;
