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
let components: Record<string, unknown>;

beforeAll(async () => {
  // no request is made: the dependencies are never called
  const unused = {} as never;
  const deps: AppDeps = { registry: unused, twins: unused, history: unused, live: unused, ops: unused, health: unused, metrics: new GatewayMetrics({ defaultMetrics: false }), adminToken: "openapi-test-admin-token" };
  app = await buildApp(deps);
  await app.ready();
  const doc = app.swagger() as unknown as { paths: typeof paths; components?: { schemas?: typeof components } };
  paths = doc.paths;
  components = doc.components?.schemas ?? {};
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
    for (const [status, answer] of Object.entries(op.responses ?? {})) {
      if (!status.startsWith("2")) continue;
      for (const [type, media] of Object.entries(answer.content ?? {})) expect(looseParts(media.schema, `${status} ${type}`), "success answers described exactly").toEqual([]);
    }
    if (r.auth !== "none") {
      expect(op.security?.length ?? 0, "security").toBeGreaterThan(0);
      const error = op.responses?.["4XX"]?.content?.["application/json"]?.schema as { $ref?: string } | undefined;
      expect(error?.$ref, "4XX answers in the error shape").toBeDefined();
    }
  });
});

/**
 * Where a success schema is not exact: an object that takes any field (fast-json-stringify would drop
 * what it does not list, and a client cannot know what comes), a value of no type, an array of anything.
 * Keyed maps (`additionalProperties: { …schema }`) are exact; `$ref`s are followed into the components.
 */
function looseParts(schema: unknown, path: string, seen = new Set<unknown>()): string[] {
  if (typeof schema !== "object" || schema === null) return [`${path}: no schema`];
  if (seen.has(schema)) return [];
  seen.add(schema);
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") return looseParts(components[s.$ref.replace("#/components/schemas/", "")], `${path} → ${s.$ref}`, seen);
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(s[key])) return (s[key] as unknown[]).flatMap((x, i) => looseParts(x, `${path}.${key}[${i}]`, seen));
  }
  if (s.type === undefined) return [`${path}: no type`];
  if (s.type === "array") return looseParts(s.items, `${path}[]`, seen);
  if (s.type !== "object") return [];
  const extra = s.additionalProperties;
  const out = typeof extra === "object" && extra !== null ? looseParts(extra, `${path}.*`, seen) : extra === false ? [] : [`${path}: an open object (additionalProperties ${JSON.stringify(extra)})`];
  for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) out.push(...looseParts(p, `${path}.${name}`, seen));
  return out;
}
