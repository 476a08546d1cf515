// Versions of what a peer ran, for the table in docs/BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** An installed npm package's version ("?" when it is not installed). */
export function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

/** The first line a server binary prints for `args` (its version), "?" when it cannot run. */
export function binaryVersion(binary: string, args: readonly string[]): string {
  try {
    return execFileSync(binary, args, { encoding: "utf8" }).split("\n")[0]!.trim();
  } catch {
    return "?";
  }
}

export const natsVersion = (): string => binaryVersion("nats-server", ["--version"]).replace(/^nats-server: v/, "");
