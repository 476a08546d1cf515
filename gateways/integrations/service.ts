// Runs a set of integrations in one process (`airtwin integrations`, `airtwin dev`, the test kit): one
// runner per definition, sharing a NATS connection, the runtime client (for subscription checks and
// disabling), the map of every device's subscriptions and one metrics registry.
import type { NatsConnection } from "@nats-io/nats-core";
import { RuntimeClient } from "../../runtime/mod.ts";
import type { IntegrationDefinition } from "./define.ts";
import { IntegrationMetrics } from "./metrics.ts";
import { runIntegration, type IntegrationLog, type RunningIntegration } from "./runner.ts";
import type { TwinAccess } from "./subscription-lookup.ts";
import { SubscriptionMap } from "./subscription-map.ts";

/** Options of {@link startIntegrations}. */
export interface StartIntegrationsOptions {
  nc: NatsConnection;
  prefix: string;
  /** Shard count of the cluster (to route twin queries). */
  shards: number;
  definitions: readonly IntegrationDefinition[];
  /** Default: a RuntimeClient on `nc`. */
  twins?: TwinAccess;
  metrics?: IntegrationMetrics;
  log?: IntegrationLog;
  replicas?: number;
  drainMs?: number;
  random?: () => number;
}

export interface RunningIntegrations extends AsyncDisposable {
  readonly integrations: readonly RunningIntegration[];
  readonly metrics: IntegrationMetrics;
  /** Stops every integration (each drains), then the client it created. Idempotent. */
  close(): Promise<void>;
}

export async function startIntegrations(o: StartIntegrationsOptions): Promise<RunningIntegrations> {
  const metrics = o.metrics ?? new IntegrationMetrics();
  const ownClient = o.twins === undefined ? new RuntimeClient(o.nc, { prefix: o.prefix, shards: o.shards }) : undefined;
  const twins = o.twins ?? (ownClient as RuntimeClient);
  const running: RunningIntegration[] = [];
  let subscriptions: SubscriptionMap | undefined;
  const closeAll = async () => {
    await Promise.all(running.map((r) => r.close()));
    await subscriptions?.close();
    await ownClient?.close();
  };
  try {
    subscriptions = await SubscriptionMap.start({ nc: o.nc, prefix: o.prefix, twins, ...(o.log === undefined ? {} : { log: o.log }) });
    for (const def of o.definitions) {
      running.push(
        await runIntegration(def, {
          nc: o.nc, prefix: o.prefix, twins, metrics, subscriptions,
          ...(o.log === undefined ? {} : { log: o.log }),
          ...(o.replicas === undefined ? {} : { replicas: o.replicas }),
          ...(o.drainMs === undefined ? {} : { drainMs: o.drainMs }),
          ...(o.random === undefined ? {} : { random: o.random }),
        }),
      );
    }
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= closeAll());
  return { integrations: running, metrics, close, [Symbol.asyncDispose]: close };
}
