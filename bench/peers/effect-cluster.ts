// Peer 4, @effect/cluster: each device an entity (`Entity.make("Device", [Ingest])`) on a single runner
// with SQL message storage and runner storage on Postgres (`SingleRunner.layer({ runnerStorage: "sql" })`
// over @effect/sql-pg), the way its documentation builds a durable single-node cluster. `Ingest` is a
// persisted RPC (`ClusterSchema.Persisted`): the cluster stores each message (the request's readings)
// before delivering it and its reply after, so an unanswered message is redelivered after a crash. The
// entity keeps its statistics in memory and makes them durable itself — an entity's memory is not,
// and processed messages are not replayed — by upserting its statistics row and inserting its events
// in one transaction per message (bench/peers/device-stats.ts), loading the row when it starts.
//
// Tuning, from the @effect/cluster and @effect/sql documentation: defaults of ShardingConfig
// (300 shards per group, one message at a time per entity); a pool of 16 connections (as the Postgres
// peer); the bench's own schema (cluster tables created by the storage's migrations), dropped after.
//
// Latency: request sent → the entity's reply (the message stored, the statistics committed, the
// reply stored).
// A crash loses: nothing acknowledged (every write is a committed Postgres transaction).
import { ClusterSchema, Entity, SingleRunner } from "@effect/cluster";
import { Rpc } from "@effect/rpc";
import { SqlClient } from "@effect/sql";
import { PgClient } from "@effect/sql-pg";
import { Effect, Layer, ManagedRuntime, Redacted, Schema } from "effect";
import pg from "pg";
import { CHANNELS, applyReadings, emptyStats, type DeviceStats } from "./device-stats.ts";
import { databaseUrl } from "./postgres.ts";
import { binaryVersion, packageVersion } from "./versions.ts";
import { drive, emitRound, ProcessMeter, self, totalReadings, workloadFrom } from "./workload.ts";

const APP = "airtwin-peers-effect";
const ReadingSchema = Schema.Struct({ t: Schema.Number, ...Object.fromEntries(CHANNELS.map((c) => [c, Schema.optional(Schema.Number)])) });

const Ingest = Rpc.make("Ingest", { payload: { readings: Schema.Array(ReadingSchema) }, success: Schema.Number }).annotate(ClusterSchema.Persisted, true);
const Device = Entity.make("Device", [Ingest]);

const DeviceLive = Device.toLayer(
  Effect.gen(function* () {
    const { entityId } = yield* Entity.CurrentAddress;
    const sql = yield* SqlClient.SqlClient;
    const rows = yield* sql<{ stats: DeviceStats }>`SELECT stats FROM device_stats WHERE device_id = ${entityId}`.pipe(Effect.orDie);
    const stats: DeviceStats = rows.length === 0 ? emptyStats() : reviveInfinity(rows[0]!.stats);
    return Device.of({
      Ingest: ({ payload }) =>
        Effect.gen(function* () {
          const events = applyReadings(stats, payload.readings as Parameters<typeof applyReadings>[1]);
          const json = JSON.stringify(stats);
          yield* sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO device_stats (device_id, stats) VALUES (${entityId}, ${json}::jsonb)
                         ON CONFLICT (device_id) DO UPDATE SET stats = EXCLUDED.stats`;
              if (events.length > 0) yield* sql`INSERT INTO pollution_events ${sql.insert(events.map((e) => ({ device_id: entityId, t: e.t, kind: e.kind, value: e.value })))}`;
            }),
          );
          return events.length;
        }).pipe(Effect.orDie),
    });
  }),
);

export async function main(argv: string[]): Promise<void> {
  const { workload: w } = workloadFrom(argv);
  const schema = `peers_effect_${process.pid}`;
  const admin = new pg.Client({ connectionString: databaseUrl(), application_name: `${APP}-admin` });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema};
    CREATE TABLE ${schema}.device_stats (device_id text PRIMARY KEY, stats jsonb NOT NULL);
    CREATE TABLE ${schema}.pollution_events (device_id text NOT NULL, t bigint NOT NULL, kind text NOT NULL, value real NOT NULL, PRIMARY KEY (device_id, t, kind));`);
  const url = new URL(databaseUrl());
  url.searchParams.set("options", `-c search_path=${schema}`);
  const SqlLive = PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 16, applicationName: APP });
  const AppLive = DeviceLive.pipe(Layer.provideMerge(SingleRunner.layer({ runnerStorage: "sql" })), Layer.provideMerge(SqlLive));
  const runtime = ManagedRuntime.make(AppLive);
  try {
    const client = await runtime.runPromise(Device.client);
    const meter = new ProcessMeter({ "bench (application)": [self()] });
    let events = 0;
    const t0 = performance.now();
    const { latencyMs } = await drive(w, async (r) => {
      const n = await runtime.runPromise(client(r.deviceId).Ingest({ readings: r.readings }));
      events += n;
    });
    const seconds = (performance.now() - t0) / 1000;
    const backends = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [APP]);
    for (const b of backends.rows) meter.add("postgres backends", b.pid, false, true);
    const { cpuS, peakRssMb } = meter.read();
    const stored = (await admin.query<{ devices: string; events: string }>(`SELECT (SELECT count(*) FROM ${schema}.device_stats) AS devices, (SELECT count(*) FROM ${schema}.pollution_events) AS events`)).rows[0]!;
    if (Number(stored.devices) !== w.devices || Number(stored.events) !== events) throw new Error(`stored ${stored.devices} devices and ${stored.events} events, expected ${w.devices} and ${events}`);
    emitRound(w, {
      system: "effect-cluster",
      readings: totalReadings(w),
      seconds,
      latencyMs,
      latencyIs: "sent → entity's reply (message stored, statistics and events committed, reply stored)",
      cpuS,
      peakRssMb,
      crashLoses: "nothing acknowledged (committed Postgres transactions; an unanswered message is redelivered)",
      versions: {
        "@effect/cluster": packageVersion("@effect/cluster"),
        effect: packageVersion("effect"),
        "@effect/sql-pg": packageVersion("@effect/sql-pg"),
        postgres: (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v,
        psql: binaryVersion("psql", ["--version"]),
      },
      extra: { pmEvents: events, backends: backends.rowCount },
    });
  } finally {
    await runtime.dispose();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

/** JSON has no Infinity: a channel never seen has min/max null in the stored row. */
function reviveInfinity(s: DeviceStats): DeviceStats {
  for (const c of CHANNELS) {
    const st = s.channels[c];
    if (st.min === null) st.min = Infinity;
    if (st.max === null) st.max = -Infinity;
  }
  return s;
}
