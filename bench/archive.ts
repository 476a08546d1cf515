// Benchmark of the archive (`npm run bench -- archive [--quick] [--readings N] [--rounds N] [--twins N]`),
// needs DATABASE_URL (Postgres):
//  1. write throughput: readings/s through the archive's own write path (decoded input messages of 100
//     readings in the array form the gateway logs: COPY under a savepoint into the partitioned table,
//     late flags, device heads), its transactions sized by the backlog as the consumer sizes them and at
//     a fixed 256 messages, and with a resend in every transaction (the staging-table path), next to a
//     plain COPY of the same rows into a table of the same shape — rounds in rotating order, medians;
//  2. restore: 100 000 twins (real twin snapshots with a day of readings each) written back from the
//     archive into a fresh cluster's 64 snapshot buckets by `restoreFromArchive`; then, with the input
//     stream lost, the same with `--replay-readings K` archived readings per twin after its snapshot
//     (default 3: a 15-minute snapshot deferral at a Foobot's 5-minute cadence) applied on top —
//     rounds alternating between no replay (every shard's checkpoint past them) and the replay.
//  3. `--parts fleet-shape` (not in the default `--parts write,restore`): the archive process's and its
//     Postgres backends' CPU per reading when every reading is its own input message, next to the same
//     readings 100 a message (bench/lib/archive-fleet-shape.ts; `--rates`, `--seconds`, `--archive-roots`).
// Each figure is one JSON line on stdout (bench/lib/report.ts).
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { applyInput, createTwin, encodeTwin } from "../actors/device-twin/domain/mod.ts";
import { openDatabase, migrate, type Database } from "../gateways/archive/db/mod.ts";
import { batchLimit, BEHIND_GROWTH } from "../gateways/archive/consumer.ts";
import { Partitions } from "../gateways/archive/partitions.ts";
import { restoreFromArchive } from "../gateways/archive/restore.ts";
import { ARCHIVE_MIGRATIONS } from "../gateways/archive/schema.ts";
import { writeInputs, type InputMessage } from "../gateways/archive/writer.ts";
import { connectNats, encodeRecord, shardOf } from "../runtime/mod.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { fleetShape } from "./lib/archive-fleet-shape.ts";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { emit, median, note, round } from "./lib/report.ts";

const H = 3_600_000;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("the archive benchmark needs DATABASE_URL (Postgres), e.g. postgres://postgres@127.0.0.1:5432/test");
  const readings = int(args, "readings", quick ? 20_000 : 200_000);
  const twins = int(args, "twins", quick ? 5_000 : 100_000);
  const schema = `bench_archive_${process.pid}_${randomBytes(3).toString("hex")}`;
  const db = await openDatabase({ databaseUrl: url, schema, statementTimeoutMs: 0 });
  try {
    const parts = new Set(str(args, "parts", "write,restore").split(","));
    await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
    if (parts.has("write")) await writeThroughput(db, url, schema, readings, int(args, "rounds", quick ? 3 : 5));
    if (parts.has("restore")) await restoreTime(db, twins, int(args, "replay-readings", 3), int(args, "restore-rounds", quick ? 1 : 2));
    if (parts.has("fleet-shape")) await fleetShape(args, ROOT);
  } finally {
    await db.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    await db.close();
  }
}

