// vitest global setup: after the whole run, drop the Postgres schemas spawned processes used.
import { dropProcessSchemas } from "./process-schema.ts";

export default function setup(): () => Promise<void> {
  return () => dropProcessSchemas();
}
