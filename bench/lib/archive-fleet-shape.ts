// The archive's CPU per reading in the fleet shape (`npm run bench -- archive --parts fleet-shape`,
// issue #16 §2): at the Foobot cadence every reading is its own input message (64 shards, ~1 reading
// per shard per batching window), so what a reading costs is the archive's per-message and per-flush
// overhead, not its bulk write path. A private nats-server with the cluster's streams (input, output,
// 64 snapshot buckets, registry: the archive runs every consumer it runs in a fleet), `airtwin archive`
// as a process of its own into DATABASE_URL (a schema per run), and this process publishing one-reading
// input messages at a fixed rate for a fixed time; then, as the baseline of the same run, the same
// readings 100 to a message (the big-batch shape, with this checkout's archive). Measured from the first publish until every reading
// is in `readings`:
//  - the archive process's CPU (/proc/<pid>/stat) per reading;
//  - Postgres's: the CPU of the backends the archive connected (found in pg_stat_activity by the
//    application name the bench gives the archive's connections, PGAPPNAME) per reading, and of every
//    local postgres process (walwriter, checkpointer…: the whole server's share, a quiet machine assumed).
// `--snapshot-every K` also puts a twin snapshot (~1 KB) into the shard's bucket with every K-th message,
// as a node does (every 3rd reading at the default 15-minute deferral; 0: none, the default).
// `--archive-roots A,B` runs `bin/airtwin.js archive` of other checkouts too (a baseline commit), each
// shape and root alternating per round; `--cpu-prof DIR` profiles the archive processes;
// `--archive-v8-flags=--max-semi-space-size=64` (comma-separated) starts every archive process with them.
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import pg from "pg";
import { encodeBatch } from "../../runtime/envelope.ts";
import { encodeRecord, entityKey } from "../../runtime/snapshot-store.ts";
import { connectNats, ensureClusterForClients, names as namesOf, shardOf } from "../../runtime/mod.ts";
import { registryBucket } from "../../gateways/registry/registry.ts";
import { startNatsServer } from "../../test/harness/nats-server.ts";
import { freePort } from "../../cli/dev.ts";
import { child, stop, until } from "../gateway.ts";
import { int, str, type Args } from "./args.ts";
import { postgresPids } from "./bench-system.ts";
import { emit, median, note, round } from "./report.ts";
import { cpuSeconds, loadAverage } from "../peers/workload.ts";

const SHARDS = 64;
/** Stands for a twin's encoded state in a snapshot (~1 KB, docs/BENCHMARKS.md: 975 B). */
const twinState = new Uint8Array(975).map((_, i) => i % 251);

/** CPU seconds of each process now (those gone are left out). */
const cpuOf = (pids: readonly number[]) => new Map(pids.map((p) => [p, cpuSeconds(p)] as const).filter(([, c]) => !Number.isNaN(c)));
/** CPU seconds spent since `before` by the processes alive in both readings. */
const spentSince = (before: ReadonlyMap<number, number>, now: ReadonlyMap<number, number>) => [...now].reduce((s, [p, c]) => s + (before.has(p) ? c - before.get(p)! : 0), 0);

interface Result {
  archiveUs: number;
  backendsUs: number;
  postgresUs: number;
  seconds: number;
  backends: number;
  /** Input messages per transaction (warm-up included). */
  messagesPerBatch: number;
  /** Transactions of every source since the archive started (warm-up included). */
  transactions: number;
}

