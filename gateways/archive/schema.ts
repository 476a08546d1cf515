// The archive's tables (component "archive" of the migrations). Every time is epoch milliseconds in a
// bigint, so Postgres and PGlite agree without time zones. Natural keys make every write idempotent:
// readings by (device_id, t), repeats and commands by their position in the input log (stream,
// generation, sequence, index), outputs by id, snapshots and registry entries by key (newest wins).
import type { Migration } from "./db/mod.ts";

const CHANNEL_COLUMNS = "pm double precision, co2 double precision, voc double precision, tmp double precision, hum double precision, allpollu double precision";

const ROLLUP = (table: string) => `create table ${table} (
  device_id text not null,
  channel text not null,
  start bigint not null,
  count int not null,
  mean double precision not null,
  min double precision not null,
  max double precision not null,
  top_max_mean double precision,
  top_min_mean double precision,
  primary key (device_id, start, channel)
);`;

export const ARCHIVE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "readings, repeats, commands, outputs, rollups, snapshots, registry",
    sql: `
-- every accepted reading once; partitions by calendar month (UTC) are created by the archive itself
create table readings (
  device_id text not null,
  t bigint not null,
  ${CHANNEL_COLUMNS},
  accepted_at bigint not null,
  -- the twin counted it late (older than a reading before it): archived, not applied to statistics
  late boolean not null default false,
  stream int not null,
  gen bigint not null,
  seq bigint not null,
  idx int8 not null,
  primary key (device_id, t)
) partition by range (t);

-- a reading resent with a (device_id, t) already archived: the twin counted it as a duplicate
create table reading_repeats (
  device_id text not null,
  t bigint not null,
  ${CHANNEL_COLUMNS},
  accepted_at bigint not null,
  stream int not null,
  gen bigint not null,
  seq bigint not null,
  idx int8 not null,
  primary key (stream, gen, seq, idx)
);
create index reading_repeats_device_t on reading_repeats (device_id, t);

-- the newest reading time per device, to flag late readings as the twin does
create table device_heads (
  device_id text primary key,
  last_t bigint not null
);

create table commands (
  stream int not null,
  gen bigint not null,
  seq bigint not null,
  idx int8 not null,
  entity_type text not null,
  device_id text not null,
  kind text not null,
  payload jsonb,
  accepted_at bigint not null,
  primary key (stream, gen, seq, idx)
);
create index commands_device_at on commands (device_id, accepted_at);

-- every output once: alerts, calibration, aggregates, reports, occupancy
create table outputs (
  id text primary key,
  kind text not null,
  device_id text not null,
  at bigint not null,
  subject text not null,
  payload jsonb not null,
  stored_at bigint not null
);
create index outputs_device_kind_at on outputs (device_id, kind, at, id);

${ROLLUP("rollups_hourly")}
${ROLLUP("rollups_daily")}

-- the latest snapshot record of each entity (the runtime's encoding), newest write wins
create table snapshots (
  key text primary key,
  shard int not null,
  gen bigint not null,
  kv_seq bigint not null,
  applied_seq bigint not null,
  record bytea,
  stored_at bigint not null
);
create index snapshots_shard on snapshots (shard, key);

create table checkpoints (
  shard int primary key,
  gen bigint not null,
  kv_seq bigint not null,
  seq bigint not null,
  stored_at bigint not null
);

-- the registry's entries as stored in NATS KV (hashed credentials only), newest revision wins
create table registry (
  key text primary key,
  gen bigint not null,
  revision bigint not null,
  value bytea,
  stored_at bigint not null
);

-- how far each archive consumer got (for restore's "which input generation" and for ops)
create table sources (
  stream text primary key,
  gen bigint not null,
  last_seq bigint not null,
  updated_at bigint not null
);
`,
  },
  {
    version: 2,
    name: "snapshots and checkpoints remember the input stream generation they refer to",
    sql: `
-- a snapshot's applied sequence means something only in the input stream it was taken from: restore
-- keeps it when that stream still exists, and starts the twin over in a recreated one
alter table snapshots add column in_gen bigint not null default 0;
alter table checkpoints add column in_gen bigint not null default 0;

-- restore runs, resumable: the shards a run has done
create table restore_runs (
  id text primary key,
  args text not null,
  started_at bigint not null,
  finished_at bigint
);
create table restore_progress (
  run_id text not null references restore_runs (id),
  shard int not null,
  records int not null,
  done_at bigint not null,
  primary key (run_id, shard)
);
`,
  },
  {
    version: 3,
    name: "device heads remember the log position they were written up to",
    sql: `
-- a batch holding a device's messages from before this position was written out of log order (a
-- redelivery after a crash, another archive process): the writer then sets that device's flags right
alter table device_heads add column gen bigint not null default 0;
alter table device_heads add column seq bigint not null default 0;
`,
  },
  {
    version: 4,
    name: "restore replays the archived inputs after each snapshot: commands keep their idempotency key, readings are found by log position",
    sql: `
-- a keyed command applies once per key: a replay must know the key to do the same (null: sent without one, or archived before)
alter table commands add column idem_key text;
-- restore reads a stream's inputs after a shard's checkpoint: a BRIN index costs next to nothing to keep
-- (readings arrive in log order) and narrows that read to the newest blocks
create index readings_log_position on readings using brin (gen, seq);
`,
  },
  {
    version: 5,
    name: "an input stream is read by one archive process at a time, from the position its last batch wrote",
    sql: `
-- the reader's turn: taken under an advisory lock, raised by each reader that takes the stream over; a
-- batch moves last_seq only while the turn it was read under is still the row's (source-lease.ts)
alter table sources add column epoch bigint not null default 0;
`,
  },
  {
    version: 6,
    name: "device heads and snapshots leave room on their pages for their next versions",
    sql: `
-- every reading updates its device's head and every snapshot its entity's row, and no index covers what
-- changes: with room on the page Postgres writes the new version there (a HOT update: no index entry, the
-- old version pruned when the page is next read) instead of on another page with an entry in every index
-- and a dead row for autovacuum. A head is ~60 bytes: half the page; a snapshot row ~0.7-2 KB: 40 %.
-- Pages written from now on keep the room (a table rewritten, e.g. by VACUUM FULL, gets it everywhere).
alter table device_heads set (fillfactor = 50);
alter table snapshots set (fillfactor = 60);
`,
  },
];
