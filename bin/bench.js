#!/usr/bin/env node
// Benchmark launcher: `node bin/bench.js <suite> [args…]` runs bench/<suite>.ts through tsx (no build
// step), calling its exported `main(args)` if it has one (a script without it runs on import). Each
// figure is one JSON line on stdout; progress on stderr.
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";

const [suite, ...args] = process.argv.slice(2);
const benchDir = join(dirname(fileURLToPath(import.meta.url)), "..", "bench");
if (suite === undefined || !/^[a-z0-9-]+(\/[a-z0-9-]+)*$/.test(suite) || !existsSync(join(benchDir, `${suite}.ts`))) {
  const suites = readdirSync(benchDir).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
  process.stderr.write(`usage: npm run bench -- <suite> [--quick] [options]\n\nsuites: ${suites.join(", ")}\n`);
  process.exit(2);
}
register();
// a suite that reads process.argv sees what it would see when run directly
const file = join(benchDir, `${suite}.ts`);
process.argv = [process.argv[0], file, ...args];
const mod = await import(pathToFileURL(file).href);
try {
  if (typeof mod.main === "function") await mod.main(args);
} catch (err) {
  process.stderr.write(`bench ${suite}: ${err?.stack ?? err}\n`);
  process.exit(1);
}