export async function fleetShape(args: Args, root: string): Promise<void> {
  const url = process.env.DATABASE_URL!;
  const rates = str(args, "rates", "1000,3333").split(",").map(Number);
  const seconds = int(args, "seconds", 20);
  const rounds = int(args, "rounds", 3);
  const roots = [root, ...str(args, "archive-roots", "").split(",").filter((r) => r !== "")];
  const prof = args.get("cpu-prof");
  const snapshotEvery = int(args, "snapshot-every", 0);
  const v8Flags = str(args, "archive-v8-flags", "").split(",").filter((f) => f !== "");
  note("archive fleet shape", { rates, seconds, rounds, roots, v8Flags, load: loadAverage() });
  await using ns = await startNatsServer();
  const nc = await connectNats({ servers: ns.url, name: "bench archive fleet shape" });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const results = new Map<string, Result[]>();
  let run = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      // shapes and checkouts alternate, the order turning each round (a noisy neighbour hits each alike)
      const steps: { rate: number; perMessage: number; root: string }[] = [];
      // the big-batch baseline with the checkout under test only
      for (const rate of rates) for (const at of roots) for (const perMessage of at === root ? [1, 100] : [1]) steps.push({ rate, perMessage, root: at });
      for (let k = 0; k < steps.length; k++) {
        const step = steps[(k + r) % steps.length]!;
        const res = await once(nc, ns.url, admin, url, step, seconds, `${process.pid}_${run++}`, [...v8Flags, ...(typeof prof === "string" ? ["--cpu-prof", "--cpu-prof-dir", prof] : [])], snapshotEvery);
        const key = `${step.root}|${step.rate}|${step.perMessage}`;
        results.set(key, [...(results.get(key) ?? []), res]);
        note("run", { round: r + 1, ...step, archiveUsPerReading: round(res.archiveUs), backendsUsPerReading: round(res.backendsUs), postgresUsPerReading: round(res.postgresUs), s: round(res.seconds), backends: res.backends, messagesPerBatch: round(res.messagesPerBatch), transactions: res.transactions, load: loadAverage() });
      }
    }
  } finally {
    await admin.end();
    await nc.close();
  }
  for (const [key, rs] of results) {
    const [at, rate, perMessage] = key.split("|");
    const big = results.get(`${root}|${rate}|100`)!;
    emit({
      suite: "archive",
      name: `fleet shape: archive CPU µs per reading, ${rate} readings/s, ${perMessage} a message`,
      value: round(median(rs.map((x) => x.archiveUs))),
      unit: "µs CPU per reading",
      baseline: { name: "the same readings 100 a message (median)", value: round(median(big.map((x) => x.archiveUs))) },
      detail: {
        root: at,
        postgresBackendsUs: round(median(rs.map((x) => x.backendsUs))),
        postgresAllUs: round(median(rs.map((x) => x.postgresUs))),
        bigBatchPostgresBackendsUs: round(median(big.map((x) => x.backendsUs))),
        archiveAll: rs.map((x) => round(x.archiveUs)),
        backendsAll: rs.map((x) => round(x.backendsUs)),
        drainS: rs.map((x) => round(x.seconds)),
        messagesPerBatch: rs.map((x) => round(x.messagesPerBatch)),
        seconds,
        rounds,
      },
    });
  }
}

