#!/usr/bin/env node
// Makes sure nats-server is installed before `npm test` and `npm start` (their pre-scripts run this).
// Found (AIRTWIN_NATS_SERVER, PATH, /usr/sbin, /usr/local/bin, /usr/local/sbin) and runs --version:
// exit 0. Missing, as root on Debian/Ubuntu: `apt-get install -y nats-server` (`apt-get update` first
// only if that fails). Otherwise: exit 1 saying what to install. Plain Node, no dependencies: it runs
// before anything else is known to work. Lookup order matches deploy/local-nats.ts.

import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

const EXTRA_DIRS = ["/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];
const HINT = [
  "airtwin needs nats-server (2.9 or later) for `npm start` and `npm test`. Install it with one of:",
  "  sudo apt-get install nats-server            (Debian 12+/Ubuntu; then it is /usr/sbin/nats-server)",
  "  a release from https://github.com/nats-io/nats-server/releases, with `nats-server` on PATH",
  "  AIRTWIN_NATS_SERVER=/path/to/nats-server     (use a binary anywhere)",
].join("\n");

const log = (line) => process.stderr.write(`ensure-nats: ${line}\n`);

function isExecutable(path) {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The binary path, or undefined; with AIRTWIN_NATS_SERVER set only that path counts. */
function find() {
  const explicit = process.env.AIRTWIN_NATS_SERVER?.trim();
  if (explicit) return isExecutable(resolve(explicit)) ? resolve(explicit) : undefined;
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  return dirs.map((d) => join(d, "nats-server")).find(isExecutable);
}

/** `nats-server --version` output when the binary runs, else undefined. */
function version(binary) {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function apt(args) {
  log(`running apt-get ${args.join(" ")}`);
  const r = spawnSync("apt-get", args, {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return r.status === 0;
}

function ok(binary) {
  const v = binary && version(binary);
  if (!v) return false;
  log(`${v} (${binary})`);
  return true;
}

if (ok(find())) process.exit(0);

if (process.env.AIRTWIN_NATS_SERVER?.trim()) {
  // an explicit path is a decision: do not install something else behind the user's back
  log(`AIRTWIN_NATS_SERVER=${process.env.AIRTWIN_NATS_SERVER} is not a working nats-server binary.\n${HINT}`);
  process.exit(1);
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (isRoot && existsSync("/etc/debian_version")) {
  log("nats-server not found; installing it with apt-get (root on Debian)");
  const installed = apt(["install", "-y", "nats-server"]) || (apt(["update"]) && apt(["install", "-y", "nats-server"]));
  if (installed && ok(find())) process.exit(0);
  log(`installing nats-server with apt-get failed.\n${HINT}`);
  process.exit(1);
}

log(`nats-server not found.\n${HINT}`);
process.exit(1);
