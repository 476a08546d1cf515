// Which NATS server `airtwin ops` talks to, and whether an airtwin cluster lives there.
// NATS_URL wins; else the URL the running `airtwin dev` wrote to <AIRTWIN_DATA_DIR>/nats.url (its
// nats-server takes a new free port on every start); else nats://127.0.0.1:4222. ops only reads what
// nodes created: on a server without the cluster bucket it refuses instead of creating buckets there.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { maskUrl, RuntimeError, type Names } from "../runtime/mod.ts";
import { registryBucket } from "../gateways/registry/registry.ts";

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

export interface OpsTarget {
  readonly url: string;
  /** Where the URL came from, for the message naming the server. */
  readonly source: string;
}

/** The server to talk to: NATS_URL, else `<data dir>/nats.url` of a running `airtwin dev`, else the default. */
export function resolveOpsTarget(env: NodeJS.ProcessEnv): OpsTarget {
  const fromEnv = env.NATS_URL?.trim();
  if (fromEnv) return { url: fromEnv, source: "NATS_URL" };
  const file = join(resolve(env.AIRTWIN_DATA_DIR?.trim() || ".airtwin"), "nats.url");
  let written: string | undefined;
  try {
    written = readFileSync(file, "utf8").trim();
  } catch {
    // no airtwin dev has run with this data dir (or it stopped and removed the file)
  }
  if (written) return { url: written, source: `${file}, written by airtwin dev` };
  return { url: DEFAULT_NATS_URL, source: `the default; no NATS_URL, no ${file}` };
}

/** The line ops prints to stderr before anything else, password masked. */
export function describeTarget(t: OpsTarget): string {
  return `airtwin ops: NATS at ${maskUrl(t.url)} (${t.source})`;
}

async function streamExists(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    await jsm.streams.info(stream);
    return true;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
    throw err;
  }
}

/**
 * Refuses (AIRTWIN_ERR_OPS_NO_CLUSTER) when no airtwin node ever ran on this server: the cluster KV
 * bucket is missing. Returns whether the registry bucket exists (a cluster without a gateway has none yet).
 */
export async function requireCluster(nc: NatsConnection, names: Names, url: string): Promise<{ registry: boolean }> {
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    throw new RuntimeError("OPS_NO_CLUSTER", `no airtwin cluster runs at ${maskUrl(url)}: JetStream is not enabled there (${(err as Error).message})`, {
      details: { server: maskUrl(url), prefix: names.prefix },
    });
  }
  if (!(await streamExists(jsm, `KV_${names.clusterBucket}`))) {
    throw new RuntimeError(
      "OPS_NO_CLUSTER",
      `no airtwin cluster runs at ${maskUrl(url)}: it has no KV bucket ${names.clusterBucket} (prefix "${names.prefix}"); start airtwin dev or a node there, or point NATS_URL / AIRTWIN_DATA_DIR / AIRTWIN_PREFIX at the right cluster`,
      { details: { server: maskUrl(url), prefix: names.prefix, bucket: names.clusterBucket } },
    );
  }
  return { registry: await streamExists(jsm, `KV_${registryBucket(names.prefix)}`) };
}