async function once(
  nc: Awaited<ReturnType<typeof connectNats>>,
  natsUrl: string,
  admin: pg.Client,
  url: string,
  step: { rate: number; perMessage: number; root: string },
  seconds: number,
  tag: string,
  /** Node flags of the archive process (V8 flags, profiling). */
  execArgv: readonly string[],
  snapshotEvery: number,
): Promise<Result> {
  const prefix = `bfs${tag}`;
  const schema = `bench_fleet_shape_${tag}`;
  const app = `bench-archive-${tag}`;
  const names = namesOf(prefix);
  // the cluster's streams as a fleet has them, so the archive runs all its consumers
  await ensureClusterForClients(nc, names, { shards: SHARDS, streams: 1, replicas: 1 });
  const kvm = new Kvm(nc);
  for (let s = 0; s < SHARDS; s++) await kvm.create(names.snapshotBucket(s), { history: 1 });
  await kvm.create(registryBucket(prefix), { history: 1 });
  const metricsPort = await freePort("127.0.0.1");
  const archive = child([...execArgv, join(step.root, "bin", "airtwin.js"), "archive"], {
    NATS_URL: natsUrl,
    DATABASE_URL: url,
    AIRTWIN_PREFIX: prefix,
    AIRTWIN_SHARDS: String(SHARDS),
    AIRTWIN_ARCHIVE_SCHEMA: schema,
    AIRTWIN_LOG_LEVEL: "warn",
    PGAPPNAME: app,
    AIRTWIN_METRICS_PORT: String(metricsPort),
  }, "archive");
  try {
    await until("archive ready", () => archive.output().includes("archive ready") || undefined, 60_000);
    // its consumers are made in the background: wait until it has taken the input stream's turn
    const turn = async () => (await admin.query<{ epoch: number }>(`select epoch from ${schema}.sources where stream = $1`, [names.inputStream(0)]).catch(() => ({ rows: [] }))).rows[0]?.epoch;
    await until("archive consuming", async () => ((await turn()) ?? 0) > 0 || undefined, 30_000);
    const js = jetstream(nc);
    const total = step.rate * seconds;
    const messages = total / step.perMessage;
    const t0 = Date.UTC(2026, 11, 1);
    const archived = async () => (await admin.query<{ n: number }>(`select count(*)::int as n from ${schema}.readings`)).rows[0]!.n;
    const snapshots = async () => (await admin.query<{ n: number }>(`select count(*)::int as n from ${schema}.snapshots`)).rows[0]!.n;
    const snapshotsPut = snapshotEvery === 0 ? 0 : Math.ceil(messages / snapshotEvery);
    // warm-up: the archive's connections opened and its first writes done before measuring
    const warm = 200;
    for (let i = 0; i < warm; i++) {
      const device = `warm-${i}`;
      await js.publish(names.input(shardOf(device, SHARDS)), encodeBatch({ acceptedAt: Date.now(), items: [{ type: "device", entityId: device, kind: "readings", payload: [[t0 - 1000 * (i + 1), 1, null, null, null, null, null]] }] }));
    }
    await until("warm-up archived", async () => ((await archived()) >= warm ? true : undefined), 60_000);
    const backends = async () => (await admin.query<{ pid: number }>("select pid from pg_stat_activity where application_name = $1", [app])).rows.map((x) => x.pid);
    const pgAll = postgresPids();
    const before = { archive: cpuSeconds(archive.proc.pid!), backends: new Map<number, number>(), all: cpuOf(pgAll) };
    for (const pid of await backends()) before.backends.set(pid, cpuSeconds(pid));
    const started = performance.now();
    // open loop: every 10 ms the messages due by then, their acks awaited together
    const acks: Promise<unknown>[] = [];
    let sent = 0;
    let reading = 0;
    while (sent < messages) {
      const due = Math.min(messages, Math.floor(((performance.now() - started) / 1000) * (step.rate / step.perMessage)) + 1);
      for (; sent < due; sent++) {
        const device = `dev-${sent % 300_000}`;
        const payload = Array.from({ length: step.perMessage }, () => {
          const t = t0 + reading++ * 1000;
          // as the gateway logs a reading: [t, pm, co2, voc, tmp, hum, allpollu] (docs/design.md §5.1)
          return [t, (t % 300) / 10, 500 + (t % 400), null, 21.5, 40, null];
        });
        const shard = shardOf(device, SHARDS);
        acks.push(js.publish(names.input(shard), encodeBatch({ acceptedAt: Date.now(), items: [{ type: "device", entityId: device, kind: "readings", payload }] })));
        // the node's snapshot of the twin, every k-th message (a 15-minute deferral at the Foobot cadence: every 3rd)
        if (snapshotEvery > 0 && sent % snapshotEvery === 0) acks.push(js.publish(`$KV.${names.snapshotBucket(shard)}.${entityKey("device", device)}`, encodeRecord({ appliedSeq: sent + 1, wakeAt: undefined, state: twinState })));
      }
      if (acks.length > 1000) await Promise.all(acks.splice(0));
      await new Promise((res) => setTimeout(res, 10));
    }
    await Promise.all(acks);
    await until(
      "every reading archived",
      async () => ((await archived()) >= total + warm && (await snapshots()) >= snapshotsPut ? true : undefined),
      120_000,
    );
    const elapsed = (performance.now() - started) / 1000;
    let backendCpu = 0;
    const pids = await backends();
    for (const pid of pids) backendCpu += cpuSeconds(pid) - (before.backends.get(pid) ?? 0);
    const archiveCpu = cpuSeconds(archive.proc.pid!) - before.archive;
    // transactions of the input consumer (its batches), from the archive's metrics
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const inputBatches = Number(/^airtwin_archive_batch_seconds_count\{source="in\.0"\} (\d+)/m.exec(metrics)?.[1] ?? NaN);
    const transactions = [...metrics.matchAll(/^airtwin_archive_batch_seconds_count\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    const allCpu = spentSince(before.all, cpuOf(pgAll));
    return { archiveUs: (archiveCpu / total) * 1e6, backendsUs: (backendCpu / total) * 1e6, postgresUs: (allCpu / total) * 1e6, seconds: elapsed, backends: pids.length, messagesPerBatch: (messages + warm) / inputBatches, transactions };
  } finally {
    await stop(archive.proc);
    await admin.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    const jsm = await jetstream(nc).jetstreamManager();
    for (const s of await jsm.streams.names().next()) if (s.includes(prefix) || s.startsWith(prefix.toUpperCase())) await jsm.streams.delete(s).catch(() => undefined);
  }
}
