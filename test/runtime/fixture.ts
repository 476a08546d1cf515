// What the runtime tests share: one nats-server per test file with the connections its tests open
// (closed after the file), a log that prints only with DEBUG_RUNNER=1, and a counter's live state.
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import type { RuntimeClient } from "../../runtime/client.ts";
import type { LogFn } from "../../runtime/node-runtime.ts";
import { startNatsServer, type NatsServerOptions, type TestNatsServer } from "../harness/nats-server.ts";
import type { CounterState } from "./counter-behavior.ts";

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
