// Public entry of the test harness: real nats-server (single and cluster), a test database (Postgres
// or PGlite), free ports and waitFor. Integration tests import from here.
//
//   import { startNatsServer, startNatsCluster, openTestDatabase, waitFor } from "../harness/mod.ts";

export { NatsServerMissingError, NatsServerStartError, startNatsServer } from "./nats-server.ts";
export type { NatsServerOptions, TestNatsServer } from "./nats-server.ts";
export { startNatsCluster } from "./nats-cluster.ts";
export type { ClusterMember, NatsClusterOptions, TestNatsCluster } from "./nats-cluster.ts";
export { openTestDatabase } from "./postgres.ts";
export type { TestDatabase, TestDatabaseOptions } from "./postgres.ts";
export { getFreePort, getFreePorts, isPortFree } from "./free-port.ts";
export { waitFor, WaitForTimeoutError } from "./wait-for.ts";
export type { WaitForOptions } from "./wait-for.ts";
