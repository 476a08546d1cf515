// Peer 2, Postgres-centric: each request is one transaction that locks the device's statistics row
// (SELECT … FOR UPDATE), INSERTs the request's readings and any pollution events, and writes the
// updated statistics back — batched per request, as a careful team would, so a device's state and its
// readings commit together. The statistics are computed in the application (bench/peers/device-stats.ts),
// the pm events' hysteresis needing the previous state.
//
// Tuning, from the PostgreSQL and node-postgres documentation: one multi-row INSERT per request
// (unnest of arrays: one round trip, one plan) instead of a row per statement; named prepared
// statements; a pool of `--pg-pool` connections (default 16: the wiki's "(cores × 2) + spindles" gives
// 5 here, but every commit waits for its WAL flush, and more sessions share one flush — measured
// faster on this machine); readings keyed (device_id, t) as a time-series table would be; server
// settings as found (synchronous_commit on, fsync on — the durability this peer is chosen for); the
// bench's own schema, dropped afterwards. DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test.
//
// Latency: request sent → its transaction committed.
// A crash loses: nothing acknowledged (a commit returns after its WAL is flushed).
// CPU: this process (the application) and the Postgres backends serving its connections (from /proc,
// found by application_name); the server's shared WAL writer and checkpointer are not counted.
import pg from "pg";
import { CHANNELS, applyReadings, emptyStats, type Channel, type DeviceStats } from "./device-stats.ts";
import { binaryVersion, packageVersion } from "./versions.ts";
import { drive, emitRound, ProcessMeter, self, totalReadings, workloadFrom, type PeerRequest } from "./workload.ts";
import { int } from "../lib/args.ts";

const APP = "airtwin-peers-postgres";
const STAT_FIELDS = ["count", "mean", "m2", "min", "max", "ewma"] as const;
const statColumns = CHANNELS.flatMap((c) => STAT_FIELDS.map((f) => `${c}_${f}`));

export const databaseUrl = (): string => process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";

export async function main(argv: string[]): Promise<void> {
  const { workload: w, args } = workloadFrom(argv);
  const schema = `peers_pg_${process.pid}`;
  const pool = new pg.Pool({ connectionString: databaseUrl(), max: int(args, "pg-pool", 16), application_name: APP, options: `-c search_path=${schema}` });
  const admin = new pg.Client({ connectionString: databaseUrl(), application_name: `${APP}-admin` });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
  await admin.query(`
    CREATE TABLE ${schema}.readings (device_id text NOT NULL, t bigint NOT NULL, pm real, co2 real, voc real, tmp real, hum real, allpollu real, PRIMARY KEY (device_id, t));
    CREATE TABLE ${schema}.device_stats (device_id text PRIMARY KEY, ${statColumns.map((c) => `${c} double precision NOT NULL`).join(", ")},
      pm_event_since bigint, pm_event_peak real);
    CREATE TABLE ${schema}.pollution_events (device_id text NOT NULL, t bigint NOT NULL, kind text NOT NULL, value real NOT NULL, PRIMARY KEY (device_id, t, kind));`);
  try {
    const meter = new ProcessMeter({ "bench (application)": [self()] });
    const t0 = performance.now();
    const { latencyMs } = await drive(w, (r) => ingest(pool, r));
    const seconds = (performance.now() - t0) / 1000;
    const backends = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [APP]);
    for (const b of backends.rows) meter.add("postgres backends", b.pid, false, true);
    const { cpuS, peakRssMb } = meter.read();
    const check = await admin.query<{ n: string; events: string }>(`SELECT (SELECT count(*) FROM ${schema}.readings) AS n, (SELECT count(*) FROM ${schema}.pollution_events) AS events`);
    if (Number(check.rows[0]!.n) !== totalReadings(w)) throw new Error(`stored ${check.rows[0]!.n} readings of ${totalReadings(w)}`);
    emitRound(w, {
      system: "postgres",
      readings: totalReadings(w),
      seconds,
      latencyMs,
      latencyIs: "sent → transaction committed (readings, statistics row, events)",
      cpuS,
      peakRssMb,
      crashLoses: "nothing acknowledged (synchronous_commit on: a commit returns after its WAL flush)",
      versions: { postgres: (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v, pg: packageVersion("pg"), psql: binaryVersion("psql", ["--version"]) },
      extra: { pool: pool.options.max, pmEvents: Number(check.rows[0]!.events), backends: backends.rowCount, note: "postgres backends' memory: private resident (RssAnon) at the end, shared buffers not counted" },
    });
  } finally {
    await pool.end();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

type StatsRow = Record<string, number | string | null>;

/** One request, one transaction. */
async function ingest(pool: pg.Pool, r: PeerRequest): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const found = await c.query<StatsRow>({ name: "lock-stats", text: "SELECT * FROM device_stats WHERE device_id = $1 FOR UPDATE", values: [r.deviceId] });
    const s = found.rows.length === 0 ? emptyStats() : fromRow(found.rows[0]!);
    const events = applyReadings(s, r.readings);
    const col = (ch: Channel | "t") => r.readings.map((x) => x[ch] ?? null);
    await c.query({
      name: "insert-readings",
      text: `INSERT INTO readings (device_id, t, pm, co2, voc, tmp, hum, allpollu)
             SELECT $1, * FROM unnest($2::bigint[], $3::real[], $4::real[], $5::real[], $6::real[], $7::real[], $8::real[])`,
      values: [r.deviceId, col("t"), col("pm"), col("co2"), col("voc"), col("tmp"), col("hum"), col("allpollu")],
    });
    if (events.length > 0) {
      await c.query({
        name: "insert-events",
        text: "INSERT INTO pollution_events (device_id, t, kind, value) SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::real[])",
        values: [r.deviceId, events.map((e) => e.t), events.map((e) => e.kind), events.map((e) => e.value)],
      });
    }
    const values = [r.deviceId, ...CHANNELS.flatMap((ch) => STAT_FIELDS.map((f) => s.channels[ch][f])), s.pmEvent?.since ?? null, s.pmEvent?.peak ?? null];
    await c.query({
      name: "upsert-stats",
      text: `INSERT INTO device_stats (device_id, ${statColumns.join(", ")}, pm_event_since, pm_event_peak)
             VALUES (${values.map((_, i) => `$${i + 1}`).join(", ")})
             ON CONFLICT (device_id) DO UPDATE SET ${[...statColumns, "pm_event_since", "pm_event_peak"].map((k) => `${k} = EXCLUDED.${k}`).join(", ")}`,
      values,
    });
    await c.query("COMMIT");
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

function fromRow(row: StatsRow): DeviceStats {
  const s = emptyStats();
  for (const ch of CHANNELS) for (const f of STAT_FIELDS) s.channels[ch][f] = Number(row[`${ch}_${f}`]);
  s.pmEvent = row.pm_event_since === null ? null : { since: Number(row.pm_event_since), peak: Number(row.pm_event_peak) };
  return s;
}
