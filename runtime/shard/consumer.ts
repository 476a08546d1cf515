// A shard's input consumer: one durable consumer per lease epoch (`shard-<s>-e<epoch>`), positioned at
// the checkpoint; the consumers of older epochs cleaned up; a deleted consumer noticed; deliveries
// checked for gaps (messages lost in transit).
import { AckPolicy, DeliverPolicy, type Consumer, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { retry, worthAskingAgain, type Backoff } from "../backoff.ts";
import { isConsumerNotFound } from "../jetstream-errors.ts";
import type { ShardRunnerDeps, ShardRunnerOptions } from "./options.ts";

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
 * Pull requests a shard's consumer lets wait (`max_waiting`; nats-server's default is 512). The runner
 * has one or two out at a time, but nats.js's consume() pulls afresh whenever two idle heartbeats go
 * missing (a saturated or paused nats-server) while the earlier pulls stay waiting, and each of those,
 * expiring with messages left, makes it pull again: the population never shrank. After the registration
 * of a million devices ~45 waited per shard — 2,100–3,300 heartbeats and 580–870 expiries a second on
 * nats-server (docs/BENCHMARKS.md, "The node at a million twins"). Past the bound the server refuses the
 * new pull (409, which consume() waits out) and the waiting ones go on delivering to the same inbox.
 */
export const MAX_WAITING_PULLS = 4;

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
 * Creates this epoch's durable consumer at the checkpoint. The previous claimer's consumer (its epoch
 * is in the fence this start replaced) is deleted by name meanwhile: normally its owner deleted it at
 * its planned stop; after a crash it is still there. No listing of every shard's consumers on this path.
 */
export async function positionConsumer(env: ConsumerEnv, checkpoint: number, previousEpoch: number | undefined): Promise<Consumer> {
  const { jsm, js, names, inputStream, options } = env.deps;
  const config: Partial<ConsumerConfig> & { durable_name: string } = {
    durable_name: names.shardConsumer(env.shard, env.epoch),
    filter_subject: names.input(env.shard),
    ack_policy: AckPolicy.All,
    ...(checkpoint > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: checkpoint + 1 } : { deliver_policy: DeliverPolicy.All }),
    ack_wait: nanos(options.ackWaitMs),
    max_ack_pending: options.maxAckPending,
    max_deliver: -1,
    max_waiting: MAX_WAITING_PULLS,
  };
  const previous =
    previousEpoch !== undefined && previousEpoch < env.epoch
      ? jsm.consumers.delete(inputStream, names.shardConsumer(env.shard, previousEpoch)).catch(() => false)
      : undefined;
  const info = await addConsumer(env, config);
  await previous;
  return js.consumers.getConsumerFromInfo(info);
}

/**
 * Creates this epoch's consumer, asking again while the request times out or finds no JetStream
 * leader (backoff.ts). A consumer of this name that has delivered already (an earlier attempt of this
 * epoch, restarted after a storage failure) or has another config (refused) is deleted and made afresh.
 */
async function addConsumer(env: ConsumerEnv, config: Partial<ConsumerConfig> & { durable_name: string }): Promise<ConsumerInfo> {
  const { jsm, inputStream } = env.deps;
  const add = () => env.askAgain(() => jsm.consumers.add(inputStream, config));
  const info = await add().catch((err: unknown) => (worthAskingAgain(err) ? Promise.reject(err) : undefined));
  if (info !== undefined && info.delivered.consumer_seq === 0) return info;
  await jsm.consumers.delete(inputStream, config.durable_name).catch(() => false);
  return add();
}

/**
 * How the runner pulls: `fetchBatch` messages per pull, pulls living `pullExpiresMs` with heartbeats
 * within; asked for again once three quarters of them have arrived. (nats.js's default asks again as soon
 * as a quarter has: at a few messages per shard and second that kept four pulls of 8 waiting per shard,
 * each with its own heartbeat every second and its own expiry — 64 shards at 1,000 readings/s: 150–175 pull
 * requests, 180–215 expiries and 65–490 heartbeats a second on nats-server; docs/BENCHMARKS.md.)
 */
export function consumeOptions(options: Pick<ShardRunnerOptions, "fetchBatch" | "pullExpiresMs">): { max_messages: number; threshold_messages: number; expires: number; idle_heartbeat: number } {
  return {
    max_messages: options.fetchBatch,
    threshold_messages: Math.max(1, Math.floor(options.fetchBatch / 4)),
    expires: options.pullExpiresMs,
    idle_heartbeat: Math.max(500, Math.round(options.pullExpiresMs / 5)),
  };
}

/** Deletes this epoch's consumer, in the background (a planned stop is done with it; a fenced epoch is over). */
export function deleteOwnConsumer(env: Pick<ConsumerEnv, "deps" | "shard" | "epoch">): void {
  const { jsm, inputStream, names } = env.deps;
  void jsm.consumers.delete(inputStream, names.shardConsumer(env.shard, env.epoch)).catch(() => false);
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

/**
 * Only a newer owner deletes this epoch's consumer: when it is gone, `gone` is called (a zombie learns
 * it here even before its next write is refused). Watches until the messages end or `stopped()`, and
 * counts every status notice by type (pulls sent, pulls expired, heartbeats missed: the pull economy).
 */
export async function watchConsumer(messages: ConsumerMessages, stopped: () => boolean, gone: (status: string) => void, counted: (type: string) => void = () => undefined): Promise<void> {
  try {
    for await (const s of messages.status()) {
      if (stopped()) return;
      counted(s.type);
      if (s.type === "consumer_deleted" || s.type === "consumer_not_found") {
        gone(s.type);
        return;
      }
    }
  } catch {
    // the iterator ends with the consumer
  }
}

/**
 * The consumer numbers its deliveries 1, 2, 3…; a jump means messages were lost in transit (nats-server
 * closed a slow consumer's connection). Acking past them (AckPolicy.All) and checkpointing would lose
 * them for good, so the shard must stop and restart from its checkpoint instead.
 */
export class DeliveryOrder {
  /** Highest consumer delivery sequence seen (this epoch's consumer starts at 1). */
  private lastDelivered = 0;

  /** Notes a delivery; returns the deliveries it skipped, if any (then it is not noted). */
  gapBefore(deliverySequence: number): { from: number; to: number } | undefined {
    if (deliverySequence > this.lastDelivered + 1) return { from: this.lastDelivered + 1, to: deliverySequence - 1 };
    if (deliverySequence > this.lastDelivered) this.lastDelivered = deliverySequence;
    return undefined;
  }
}

/** The consumer's backlog: messages not yet delivered, and delivered but not acknowledged. */
export async function consumerBacklog(env: Pick<ConsumerEnv, "deps" | "shard" | "epoch">): Promise<{ pending: number; ackPending: number }> {
  const { jsm, inputStream, names } = env.deps;
  const info = await jsm.consumers.info(inputStream, names.shardConsumer(env.shard, env.epoch));
  return { pending: info.num_pending, ackPending: info.num_ack_pending };
}
