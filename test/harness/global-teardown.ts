// vitest global setup: names the run (test workers inherit the variable), and after the whole run drops
// the Postgres schemas this run's spawned processes used.
import { randomBytes } from "node:crypto";
import { dropProcessSchemas, RUN_ID_VARIABLE } from "./process-schema.ts";

export default function setup(): () => Promise<void> {
  process.env[RUN_ID_VARIABLE] ??= randomBytes(4).toString("hex");
  return () => dropProcessSchemas();
}
