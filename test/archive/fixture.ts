// An archive against a real nats-server, a real node and the gateway's parts (GatewayFixture), on the
// backend the test names: Postgres from DATABASE_URL in a schema of its own, or in-memory PGlite.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { startArchive, type ArchiveOptions, type RunningArchive } from "../../gateways/archive/archive.ts";
import { openDatabase, type Database } from "../../gateways/archive/db/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/mod.ts";
import { waitFor } from "../harness/wait-for.ts";
import { buildApp } from "../../gateways/http/app.ts";
import { assembleGateway } from "../../gateways/http/gateway.ts";
import { ADMIN_TOKEN, type GatewayFixture } from "../gateway/fixture.ts";

/** One nats-server for the test file (started before its first test, stopped after the last); call the result in a test. */
export function natsServerForFile(): () => TestNatsServer {
  let server: TestNatsServer | undefined;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error("the file's nats-server has not started");
    return server;
  };
}

export type Backend = "postgres" | "pglite";

/** The backends this run can test: both when DATABASE_URL is set, else PGlite. */
export const BACKENDS: readonly Backend[] = process.env.DATABASE_URL ? ["postgres", "pglite"] : ["pglite"];

/** A database for one test: its own Postgres schema (dropped by `drop`) or in-memory PGlite. */
export async function testDatabase(backend: Backend, o: { schema?: string } = {}): Promise<Database & { schema: string | undefined; drop(): Promise<void> }> {
  const schema = backend === "postgres" ? (o.schema ?? `archive_${process.pid}_${randomBytes(4).toString("hex")}`) : undefined;
  const db =
    backend === "postgres" ? await openDatabase({ databaseUrl: process.env.DATABASE_URL, ...(schema === undefined ? {} : { schema }) }) : await openDatabase({ inMemory: true });
  return Object.assign(db, {
    schema,
    async drop() {
      if (schema !== undefined) await db.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
      await db.close();
    },
  });
}

/** Starts an archive on the fixture's cluster with fast pulls. */
export function archiveOn(f: GatewayFixture, db: Database, over: Partial<ArchiveOptions> = {}): Promise<RunningArchive> {
  return startArchive({
    nc: f.nc,
    db,
    prefix: f.prefix,
    shards: f.shards,
    streams: 1,
    replicas: 1,
    pullWaitMs: 250,
    maxRetryMs: 500,
    housekeepingMs: 500,
    defaultMetrics: false,
    ...(process.env.ARCHIVE_TEST_LOG ? { log: (level: string, msg: string, fields?: object) => console.error(level, msg, fields) } : {}),
    ...over,
  });
}

/** Waits until the archive has archived everything its sources hold. */
export async function caughtUp(archive: RunningArchive, timeoutMs = 90_000): Promise<void> {
  await waitFor(async () => (await archive.measureLag()) === 0, { timeoutMs, intervalMs: 200, message: "archive caught up" });
}

/** Posts readings for a device; throws unless 202. */
export async function post(f: GatewayFixture, device: { deviceId: string; headers: Record<string, string> }, readings: object[]): Promise<void> {
  const r = await f.app.inject({ method: "POST", url: `/v1/devices/${device.deviceId}/readings`, headers: device.headers, payload: { readings } });
  if (r.statusCode !== 202) throw new Error(`ingest: ${r.statusCode} ${r.body}`);
}

/** A fresh node and gateway app on a restored cluster, for checking what came back; `close()` when done. */
export async function restoredGateway(f: GatewayFixture, nodeId: string): Promise<{ app: Awaited<ReturnType<typeof buildApp>>; close(): Promise<void> }> {
  await f.startNode(nodeId);
  const parts = await assembleGateway(f.nc, { prefix: f.prefix, shards: f.shards, streams: 1, replicas: 1, defaultMetrics: false });
  const app = await buildApp({ ...parts.deps, adminToken: ADMIN_TOKEN });
  return {
    app,
    async close() {
      await app.close();
      await parts.close();
    },
  };
}

/** Each device's twin answers again and equals what it was before the loss, but for the wall-clock presence fields. */
export async function expectTwinsAsBefore(
  app: Awaited<ReturnType<typeof buildApp>>,
  deviceIds: readonly string[],
  before: ReadonlyMap<string, Record<string, unknown>>,
  headers: Record<string, string>,
): Promise<void> {
  const comparable = (v: Record<string, unknown>) => {
    const { online: _o, lastSeen: _l, ...rest } = v;
    return rest;
  };
  for (const deviceId of deviceIds) {
    const view = await waitFor(
      async () => {
        const r = await app.inject({ method: "GET", url: `/v1/devices/${deviceId}`, headers });
        return r.statusCode === 200 ? r.json<Record<string, unknown>>() : undefined;
      },
      { timeoutMs: 60_000, message: `twin ${deviceId} answers` },
    );
    expect(comparable(view), deviceId).toEqual(comparable(before.get(deviceId)!));
  }
}
