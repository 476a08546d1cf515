// What scripts/ensure-nats.js and scripts/ensure-chromium.js share: find a binary (an explicit
// environment variable, else PATH and a few system folders), check that it runs (`--version`), and as
// root on Debian/Ubuntu install its apt package when it is missing. Plain Node, no dependencies: these
// run before anything else is known to work.

import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/**
 * Ensures a binary and exits: 0 when it works (or was installed), 1 with `hint` otherwise.
 * @param {{ tag: string, names: string[], envVar: string, extraDirs: string[], aptPackage: string, hint: string, what: string }} o
 */
export function ensureBinary(o) {
  const log = (line) => process.stderr.write(`${o.tag}: ${line}\n`);

  const isExecutable = (path) => {
    try {
      if (!statSync(path).isFile()) return false;
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };

  /** The binary path, or undefined; with the environment variable set only that path counts. */
  const find = () => {
    const explicit = process.env[o.envVar]?.trim();
    if (explicit) return isExecutable(resolve(explicit)) ? resolve(explicit) : undefined;
    const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...o.extraDirs];
    for (const name of o.names) {
      const found = dirs.map((d) => join(d, name)).find(isExecutable);
      if (found) return found;
    }
    return undefined;
  };

  /** `--version` output when the binary runs, else undefined. */
  const version = (binary) => {
    const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 30_000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };

  const apt = (args) => {
    log(`running apt-get ${args.join(" ")}`);
    const r = spawnSync("apt-get", args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    return r.status === 0;
  };

  const ok = (binary) => {
    const v = binary && version(binary);
    if (!v) return false;
    log(`${v} (${binary})`);
    return true;
  };

  if (ok(find())) process.exit(0);

  if (process.env[o.envVar]?.trim()) {
    // an explicit path is a decision: do not install something else behind the user's back
    log(`${o.envVar}=${process.env[o.envVar]} is not a working ${o.what} binary.\n${o.hint}`);
    process.exit(1);
  }

  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (isRoot && existsSync("/etc/debian_version")) {
    log(`${o.what} not found; installing it with apt-get (root on Debian)`);
    const install = ["install", "-y", "--no-install-recommends", o.aptPackage];
    const installed = apt(install) || (apt(["update"]) && apt(install));
    if (installed && ok(find())) process.exit(0);
    log(`installing ${o.what} with apt-get failed.\n${o.hint}`);
    process.exit(1);
  }

  log(`${o.what} not found.\n${o.hint}`);
  process.exit(1);
}
