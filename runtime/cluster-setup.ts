// Creates the JetStream resources of a cluster if they are missing: K input streams (each a contiguous
// group of shards, so stream leaders spread over a NATS cluster), the output stream and the dead-letter
// stream. Idempotent.
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { askAtStart, worthAskingAgain } from "./backoff.ts";
import { ensureClusterMeta, openClusterBucket } from "./ownership/meta.ts";
import { shardsOfStream, type Names } from "./subjects.ts";

/** Retention and replication of the cluster's streams. */
export interface StreamsOptions {
  shards: number;
  streams: number;
  /** JetStream replicas (1, 3 or 5). */
  replicas: number;
  /** Input messages are kept this long even when consumed (ms). Default 7 days. */
  inputMaxAgeMs?: number;
  /** Input stream size bound per stream (bytes; -1 unbounded). Default 10 GiB. */
  inputMaxBytes?: number;
  /** Outputs are kept this long (ms). Default 7 days. */
  outputMaxAgeMs?: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped (ms). Default 2 minutes. */
  duplicateWindowMs?: number;
}

const DAY_MS = 86_400_000;

type NamedStreamConfig = Partial<StreamConfig> & { name: string };

export function inputStreamConfig(names: Names, k: number, o: StreamsOptions): NamedStreamConfig {
  // its shards' subjects, and its messages of several shards (`in.g<k>`; `in.*` holds it with one stream)
  const subjects = o.streams === 1 ? [`${names.prefix}.in.*`] : [...shardsOfStream(k, o.shards, o.streams).map((s) => names.input(s)), names.inputGroup(k)];
  return {
    name: names.inputStream(k),
    subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: nanos(o.inputMaxAgeMs ?? 7 * DAY_MS),
    max_bytes: o.inputMaxBytes ?? 10 * 1024 ** 3,
    duplicate_window: nanos(o.duplicateWindowMs ?? 120_000),
  };
}

export function outputStreamConfig(names: Names, o: StreamsOptions): NamedStreamConfig {
  return {
    name: names.outputStream,
    subjects: [`${names.outputRoot}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: nanos(o.outputMaxAgeMs ?? 7 * DAY_MS),
    duplicate_window: nanos(o.duplicateWindowMs ?? 120_000),
  };
}

/** The dead letters of every source (`<prefix>.dlq.>`: inputs, integrations), kept 30 days. */
export function deadLetterStreamConfig(names: Names, o: StreamsOptions): NamedStreamConfig {
  return {
    name: names.deadLetterStream,
    subjects: [`${names.prefix}.dlq.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: nanos(30 * DAY_MS),
    duplicate_window: nanos(o.duplicateWindowMs ?? 120_000),
  };
}

/**
 * Adds each stream unless it exists. An existing stream is left as it is, but for an input stream of a
 * cluster created before messages of several shards: its `in.g<k>` subject is added.
 */
export async function ensureStreams(jsm: JetStreamManager, names: Names, o: StreamsOptions): Promise<void> {
  const configs = [outputStreamConfig(names, o), deadLetterStreamConfig(names, o)];
  for (let k = 0; k < o.streams; k++) configs.push(inputStreamConfig(names, k, o));
  for (const config of configs) {
    // a cluster still electing leaders times out or has none: asked again for up to a minute (backoff.ts)
    await askAtStart(
      async () => {
        try {
          const existing = (await jsm.streams.info(config.name)).config;
          const missing = (config.subjects ?? []).filter((subject) => !existing.subjects.includes(subject));
          if (o.streams > 1 && missing.length > 0 && missing.every((subject) => subject.startsWith(`${names.prefix}.in.g`))) {
            await jsm.streams.update(config.name, { ...existing, subjects: [...existing.subjects, ...missing] });
          }
          return;
        } catch (err) {
          if (worthAskingAgain(err)) throw err;
        }
        try {
          await jsm.streams.add(config);
        } catch (err) {
          // another process created it in between
          await jsm.streams.info(config.name).catch(() => Promise.reject(err));
        }
      },
    );
  }
}

/**
 * What a process that writes input without owning shards (the gateway, `airtwin ops`) does first:
 * refuses a shard count the cluster was not created with (every entity's shard depends on it;
 * AIRTWIN_ERR_SHARDS_MISMATCH), and creates the streams if no node has yet, so its first write is stored.
 */
export async function ensureClusterForClients(nc: NatsConnection, names: Names, o: StreamsOptions): Promise<void> {
  const kv = await openClusterBucket((timeout) => new Kvm(jetstream(nc, { timeout })), names, o.replicas);
  await ensureClusterMeta(kv, { shards: o.shards, streams: o.streams }, Date.now());
  await ensureStreams(await jetstreamManager(nc), names, o);
}
