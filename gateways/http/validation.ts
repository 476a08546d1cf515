// Schema validation of the HTTP API: strict for bodies, coercing for the parts that arrive as text.
// A JSON body has types, so `{"deviceId":123}` or `{"disabled":"true"}` is a 400 naming the field, not
// a device "123" or a true; a query string, path or header only has strings, so `?limit=10` is read as
// the integer the schema asks for. (fastify's one Ajv would coerce everything or nothing.)
import { AjvCompiler } from "@fastify/ajv-compiler";
import type { FastifySchemaCompiler, FastifyServerOptions } from "fastify";

const COMMON = {
  removeAdditional: false,
  useDefaults: true,
  // every offending field in `details`; bodies are small (64 KiB limit) so the cost is bounded
  allErrors: true,
} as const;

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"]>;

/** fastify's `schemaController.compilersFactory`: bodies validated without coercion, everything else with. */
export function strictBodyCompilers(): CompilersFactory {
  const pool = AjvCompiler();
  return {
    buildValidator(externalSchemas: unknown) {
      const schemas = (externalSchemas ?? {}) as Record<string, unknown>;
      const strict = pool(schemas as never, { customOptions: { ...COMMON, coerceTypes: false } });
      // not "array": a repeated parameter (`?from=1&from=2`) stays an array and fails a string schema
      const coercing = pool(schemas as never, { customOptions: { ...COMMON, coerceTypes: true } });
      const compile: FastifySchemaCompiler<unknown> = (route) => (route.httpPart === "body" ? strict : coercing)(route as never) as never;
      return compile;
    },
  } as CompilersFactory;
}
