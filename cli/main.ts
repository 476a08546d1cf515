// airtwin CLI entry: one subcommand per role (DESIGN §6).
const usage = `usage: airtwin <command>

commands:
  dev         run the whole system on this machine
  node        run a worker node (shards of twins)
  gateway     run the HTTP gateway
  ops         cluster operations
  bench       run benchmarks
`;

const [command] = process.argv.slice(2);
switch (command) {
  case undefined:
  case "help":
  case "--help":
    process.stdout.write(usage);
    break;
  default:
    process.stderr.write(`airtwin: unknown command "${command}"\n\n${usage}`);
    process.exitCode = 2;
}
