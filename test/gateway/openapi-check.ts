// Checks real answers against the published OpenAPI document, and that serialisation lost nothing.
// - `PublishedSchemas`: the document `app.swagger()` publishes at /docs/json, compiled with Ajv; an
//   answer is checked against the schema documented for its route, status and content type.
// - `watchAnswers`: hooks on an app that keep what each handler returned (before fast-json-stringify,
//   which silently drops fields a response schema does not list) and compare it to the bytes sent.
// Used by test/gateway/openapi-responses.test.ts and the HTTP fuzzer (test/fuzz/http-fuzz.test.ts).
import { Ajv, type ValidateFunction } from "ajv";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { openApiPath } from "../fuzz/http-routes.ts";

interface MediaType {
  schema?: Record<string, unknown>;
}
interface Operation {
  requestBody?: { content?: Record<string, MediaType> };
  responses?: Record<string, { content?: Record<string, MediaType> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

/** One answer as the client got it. */
export interface Answer {
  method: string;
  /** The route's pattern (`/v1/devices/:id`). */
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

/** The published document's response schemas, compiled. */
export class PublishedSchemas {
  private readonly ajv: Ajv;
  private readonly doc: Document;
  private readonly validators = new Map<string, ValidateFunction>();

  private constructor(doc: Document) {
    // components are referenced as #/components/schemas/X: each compiled schema carries them as $defs
    this.doc = JSON.parse(JSON.stringify(doc).replaceAll('"#/components/schemas/', '"#/$defs/')) as Document;
    // strict: a keyword Ajv does not know is an error (a typo in a schema fails here), but for the
    // OpenAPI's own annotations
    this.ajv = new Ajv({ strict: true, strictTypes: false, allErrors: true });
    this.ajv.addKeyword("example");
  }

  /** The document `app` publishes (what GET /docs/json answers). */
  static of(app: FastifyInstance): PublishedSchemas {
    return new PublishedSchemas(app.swagger() as unknown as Document);
  }

  /** What is wrong with a JSON request body by the document: [] when it matches the route's documented body. */
  checkRequest(method: string, url: string, body: unknown): string[] {
    const where = `${method} ${url} request`;
    const schema = this.doc.paths[openApiPath(url)]?.[method.toLowerCase()]?.requestBody?.content?.["application/json"]?.schema;
    if (schema === undefined) return [`${where}: no JSON body documented`];
    return this.validate(`${method} ${url} request`, schema, body, where);
  }

  /**
   * What is wrong with `answer` by the document: [] when its body matches the schema documented for
   * its route, status (or status range, `4XX`) and content type.
   */
  check(answer: Answer): string[] {
    const where = `${answer.method} ${answer.url} → ${answer.status}`;
    const op = this.doc.paths[openApiPath(answer.url)]?.[answer.method.toLowerCase()];
    if (op === undefined) return [`${where}: the route is not in the document`];
    const response = op.responses?.[String(answer.status)] ?? op.responses?.[`${String(answer.status)[0]}XX`];
    if (response === undefined) return [`${where}: status not documented`];
    const mediaType = (answer.contentType ?? "").split(";")[0]!.trim();
    if (answer.body === "" && response.content === undefined) return [];
    const schema = response.content?.[mediaType]?.schema;
    if (schema === undefined) return [`${where}: content type ${JSON.stringify(mediaType)} not documented (${Object.keys(response.content ?? {}).join(", ")})`];
    let body: unknown = answer.body;
    if (mediaType.endsWith("json")) {
      try {
        body = JSON.parse(answer.body);
      } catch {
        return [`${where}: not JSON: ${answer.body.slice(0, 200)}`];
      }
    }
    return this.validate(`${answer.method} ${answer.url} ${answer.status} ${mediaType}`, schema, body, where);
  }

  private validate(key: string, schema: Record<string, unknown>, value: unknown, where: string): string[] {
    let validate = this.validators.get(key);
    if (validate === undefined) {
      validate = this.ajv.compile({ ...schema, $defs: this.doc.components?.schemas ?? {} });
      this.validators.set(key, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${where}: ${e.instancePath || "(body)"} ${e.message ?? "is invalid"} ${JSON.stringify(e.params)}`);
  }
}

/** An answer whose bytes differ from what its handler returned. */
export interface Loss {
  route: string;
  /** Paths in the handler's value that the body lacks or has otherwise (`$.channels.pm.count: 3 → 2`). */
  differences: string[];
}

/** What {@link watchAnswers} saw. */
export interface AnswerWatch {
  /** Every answer with a string body (JSON, CSV, text) or none, in order. */
  readonly answers: Answer[];
  /** Answers whose body is not what the handler returned (as JSON.stringify would have written it). */
  readonly losses: Loss[];
}

/**
 * Watches every answer of `app` (call before the app is ready): keeps what each handler returned, as
 * JSON.stringify writes it (what the API would send with no response schema), and compares it to the
 * body fastify sent.
 */
export function watchAnswers(app: FastifyInstance): AnswerWatch {
  const watch: AnswerWatch = { answers: [], losses: [] };
  const produced = new WeakMap<FastifyRequest, string>();
  app.addHook("preSerialization", (req, _reply, payload, done) => {
    produced.set(req, JSON.stringify(payload));
    done(null, payload);
  });
  app.addHook("onSend", (req, reply, payload, done) => {
    // a string is what was sent; nothing (204) is recorded as an empty body; streams and buffers (static files) are not JSON answers
    if (typeof payload === "string" || payload === undefined || payload === null) {
      const contentType = reply.getHeader("content-type");
      const answer: Answer = {
        method: req.method,
        url: req.routeOptions.url ?? req.url,
        status: reply.statusCode,
        contentType: typeof contentType === "string" ? contentType : undefined,
        body: payload ?? "",
      };
      watch.answers.push(answer);
      const before = produced.get(req);
      if (before !== undefined && typeof payload === "string") {
        const differences = differencesOf(JSON.parse(before) as unknown, JSON.parse(payload) as unknown, "$");
        if (differences.length > 0) watch.losses.push({ route: `${answer.method} ${answer.url} → ${answer.status}`, differences });
      }
    }
    done(null, payload);
  });
  return watch;
}

/** Where `b` differs from `a` (both plain JSON values): missing, extra or changed, by path. */
export function differencesOf(a: unknown, b: unknown, path: string): string[] {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
  }
  const out: string[] = [];
  const ka = Object.keys(a);
  const kb = new Set(Object.keys(b));
  for (const k of ka) {
    const p = Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`;
    if (!kb.has(k)) out.push(`${p}: lost (${JSON.stringify((a as Record<string, unknown>)[k]).slice(0, 80)})`);
    else out.push(...differencesOf((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], p));
  }
  for (const k of kb) if (!(k in a)) out.push(`${Array.isArray(b) ? `${path}[${k}]` : `${path}.${k}`}: added`);
  return out;
}
