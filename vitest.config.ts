import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// Test files run two at a time even on a 2-core machine: vitest's default for `run` is one worker per
// core less one — a single worker there — and our files spend most of their time waiting on the
// processes they start and on sockets (a clean CI run with one worker kept the machine ~40 % busy).
// AIRTWIN_TEST_WORKERS overrides it (1: one file at a time, as before).
const workers = Number(process.env.AIRTWIN_TEST_WORKERS ?? "") || Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", ".airtwin/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: workers,
    globalSetup: ["test/harness/global-teardown.ts"],
  },
});
