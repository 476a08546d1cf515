// Registering a simulated fleet: its owner and devices, over the HTTP admin API (keeping the tokens
// the gateway shows once in the fleet file) or straight in the registry over NATS (no tokens needed).
// Idempotent: what is registered and known stays; a run again registers only what is missing.
import type { NatsConnection } from "@nats-io/nats-core";
// undici's own fetch: the Pool of the HTTP transport installs undici 7's global dispatcher, which Node 20's
// built-in fetch (undici 6) cannot drive (bodies arrive cut off)
import { fetch } from "undici";
import { TWIN_TYPE } from "../actors/device-twin/behavior.ts";
import { Registry } from "../gateways/registry/registry.ts";
import { RuntimeClient, type AirtwinConfig } from "../runtime/mod.ts";
import { SimError } from "./errors.ts";
import type { FleetFile } from "./fleet-file.ts";

export interface HttpSetupOptions {
  gatewayUrl: string;
  adminToken: string;
  userId: string;
  deviceIds: readonly string[];
  /** What an earlier run registered (tokens, API key); updated in place. */
  file: FleetFile;
  /**
   * A device registered without its token in the file is deleted and registered again (its twin is
   * erased), and a user without its API key gets a new one. Without it such a device is an error.
   */
  replaceUnknown: boolean;
  /** Requests at once. Default 16. */
  concurrency?: number;
  log?: (line: string) => void;
}

async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new SimError("TARGET_UNREACHABLE", `cannot reach the gateway at ${base} (${(err as Error).message}); is airtwin running? (npm start, or set --gateway / GATEWAY_URL)`, { cause: err, details: { gatewayUrl: base } });
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    json = { message: text.slice(0, 200) };
  }
  if (res.status === 401 || res.status === 403) {
    throw new SimError("SETUP_FAILED", `the gateway at ${base} refused the admin token (${res.status} ${String(json.code ?? "")}); pass the one airtwin dev printed (--admin-token or AIRTWIN_ADMIN_TOKEN)`, { details: { status: res.status } });
  }
  return { status: res.status, json };
}

function failed(what: string, r: { status: number; json: Record<string, unknown> }): SimError {
  return new SimError("SETUP_FAILED", `${what}: ${r.status} ${String(r.json.code ?? "")} ${String(r.json.message ?? "")}`.trim(), { details: { status: r.status, code: r.json.code } });
}

/** Registers the user and the devices over HTTP; returns deviceId → token. */
export async function setupHttpFleet(o: HttpSetupOptions): Promise<Map<string, string>> {
  const base = o.gatewayUrl.replace(/\/+$/, "");
  const log = o.log ?? (() => undefined);
  const listed = await call(base, o.adminToken, "GET", "/v1/devices");
  if (listed.status !== 200) throw failed("listing devices", listed);
  const registered = new Set(((listed.json.devices ?? []) as Array<{ deviceId: string }>).map((d) => d.deviceId));

  const user = await call(base, o.adminToken, "POST", "/v1/users", { userId: o.userId });
  if (user.status === 201) o.file.apiKey = String(user.json.apiKey);
  else if (user.status === 409) {
    if (o.file.apiKey === undefined && o.replaceUnknown) {
      log(`user ${o.userId} exists but its API key is not in the fleet file: giving it a new one`);
      const del = await call(base, o.adminToken, "DELETE", `/v1/users/${encodeURIComponent(o.userId)}`);
      if (del.status !== 204) throw failed(`deleting user ${o.userId}`, del);
      const again = await call(base, o.adminToken, "POST", "/v1/users", { userId: o.userId });
      if (again.status !== 201) throw failed(`registering user ${o.userId}`, again);
      o.file.apiKey = String(again.json.apiKey);
    }
  } else throw failed(`registering user ${o.userId}`, user);
  o.file.userId = o.userId;

  const unknown = o.deviceIds.filter((id) => registered.has(id) && o.file.tokens[id] === undefined);
  if (unknown.length > 0 && !o.replaceUnknown) {
    throw new SimError(
      "DEVICE_TOKEN_UNKNOWN",
      `${unknown.length} device(s) (${unknown.slice(0, 3).join(", ")}${unknown.length > 3 ? ", …" : ""}) are registered but their tokens are not in the fleet file; use another --id-prefix, or --replace to register them again (their twins are erased)`,
      { details: { devices: unknown.slice(0, 20) } },
    );
  }
  const todo = o.deviceIds.filter((id) => !registered.has(id) || o.file.tokens[id] === undefined);
  if (todo.length > 0) log(`registering ${todo.length} device(s) owned by ${o.userId}${unknown.length > 0 ? ` (${unknown.length} again)` : ""}`);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const id = todo[next++]!;
      if (registered.has(id)) {
        const del = await call(base, o.adminToken, "DELETE", `/v1/devices/${encodeURIComponent(id)}`);
        if (del.status !== 204 && del.status !== 404) throw failed(`deleting device ${id}`, del);
      }
      const created = await call(base, o.adminToken, "POST", "/v1/devices", { deviceId: id, ownerId: o.userId });
      if (created.status !== 201) throw failed(`registering device ${id}`, created);
      o.file.tokens[id] = String(created.json.token);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 16, Math.max(1, todo.length)) }, worker));
  return new Map(o.deviceIds.map((id) => [id, o.file.tokens[id]!]));
}

/** Registers the user and the devices in the registry over NATS (what is there already stays). */
export async function setupNatsFleet(nc: NatsConnection, config: AirtwinConfig, userId: string, deviceIds: readonly string[]): Promise<{ created: number }> {
  const client = new RuntimeClient(nc, { prefix: config.prefix, shards: config.shards });
  const registry = await Registry.open(nc, { prefix: config.prefix, replicas: config.replicas, eraseTwin: (id) => client.erase(TWIN_TYPE, id) });
  try {
    if (registry.user(userId) === undefined) await registry.createUser(userId).catch((err: { code?: string }) => (err.code === "AIRTWIN_ERR_REGISTRY_USER_EXISTS" ? undefined : Promise.reject(err)));
    let created = 0;
    for (const id of deviceIds) {
      if (registry.device(id) !== undefined) continue;
      await registry.createDevice(id, userId);
      created++;
    }
    return { created };
  } finally {
    await registry.close();
    await client.close();
  }
}