async function writeThroughput(db: Database, url: string, schema: string, total: number, rounds: number): Promise<void> {
  const devices = 1000;
  const perMessage = 100;
  const t0 = Date.UTC(2026, 9, 1);
  const messages: InputMessage[] = [];
  for (let m = 0; m < total / perMessage; m++) {
    const device = `dev-${m % devices}`;
    const round = Math.floor(m / devices);
    // as the gateway logs readings: [t, pm, co2, voc, tmp, hum, allpollu] (docs/design.md §5.1)
    const readings = Array.from({ length: perMessage }, (_, i) => [t0 + (round * perMessage + i) * 60_000, 12.5, 640, 180, 21.3, 44, null]);
    messages.push({ stream: 0, gen: 1, seq: m + 1, batch: { acceptedAt: t0, items: [{ type: "twin", entityId: device, kind: "readings", payload: readings }] } });
  }
  const partitions = new Partitions();
  await partitions.ensureAhead(db, t0, 2);
  const lines: string[] = [];
  for (const m of messages) {
    for (const [k, [t, pm, co2, voc, tmp, hum]] of (m.batch.items[0]!.payload as number[][]).entries()) {
      lines.push(`${m.batch.items[0]!.entityId}\t${t}\t${pm}\t${co2}\t${voc}\t${tmp}\t${hum}\t\\N\t${m.batch.acceptedAt}\tf\t0\t1\t${m.seq}\t${k}\n`);
    }
  }
  // the same readings with a resend opening every transaction of 256 messages: a reading of the
  // previous transaction sent again, so each COPY fails at once on its key and the batch goes through
  // the staging table (COPY into a temp table, one INSERT … SELECT … ON CONFLICT DO NOTHING, repeats)
  const resent: InputMessage[] = [];
  for (let i = 0; i < messages.length; i += 255) {
    const again = messages[Math.max(0, i - 1)]!.batch.items[0]!;
    resent.push({ stream: 0, gen: 1, seq: 0, batch: { acceptedAt: t0, items: [{ ...again, payload: (again.payload as unknown[]).slice(0, 1) }] } });
    resent.push(...messages.slice(i, i + 255).map((m) => ({ ...m })));
  }
  resent.forEach((m, i) => (m.seq = i + 1));
  // the archive starting behind by all of it: its consumer sizes each transaction by the backlog
  // (batchLimit), as `airtwin archive` does; "fixed" is the configured 256 messages throughout
  const archive = async (sized: boolean, log = messages): Promise<number> => {
    await db.exec("truncate readings, reading_repeats, device_heads");
    const started = performance.now();
    for (let i = 0; i < log.length; ) {
      const size = sized ? batchLimit(256, log.length - i) : 256;
      const batch = log.slice(i, i + size);
      await db.transaction((tx) => writeInputs(tx, partitions, batch));
      i += size;
    }
    const seconds = (performance.now() - started) / 1000;
    const archived = (await db.query<{ n: number }>("select count(*)::int as n from readings")).rows[0]!.n;
    if (archived !== total) throw new Error(`archived ${archived} of ${total} readings`);
    return total / seconds;
  };
  // baseline: one COPY of the same rows into a table of the same shape (partitioned, same key)
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  await client.connect();
  const copy = async (): Promise<number> => {
    await db.exec(`drop table if exists copy_target; create table copy_target (like readings including all) partition by range (t);
      create table copy_target_p1 partition of copy_target for values from (${Date.UTC(2026, 0, 1)}) to (${Date.UTC(2028, 0, 1)});`);
    const started = performance.now();
    await pipeline(Readable.from(chunks(lines, 5000)), client.query(copyFrom("copy copy_target (device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, late, stream, gen, seq, idx) from stdin (format text)")));
    return lines.length / ((performance.now() - started) / 1000);
  };
  const rates = { sized: [] as number[], fixed: [] as number[], staged: [] as number[], copy: [] as number[] };
  note("archive write path against COPY", { readings: total, messages: messages.length, rounds });
  for (let r = 0; r < rounds; r++) {
    // the order rotates per round, so a noisy neighbour does not always hit the same variant
    const steps: [keyof typeof rates, () => Promise<number>][] = [
      ["sized", () => archive(true)],
      ["fixed", () => archive(false)],
      ["staged", () => archive(false, resent)],
      ["copy", copy],
    ];
    for (let k = 0; k < steps.length; k++) {
      const [name, run] = steps[(k + r) % steps.length]!;
      rates[name].push(await run());
    }
    note(`round ${r + 1}`, { sized: round(rates.sized.at(-1)!), fixed: round(rates.fixed.at(-1)!), staged: round(rates.staged.at(-1)!), copy: round(rates.copy.at(-1)!) });
  }
  await client.end();
  const copyRate = median(rates.copy);
  for (const [name, label, batch] of [
    ["sized", "write readings/s (transactions sized by the backlog)", `256 growing to ${256 * BEHIND_GROWTH} while behind`],
    ["fixed", "write readings/s (256 messages per transaction)", "256"],
    ["staged", "write readings/s (256 messages per transaction, each opening with a resend: the staging path)", "256"],
  ] as const) {
    const value = median(rates[name]);
    emit({
      suite: "archive",
      name: label,
      value: round(value),
      unit: "readings/s",
      baseline: { name: "COPY of the same rows (median)", value: round(copyRate) },
      detail: { ratio: round(value / copyRate), rounds, readings: total, batchMessages: batch, readingsPerMessage: perMessage, all: rates[name].map((x) => round(x)), copyAll: rates.copy.map((x) => round(x)) },
    });
  }
}

function* chunks(lines: string[], size: number): Generator<string> {
  for (let i = 0; i < lines.length; i += size) yield lines.slice(i, i + size).join("");
}

