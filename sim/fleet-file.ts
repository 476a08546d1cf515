// The file that lets a simulated fleet resume: its user and API key, each device's token (shown once
// by the gateway, so kept here, mode 0600 like the admin token), how it was simulated and the event time
// it had reached. Written atomically (a temporary file renamed over it).
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { SimError } from "./errors.ts";

export interface FleetFile {
  version: 1;
  gatewayUrl?: string;
  userId: string;
  apiKey?: string;
  /** deviceId → device token. */
  tokens: Record<string, string>;
  /** How the fleet is simulated (the demo fleet's settings; `airtwin simulate` records its own). */
  seed?: number;
  devices?: number;
  idPrefix?: string;
  kindInId?: boolean;
  intervalMs?: number;
  liveIntervalMs?: number;
  speed?: number;
  startMs?: number;
  /** Event time before which every reading was answered: where a resumed fleet starts. */
  clock?: number;
}

export function readFleetFile(path: string): FleetFile | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const f = JSON.parse(readFileSync(path, "utf8")) as FleetFile;
    if (f.version !== 1 || typeof f.userId !== "string" || typeof f.tokens !== "object" || f.tokens === null) throw new Error("unknown layout");
    return f;
  } catch (err) {
    throw new SimError("OPTIONS_INVALID", `fleet file ${path} is unreadable (${(err as Error).message}); remove it to register the fleet again`, { cause: err, details: { file: path } });
  }
}

export function writeFleetFile(path: string, file: FleetFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 1)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
