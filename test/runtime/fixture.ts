// What the runtime tests share: one nats-server per test file with the connections its tests open
// (closed after the file), a one-stream node runtime for test entities, a log that prints only with
// DEBUG_RUNNER=1 and a counter's live state.
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import type { RuntimeClient } from "../../runtime/client.ts";
import type { EntityBehavior } from "../../runtime/entity.ts";
import type { LogFn } from "../../runtime/log.ts";
import { createNodeRuntime, type NodeRuntime } from "../../runtime/node-runtime.ts";
import type { ShardRunnerOptions } from "../../runtime/shard/mod.ts";
import { startNatsServer, type NatsServerOptions, type TestNatsServer } from "../harness/nats-server.ts";
import { counterBehavior, type CounterState } from "./counter-behavior.ts";

export interface FileNats {
  /** The file's server (started in beforeAll). */
  readonly server: TestNatsServer;
  /** A new connection to it, closed after the file. */
  conn(): Promise<NatsConnection>;
}

/** Starts a nats-server for the test file (beforeAll) and stops it with every connection (afterAll). */
export function natsForFile(options?: NatsServerOptions): FileNats {
  let server: TestNatsServer | undefined;
  const conns: NatsConnection[] = [];
  beforeAll(async () => {
    server = await startNatsServer(options);
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await server?.stop();
  });
  return {
    get server(): TestNatsServer {
      if (server === undefined) throw new Error("the file's nats-server is not started yet (use it inside a test)");
      return server;
    },
    async conn(): Promise<NatsConnection> {
      const nc = await connect({ servers: this.server.url, noAsyncTraces: true });
      conns.push(nc);
      return nc;
    },
  };
}

/** Silent unless DEBUG_RUNNER is set. */
export const debugLog: LogFn = process.env.DEBUG_RUNNER ? (level, msg, fields) => console.log(level, msg, JSON.stringify(fields)) : () => undefined;

/** A counter entity's live state, from its owner. */
export async function counterState(client: RuntimeClient, id: string): Promise<CounterState> {
  const r = await client.get("counter", id, null);
  if (!r.ok) throw new Error(r.error.message);
  return r.value as CounterState;
}

/** A node runtime over one input stream (unless told), replicas 1, no default metrics; counters unless told otherwise. */
export function testNode(
  nc: NatsConnection,
  o: { prefix: string; shards: number; streams?: number; runner?: Partial<ShardRunnerOptions>; behaviors?: readonly EntityBehavior[]; log?: LogFn },
): Promise<NodeRuntime> {
  return createNodeRuntime(nc, {
    prefix: o.prefix,
    shards: o.shards,
    streams: o.streams ?? 1,
    replicas: 1,
    behaviors: o.behaviors ?? [counterBehavior],
    defaultMetrics: false,
    log: o.log ?? debugLog,
    ...(o.runner === undefined ? {} : { runner: o.runner }),
  });
}