async function restoreTime(db: Database, twins: number, replayReadings: number, rounds: number): Promise<void> {
  const shards = 64;
  // real twin states: a day of hourly readings each (a few distinct shapes, re-keyed per twin)
  const t0 = Date.UTC(2026, 10, 1);
  const states: Uint8Array[] = [];
  for (let v = 0; v < 16; v++) {
    const twin = createTwin(`shape-${v}`);
    const readings = Array.from({ length: 24 }, (_, h) => ({ t: t0 + h * H, pm: 5 + v + h, co2: 450 + 20 * h, voc: 120 + v, tmp: 21, hum: 40 }));
    applyInput(twin, { type: "readings", readings, receivedAt: t0 + 24 * H });
    states.push(encodeTwin(twin));
  }
  note("loading archived snapshots", { twins });
  for (let start = 0; start < twins; start += 5000) {
    const keys: string[] = [];
    const shardCol: number[] = [];
    const hex: string[] = [];
    for (let i = start; i < Math.min(twins, start + 5000); i++) {
      const id = `twin-${i}`;
      keys.push(`twin.${id}`);
      shardCol.push(shardOf(id, shards));
      hex.push(Buffer.from(encodeRecord({ appliedSeq: i + 1, wakeAt: undefined, state: states[i % states.length]! })).toString("hex"));
    }
    await db.query(
      `insert into snapshots (key, shard, gen, kv_seq, applied_seq, record, stored_at, in_gen)
       select u.key, u.shard, 1, 1, 1, decode(u.hex, 'hex'), 0, 1 from unnest($1::text[], $2::int[], $3::text[]) as u(key, shard, hex)`,
      [keys, shardCol, hex],
    );
  }
  // the archived readings after each snapshot (stream 0, generation 1, after every snapshot's sequence),
  // and only those (the write bench's readings are of the same stream and generation)
  await db.query("truncate readings, reading_repeats, commands");
  const after = Array.from({ length: replayReadings }, (_, k) => t0 + (24 + k) * H);
  await new Partitions().ensure(db, after.length > 0 ? after : [t0]);
  for (let start = 0; start < twins && replayReadings > 0; start += 5000) {
    const ids: string[] = [];
    const ts: number[] = [];
    const seqs: number[] = [];
    for (let i = start; i < Math.min(twins, start + 5000); i++) {
      for (let k = 0; k < replayReadings; k++) {
        ids.push(`twin-${i}`);
        ts.push(after[k]!);
        seqs.push(twins + 1 + k * twins + i);
      }
    }
    await db.query(
      `insert into readings (device_id, t, pm, co2, voc, tmp, hum, allpollu, accepted_at, late, stream, gen, seq, idx)
       select u.id, u.t, 9, 700, 150, 21.5, 41, null, u.t, false, 0, 1, u.seq, 0 from unnest($1::text[], $2::int8[], $3::int8[]) as u(id, t, seq)`,
      [ids, ts, seqs],
    );
  }
  const replayed = twins * replayReadings;
  for (let r = 0; r < rounds; r++) {
    for (const replay of [false, true]) {
      // no replay: every shard's checkpoint past the archived readings (they are in the snapshots)
      await db.query("delete from checkpoints");
      if (!replay) {
        await db.query(
          "insert into checkpoints (shard, gen, kv_seq, seq, stored_at, in_gen) select s, 1, 1, $1, 0, 1 from generate_series(0, $2) as s",
          [twins * (replayReadings + 1) + 1, shards - 1],
        );
      }
      await db.query("delete from restore_progress");
      await db.query("delete from restore_runs");
      await using ns = await startNatsServer();
      const nc = await connectNats({ servers: ns.url, name: "bench archive restore" });
      try {
        note("restoring", { twins, shards, replay: replay ? replayed : 0 });
        const started = performance.now();
        const result = await restoreFromArchive({ nc, db, prefix: `bench${process.pid}`, shards, streams: 1, replicas: 1, target: { all: true } });
        const seconds = (performance.now() - started) / 1000;
        if (result.records !== twins) throw new Error(`restored ${result.records} of ${twins}`);
        if (result.replayedInputs !== (replay ? replayed : 0)) throw new Error(`replayed ${result.replayedInputs} inputs, expected ${replay ? replayed : 0}`);
        emit({
          suite: "archive",
          name: replay ? "restore twins + replay" : "restore twins",
          value: round(seconds),
          unit: "s",
          detail: { round: r, twins, shards, replayedReadings: result.replayedInputs, twinsPerSecond: round(twins / seconds), recordBytes: Math.round(states.reduce((n, s) => n + s.length, 0) / states.length) },
        });
      } finally {
        await nc.close();
      }
    }
  }
}
