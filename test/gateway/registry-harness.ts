// Registries against one real nats-server per test file: `open(prefix)` gives a registry on a connection
// of its own (another gateway's view, or `airtwin ops`); everything opened is closed after the file.
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll } from "vitest";
import { Registry, type RegistryOptions } from "../../gateways/registry/registry.ts";
import { connectNats } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";

export interface RegistryHarness {
  /** The file's nats-server (started before the first test). */
  readonly server: TestNatsServer;
  /** A registry on a connection of its own; `eraseTwin` stands for the gateway's twin erasure. */
  open(prefix: string, eraseTwin?: (deviceId: string) => Promise<unknown>, options?: Omit<RegistryOptions, "prefix" | "eraseTwin">): Promise<Registry>;
  /** A plain connection to the file's server (closed after the file). */
  connect(): Promise<NatsConnection>;
}

/** Registers the file's beforeAll/afterAll and returns the harness. */
export function registryHarness(): RegistryHarness {
  let server: TestNatsServer | undefined;
  const conns: NatsConnection[] = [];
  const registries: Registry[] = [];
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    for (const r of registries) await r.close();
    for (const nc of conns) await nc.close().catch(() => undefined);
    await server?.stop();
  });
  const started = (): TestNatsServer => {
    if (server === undefined) throw new Error("the nats-server starts in beforeAll");
    return server;
  };
  const connect = async (): Promise<NatsConnection> => {
    const nc = await connectNats({ servers: started().url, reconnectTimeWaitMs: 100 });
    conns.push(nc);
    return nc;
  };
  return {
    get server() {
      return started();
    },
    connect,
    async open(prefix, eraseTwin, options = {}) {
      const nc = await connect();
      const r = await Registry.open(nc, { ...options, prefix, ...(eraseTwin === undefined ? {} : { eraseTwin }) });
      registries.push(r);
      return r;
    },
  };
}
