// The per-shard input consumers of versions before the node's stream readers (runtime/stream-reader.ts):
// one durable consumer per shard and lease epoch (`shard-<s>-e<epoch>`). A shard's start deletes those of
// older epochs still there (an upgraded cluster, a crash of an older version); a newer epoch's is never
// touched.
import type { ConsumerInfo } from "@nats-io/jetstream";
import { retry, type Backoff } from "../backoff.ts";
import { isConsumerNotFound } from "../jetstream-errors.ts";
import type { ShardRunnerDeps } from "./options.ts";

/** What the consumer's requests need of the runner. */
export interface ConsumerEnv {
  readonly deps: Pick<ShardRunnerDeps, "js" | "jsm" | "names" | "inputStream" | "options" | "log">;
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

async function sweepStaleConsumers(env: ConsumerEnv): Promise<void> {
  const { jsm, inputStream } = env.deps;
  const prefix = `shard-${env.shard}-e`;
  const stale: string[] = [];
  for await (const ci of jsm.consumers.list(inputStream) as AsyncIterable<ConsumerInfo | null>) {
    // nats-server 2.9 lists a consumer deleted meanwhile (another shard starting) as null (fixed upstream in nats-server#4669)
    if (ci?.name.startsWith(prefix) !== true) continue;
    const epoch = Number(ci.name.slice(prefix.length));
    // never a newer owner's
    if (Number.isInteger(epoch) && epoch < env.epoch) stale.push(ci.name);
  }
  // a consumer already gone (deleted by someone else meanwhile) is fine; any other failure is tried again
  for (const old of stale) await jsm.consumers.delete(inputStream, old).catch((err: unknown) => (isConsumerNotFound(err) ? false : Promise.reject(err)));
}
