// Every HTTP route of the gateway, one line each: what the fuzzer sends and what the OpenAPI check
// (test/gateway/openapi.test.ts) expects to find documented. A route missing here fails that check —
// adding a route means adding its line. Fields:
// - auth: who the route serves (decides which credentials the fuzzer tries most);
// - body: what a valid body is ("none": the route takes none);
// - query: the documented query parameters;
// - ids: for `:id`, whether the fuzzer may use its model's devices ("pool") or only ids outside it
//   ("foreign": the route changes the registry in ways the model does not follow);
// - stream: the answer is an endless server-sent-event stream (sent over a socket, never `inject`);
// - openapi: false for routes deliberately absent from the OpenAPI (the dashboard's static files).

export type RouteAuth = "none" | "admin" | "app" | "owner" | "device";
export type RouteBody = "none" | "user" | "device" | "patch" | "readings" | "command" | "move" | "rebalance" | "json";

export interface FuzzRoute {
  method: "GET" | "POST" | "PATCH" | "DELETE" | "PUT";
  /** fastify's pattern (`:param`). */
  url: string;
  auth: RouteAuth;
  body: RouteBody;
  query?: readonly string[];
  ids?: "pool" | "foreign";
  stream?: boolean;
  /** Statuses of success it may answer (documented in OpenAPI). */
  success: readonly number[];
  openapi?: false;
}

export const HTTP_ROUTES: readonly FuzzRoute[] = [
  { method: "POST", url: "/v1/users", auth: "admin", body: "user", success: [201] },
  { method: "DELETE", url: "/v1/users/:id", auth: "admin", body: "none", ids: "foreign", success: [204] },
  { method: "POST", url: "/v1/devices", auth: "admin", body: "device", success: [201] },
  { method: "POST", url: "/v1/devices/import", auth: "admin", body: "json", success: [200] },
  { method: "GET", url: "/v1/devices", auth: "app", body: "none", success: [200] },
  { method: "DELETE", url: "/v1/devices/:id", auth: "admin", body: "none", ids: "foreign", success: [204] },
  { method: "PATCH", url: "/v1/devices/:id", auth: "admin", body: "patch", ids: "foreign", success: [200] },
  { method: "POST", url: "/v1/devices/:id/readings", auth: "device", body: "readings", ids: "pool", success: [202] },
  { method: "GET", url: "/v1/devices/:id", auth: "owner", body: "none", query: ["consistency"], ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/aggregates", auth: "owner", body: "none", query: ["resolution", "from", "to", "limit", "cursor", "consistency"], ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/events", auth: "owner", body: "none", query: ["from", "to", "limit", "cursor", "consistency"], ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/alerts", auth: "owner", body: "none", query: ["from", "to", "limit", "cursor"], ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/readings", auth: "owner", body: "none", query: ["from", "to", "limit", "cursor"], ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/reports", auth: "owner", body: "none", query: ["period", "from", "to", "limit", "cursor"], ids: "pool", success: [200] },
  { method: "POST", url: "/v1/devices/:id/commands", auth: "owner", body: "command", ids: "pool", success: [200] },
  { method: "GET", url: "/v1/devices/:id/live", auth: "owner", body: "none", query: ["token"], ids: "pool", stream: true, success: [200] },
  { method: "GET", url: "/v1/alerts/live", auth: "app", body: "none", stream: true, success: [200] },
  { method: "GET", url: "/v1/me", auth: "app", body: "none", success: [200] },
  { method: "GET", url: "/", auth: "none", body: "none", success: [200], openapi: false },
  { method: "GET", url: "/v1/ops/cluster", auth: "admin", body: "none", success: [200] },
  { method: "GET", url: "/v1/ops/archive", auth: "admin", body: "none", success: [200] },
  { method: "POST", url: "/v1/ops/shards/:shard/move", auth: "admin", body: "move", success: [200] },
  { method: "POST", url: "/v1/ops/nodes/:node/drain", auth: "admin", body: "none", success: [200] },
  { method: "POST", url: "/v1/ops/rebalance", auth: "admin", body: "rebalance", success: [200] },
  { method: "GET", url: "/healthz", auth: "none", body: "none", success: [200] },
  { method: "GET", url: "/readyz", auth: "none", body: "none", success: [200] },
  { method: "GET", url: "/metrics", auth: "none", body: "none", success: [200] },
];

/** The OpenAPI path of a fastify pattern: `/v1/devices/:id` → `/v1/devices/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

/** The path parameters of a pattern. */
export function pathParams(url: string): string[] {
  return [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}
