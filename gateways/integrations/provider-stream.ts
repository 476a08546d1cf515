// The stream a provider's deliveries are read from: `<PREFIX>_INTEGRATION_<PROVIDER>`, which sources the
// provider's subjects (`<prefix>.out.integration.<provider>.>`) from the output stream and is read by
// the provider's durable consumer without a filter. The twin still publishes on the output stream (the
// record the archive reads); this is the provider's work queue beside it.
//
// Why not a consumer filtered on the output stream (the layout before): nats-server 2.9's file store
// loses a filtered consumer's cached pending count (FilteredState's block scan leaves its last sequence
// 0), and the consumer then recounts it — a scan of the message block — before every message it hands
// out: a partner back after an outage drained its backlog at ~1,000 messages/s with nats-server at
// ~750 µs of CPU per message, on every second drain (docs/BENCHMARKS.md, bench/integrations-stall.ts).
// An unfiltered consumer counts its pending messages by arithmetic. The source itself is a filtered
// consumer too, but one that reads messages as they are written (its count is 0 after each).
//
// A cluster whose provider consumed the output stream directly (`integration-<provider>` on
// `<PREFIX>_OUT`): the stream starts after that consumer's ack floor, and the old consumer is removed
// (a process of the previous version still reading it stops delivering; this version's take over).
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { askAtStart as ask, isStreamNotFound, names } from "../../runtime/mod.ts";
import type { DeliveryContext } from "./define.ts";

/** Options of {@link ensureProviderStream}. */
export interface ProviderStreamOptions {
  prefix: string;
  provider: string;
  /** The provider's durable consumer name, as it was on the output stream before. */
  durable: string;
  /** A new stream (no consumer before it) starts with the output stream's messages of this age (ms). */
  maxAgeMs: number;
  log: DeliveryContext["log"];
}

const upper = (s: string): string => s.toUpperCase().replace(/-/g, "_");
/** The stream a provider's consumer reads (`<PREFIX>_INTEGRATION_<PROVIDER>`). */
export const providerStream = (prefix: string, provider: string): string => `${upper(prefix)}_INTEGRATION_${upper(provider)}`;

/** Creates the provider's stream unless it exists (moving a consumer of the previous layout over); returns its name. */
export async function ensureProviderStream(jsm: JetStreamManager, o: ProviderStreamOptions): Promise<string> {
  const name = providerStream(o.prefix, o.provider);
  // a start beside a cluster still electing leaders: a timeout is asked again, never taken for "missing"
  const exists = await ask(() => jsm.streams.info(name).then(() => true, (err: unknown) => (isStreamNotFound(err) ? false : Promise.reject(err))));
  if (exists) return name;
  const out = await ask(() => jsm.streams.info(names(o.prefix).outputStream));
  const previous = await jsm.consumers.info(out.config.name, o.durable).catch(() => undefined);
  // after what the previous consumer acknowledged; else what a first start delivers (older is stale anyway)
  const start = previous !== undefined
    ? { opt_start_seq: previous.ack_floor.stream_seq + 1 }
    : { opt_start_time: new Date(Date.now() - o.maxAgeMs).toISOString() };
  const config: Partial<StreamConfig> & { name: string } = {
    name,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: out.config.num_replicas,
    max_age: out.config.max_age,
    duplicate_window: nanos(120_000),
    sources: [{ name: out.config.name, filter_subject: `${o.prefix}.out.integration.${o.provider}.>`, ...start }],
  };
  try {
    await ask(() => jsm.streams.add(config));
  } catch (err) {
    // another process of the provider created it in between (its start time differs by a few ms), or an
    // add that timed out was carried out: either way it exists now (removing the old consumer twice is harmless)
    await ask(() => jsm.streams.info(name)).catch(() => Promise.reject(err));
  }
  if (previous !== undefined) {
    await jsm.consumers.delete(out.config.name, o.durable).catch(() => undefined);
    o.log("info", "the provider's consumer moved to a stream of its own", { provider: o.provider, stream: name, fromStreamSeq: previous.ack_floor.stream_seq + 1 });
  }
  return name;
}
