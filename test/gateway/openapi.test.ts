// Every route is documented in the OpenAPI at /docs with its schemas, and every documented route is in
// the fuzzer's list (test/fuzz/http-routes.ts): a new route fails here until it has both. The app is
// built without NATS: this test only reads the document fastify builds from the route schemas.
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, type AppDeps } from "../../gateways/http/app.ts";
import { GatewayMetrics } from "../../gateways/metrics.ts";
import { HTTP_ROUTES, openApiPath, pathParams } from "../fuzz/http-routes.ts";

interface Operation {
  summary?: string;
  tags?: string[];
  parameters?: { in: string; name: string; schema?: unknown }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
  security?: unknown[];
}

let app: FastifyInstance;
let paths: Record<string, Record<string, Operation>>;

beforeAll(async () => {
  // no request is made: the dependencies are never called
  const unused = {} as never;
  const deps: AppDeps = { registry: unused, twins: unused, history: unused, live: unused, ops: unused, health: unused, metrics: new GatewayMetrics({ defaultMetrics: false }), adminToken: "openapi-test-admin-token" };
  app = await buildApp(deps);
  await app.ready();
  paths = (app.swagger() as { paths: typeof paths }).paths;
});

afterAll(async () => {
  await app?.close();
});

const documented = HTTP_ROUTES.filter((r) => r.openapi !== false);

describe("OpenAPI", () => {
  it("documents no route the fuzzer's list lacks", () => {
    const listed = new Set(documented.map((r) => `${r.method} ${openApiPath(r.url)}`));
    const inSpec = Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(inSpec.filter((k) => !listed.has(k)), "add these routes to test/fuzz/http-routes.ts").toEqual([]);
  });

  it.each(HTTP_ROUTES.map((r) => [`${r.method} ${r.url}`, r] as const))("%s is served", (_name, r) => {
    expect(app.hasRoute({ method: r.method, url: r.url })).toBe(true);
  });

  it.each(documented.map((r) => [`${r.method} ${r.url}`, r] as const))("%s is documented with its schemas", (_name, r) => {
    const op = paths[openApiPath(r.url)]?.[r.method.toLowerCase()];
    expect(op, "missing from the OpenAPI").toBeDefined();
    if (op === undefined) return;
    expect(op.summary?.length ?? 0, "summary").toBeGreaterThan(0);
    expect(op.tags?.length ?? 0, "tags").toBeGreaterThan(0);
    const params = op.parameters ?? [];
    for (const name of pathParams(r.url)) expect(params.find((p) => p.in === "path" && p.name === name)?.schema, `path parameter ${name}`).toBeDefined();
    for (const name of r.query ?? []) expect(params.find((p) => p.in === "query" && p.name === name)?.schema, `query parameter ${name}`).toBeDefined();
    if (r.body !== "none") expect(op.requestBody?.content?.["application/json"]?.schema, "request body schema").toBeDefined();
    // ingest also takes MessagePack (the gateway parses it): the document says so
    if (r.method === "POST" && r.url.endsWith("/readings")) expect(op.requestBody?.content?.["application/msgpack"]?.schema, "msgpack body schema").toBeDefined();
    for (const status of r.success) {
      const answer = op.responses?.[String(status)];
      expect(answer, `response ${status}`).toBeDefined();
      // a 204 has no body; every other success says what it carries
      if (status !== 204) expect(Object.values(answer?.content ?? {}).some((c) => c.schema !== undefined), `schema of response ${status}`).toBe(true);
    }
    if (r.auth !== "none") {
      expect(op.security?.length ?? 0, "security").toBeGreaterThan(0);
      const error = op.responses?.["4XX"]?.content?.["application/json"]?.schema as { $ref?: string } | undefined;
      expect(error?.$ref, "4XX answers in the error shape").toBeDefined();
    }
  });
});
