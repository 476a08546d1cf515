#!/usr/bin/env node
// `npm run test:chaos -- [--seed N] [--devices N] [--faults N] [--short]`: the chaos run of issue 15
// (test/chaos/) with the full parameters — 1,000 simulated devices, 54 faults of every kind — or, with
// --short, the seeded short run `npm test` includes. Without --seed the full run draws one; the summary
// prints it, and the same seed replays the same fleet and fault plan.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const usage = "usage: npm run test:chaos -- [--seed N] [--devices N] [--faults N] [--short]";
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env, AIRTWIN_CHAOS_PROFILE: "full" };
const flags = { "--seed": "AIRTWIN_CHAOS_SEED", "--devices": "AIRTWIN_CHAOS_DEVICES", "--faults": "AIRTWIN_CHAOS_FAULTS" };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--short") env.AIRTWIN_CHAOS_PROFILE = "short";
  else if (a === "--help") {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  } else if (a in flags && /^\d+$/.test(args[i + 1] ?? "")) env[flags[a]] = args[++i];
  else {
    process.stderr.write(`chaos: unexpected argument "${a}"\n${usage}\n`);
    process.exit(2);
  }
}
const r = spawnSync(process.execPath, [join(root, "node_modules/vitest/vitest.mjs"), "run", "test/chaos"], { cwd: root, env, stdio: "inherit" });
process.exit(r.status ?? 1);
