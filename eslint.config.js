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

/** What would make the twin domain nondeterministic: clocks, randomness, timers (docs/design.md §1). */
const determinism = "actors/*/domain is deterministic: take time from the input (acceptedAt, a tick's now)";
const domainNondeterministic = {
  properties: [
    { object: "Date", property: "now", message: `${determinism}, not Date.now().` },
    { object: "performance", property: "now", message: `${determinism}, not performance.now().` },
    { object: "Math", property: "random", message: "actors/*/domain is deterministic: no Math.random(); derive from the input." },
    { object: "crypto", property: "randomUUID", message: "actors/*/domain is deterministic: no random ids; derive ids from the input." },
    { object: "crypto", property: "getRandomValues", message: "actors/*/domain is deterministic: no randomness." },
  ],
  globals: ["setTimeout", "setInterval", "setImmediate", "queueMicrotask", "clearTimeout", "clearInterval", "clearImmediate"].map((name) => ({
    name,
    message: "actors/*/domain is deterministic and synchronous: no timers (wake-ups are nextWakeAt/tick).",
  })),
  syntax: [
    { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: `${determinism}, not new Date().` },
    { selector: "CallExpression[callee.name='Date']", message: `${determinism}, not Date().` },
  ],
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
    // the domain is deterministic: time comes in with the input (acceptedAt, a tick's `now`), never from
    // a clock, and nothing is random or scheduled; replaying a log must give the same state and outputs
    files: ["actors/*/domain/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-properties": ["error", ...domainNondeterministic.properties],
      "no-restricted-globals": ["error", ...domainNondeterministic.globals],
      "no-restricted-syntax": ["error", ...domainNondeterministic.syntax],
    },
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
