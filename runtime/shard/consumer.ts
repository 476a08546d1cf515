// The per-shard input consumers of versions before the node's stream readers (runtime/stream-reader.ts):
// one durable consumer per shard and lease epoch (`shard-<s>-e<epoch>`). A node lists a stream's once,
// at the first start of a shard of it here (LegacyConsumers); each shard's start deletes those of its
// shard and an older epoch (an upgraded cluster, a crash of an older version); a newer epoch's is never
// touched.
import type { ConsumerInfo, JetStreamManager } from "@nats-io/jetstream";
import { retry, type Backoff } from "../backoff.ts";
import { isConsumerNotFound } from "../jetstream-errors.ts";
import type { ShardRunnerDeps } from "./options.ts";

/** What the consumer's requests need of the runner. */
export interface ConsumerEnv {
  readonly deps: Pick<ShardRunnerDeps, "js" | "jsm" | "names" | "inputStream" | "legacyConsumers" | "options" | "log">;
  readonly shard: number;
  readonly epoch: number;
  /** A start's JetStream request, asked again while worth it (backoff.ts). */
  askAgain<T>(request: () => Promise<T>): Promise<T>;
  /** True once the runner stops or is fenced: background work for this epoch ends. */
  stopped(): boolean;
}

/**
 * How long and how often {@link deleteStaleConsumers} tries. A restart of every NATS server is when
 * its listing times out and when stale consumers matter most: each is a raft group of its own that a
 * restarted server catches up, and one left without quorum keeps nats-server's /healthz red.
 */
export const STALE_SWEEP: StaleSweep = { withinMs: 15 * 60_000, backoff: { firstMs: 2_000, maxMs: 60_000 } };

export interface StaleSweep {
  readonly withinMs: number;
  readonly backoff: Backoff;
}

/**
 * Deletes this shard's consumers of older epochs still there (a crash, two claims racing), trying
 * again with growing pauses while the listing or a deletion fails, until this epoch ends.
 */
export async function deleteStaleConsumers(env: ConsumerEnv, sweep: StaleSweep = STALE_SWEEP): Promise<void> {
  let failures = 0;
  try {
    await retry(
      async () => {
        try {
          await sweepStaleConsumers(env);
        } catch (err) {
          if (failures++ === 0) env.deps.log("warn", "stale consumers not cleaned up yet, trying again", { shard: env.shard, error: (err as Error).message });
          throw err;
        }
      },
      { ...sweep, stopped: env.stopped },
    );
    if (failures > 0) env.deps.log("info", "stale consumers cleaned up", { shard: env.shard, failures });
  } catch (err) {
    if (!env.stopped()) env.deps.log("warn", "stale consumers not cleaned up", { shard: env.shard, failures, error: (err as Error).message });
  }
}

/**
 * The consumers of older versions left on one input stream, as a node found them: listed once, by the
 * first of its shards of the stream to start here, not by every start — a cold start of 64 shards listed
 * the stream 64 times, though only an upgraded cluster has any left. Each is deleted by the start of its
 * shard under a newer epoch. A listing that fails is forgotten (the next attempt lists again). One that an
 * older version makes after the listing (a rolling upgrade in progress) is left until its shard starts on
 * a node that lists the stream later (a node lists again when it restarts).
 */
export class LegacyConsumers {
  private listing: Promise<Set<string>> | undefined;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  /** The left-over `shard-<s>-e<epoch>` consumers of the stream not deleted since (listed at the first call). */
  found(): Promise<Set<string>> {
    this.listing ??= this.list().catch((err: unknown) => {
      this.listing = undefined;
      throw err;
    });
    return this.listing;
  }

  private async list(): Promise<Set<string>> {
    const left = new Set<string>();
    for await (const ci of this.jsm.consumers.list(this.stream) as AsyncIterable<ConsumerInfo | null>) {
      // nats-server 2.9 lists a consumer deleted meanwhile as null (fixed upstream in nats-server#4669)
      if (ci?.name.startsWith("shard-") === true) left.add(ci.name);
    }
    return left;
  }
}

async function sweepStaleConsumers(env: ConsumerEnv): Promise<void> {
  const { jsm, inputStream, legacyConsumers } = env.deps;
  const left = await legacyConsumers.found();
  const prefix = `shard-${env.shard}-e`;
  for (const name of [...left]) {
    if (!name.startsWith(prefix)) continue;
    const epoch = Number(name.slice(prefix.length));
    // never a newer owner's
    if (!Number.isInteger(epoch) || epoch >= env.epoch) continue;
    // a consumer already gone (deleted by someone else meanwhile) is fine; any other failure is tried again
    await jsm.consumers.delete(inputStream, name).catch((err: unknown) => (isConsumerNotFound(err) ? false : Promise.reject(err)));
    left.delete(name);
  }
}
