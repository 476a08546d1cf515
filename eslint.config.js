// Lint: typescript-eslint plus the architecture rules of docs/design.md §1 (no cycles; a pure domain).
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";

/** Imports that would make the twin domain impure or couple it to the runtime (docs/design.md §1). */
const domainForbidden = {
  patterns: [
    { group: ["node:*"], message: "actors/*/domain is pure: no node:* imports." },
    { group: ["**/runtime", "**/runtime/**"], message: "actors/*/domain must not import the runtime." },
    { group: ["**/gateways/**"], message: "actors/*/domain must not import gateways." },
    { group: ["@nats-io/*", "nats"], message: "actors/*/domain must not talk to NATS." },
    { group: ["fastify", "@fastify/*", "pg", "prom-client"], message: "actors/*/domain does no I/O." },
  ],
  paths: ["fs", "path", "os", "crypto", "net", "http", "child_process", "worker_threads", "timers"].map((name) => ({
    name,
    message: "actors/*/domain is pure: no Node built-ins.",
  })),
};

export default tseslint.config(
  { ignores: ["node_modules/**", ".airtwin/**", "coverage/**", "dist/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.js"],
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: "./tsconfig.json" })],
    },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    files: ["actors/*/domain/**/*.ts"],
    rules: { "no-restricted-imports": ["error", domainForbidden] },
  },
  {
    // actors reach the runtime only through its public module
    files: ["actors/**/*.ts"],
    ignores: ["actors/*/domain/**"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["**/runtime/*", "!**/runtime/mod.ts"], message: "actors use only runtime/mod.ts." },
          { group: ["**/gateways/**"], message: "actors must not import gateways." },
        ],
      }],
    },
  },
  {
    // gateways use only the runtime's client API and the actors' public types
    files: ["gateways/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["**/runtime/*", "!**/runtime/mod.ts", "!**/runtime/client.ts"], message: "gateways use only runtime/mod.ts (client API)." },
          { group: ["**/actors/*/domain/*", "!**/actors/*/domain/mod.ts"], message: "gateways use only the actors' public modules." },
        ],
      }],
    },
  },
  {
    // the simulator's model is pure like the twin domain: same seed, same readings
    files: ["sim/model/**/*.ts"],
    rules: { "no-restricted-imports": ["error", {
      ...domainForbidden,
      patterns: [...domainForbidden.patterns, { group: ["**/actors/*/domain/*", "!**/actors/*/domain/mod.ts"], message: "sim/model uses only the domain's public module." }],
    }] },
  },
  {
    // the simulator is a client: the runtime's public module, the actors' public modules
    files: ["sim/**/*.ts"],
    ignores: ["sim/model/**"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["**/runtime/*", "!**/runtime/mod.ts"], message: "sim/ uses only runtime/mod.ts." },
          { group: ["**/actors/*/domain/*", "!**/actors/*/domain/mod.ts"], message: "sim/ uses only the actors' public modules." },
        ],
      }],
    },
  },
  {
    files: ["runtime/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["**/actors/**", "**/gateways/**"], message: "runtime/ is generic: it knows nothing of actors or gateways." },
        ],
      }],
    },
  },
);
