// What the benches that start airtwin's own processes share: the environment every process of a bench
// system gets, and the local Postgres server's processes (whose CPU a bench counts).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * The environment of a bench system's processes on a private nats-server: quiet logs, and no per-client
 * limits, since the bench is one address standing for a whole fleet of devices.
 */
export function benchSystemEnv(natsUrl: string, prefix: string, adminToken: string): Record<string, string> {
  return {
    NATS_URL: natsUrl,
    AIRTWIN_PREFIX: prefix,
    AIRTWIN_ADMIN_TOKEN: adminToken,
    AIRTWIN_LOG_LEVEL: "warn",
    AIRTWIN_INGEST_RATE_MAX: "1000000000",
    AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT: "0",
  };
}

/**
 * The local Postgres server's parent process (the postmaster: the parent of its other processes), which
 * reaps its backends as they close; undefined when none runs here.
 */
export function postgresServerPid(): number | undefined {
  const child = postgresPids()[0];
  if (child === undefined) return undefined;
  try {
    return Number(readFileSync(`/proc/${child}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The pids of the local Postgres server's lasting processes (none when it runs elsewhere; short-lived workers are not counted). */
export function postgresPids(): number[] {
  const r = spawnSync("pgrep", ["-af", "^postgres"], { encoding: "utf8" });
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "" && !/autovacuum worker|parallel worker/.test(l))
    .map((l) => Number(l.split(" ")[0]));
}
