// airtwin CLI entry: one subcommand per role (docs/design.md §6).
const usage = `usage: airtwin <command>

commands:
  dev         run the whole system on this machine
  node        run a worker node (shards of twins)
  gateway     run the HTTP gateway
  archive     run the archive (Postgres/PGlite); archive restore, archive export
  integrations  deliver alerts and reports to partners (webhook, thermostat, email, push)
  ops         cluster operations
  simulate    a simulated device fleet and load generator (HTTP or NATS, synthetic or a CSV replay)
  bench       run benchmarks (airtwin bench <suite> [--quick]; without a suite, the list)
`;

const [command] = process.argv.slice(2);
switch (command) {
  case undefined:
  case "help":
  case "--help":
    process.stdout.write(usage);
    break;
  case "dev":
    await run(async () => (await import("./dev.ts")).runDev(process.argv.slice(3)));
    break;
  case "node":
    await run(async () => (await import("./node.ts")).runNode());
    break;
  case "gateway":
    await run(async () => (await import("./gateway.ts")).runGateway());
    break;
  case "archive":
    await run(async () => (await import("./archive.ts")).runArchive(process.argv.slice(3)));
    break;
  case "integrations":
    await run(async () => (await import("./integrations.ts")).runIntegrations(process.argv.slice(3)));
    break;
  case "ops":
    await run(async () => (await import("./ops.ts")).runOps(process.argv.slice(3)));
    break;
  case "bench": {
    // the benchmark launcher in its own process: suites read process.argv and print JSON lines
    const { spawnSync } = await import("node:child_process");
    const launcher = new URL("../bin/bench.js", import.meta.url).pathname;
    process.exitCode = spawnSync(process.execPath, [launcher, ...process.argv.slice(3)], { stdio: "inherit" }).status ?? 1;
    break;
  }
  case "simulate":
    await run(async () => (await import("./simulate.ts")).runSimulate(process.argv.slice(3)));
    break;
  default:
    process.stderr.write(`airtwin: unknown command "${command}"\n\n${usage}`);
    process.exitCode = 2;
}

/** Runs a subcommand; a coded error ends the process with its code and message, not a stack trace. */
async function run(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`airtwin: ${e.code ? `${e.code}: ` : ""}${e.message ?? String(err)}\n`);
    process.exit(1);
  }
}
