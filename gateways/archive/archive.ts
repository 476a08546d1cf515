// A running archive (`airtwin archive`): migrations applied, one durable consumer per source stream —
// every input stream, the output stream, every shard's snapshot bucket, the registry bucket — each
// writing batches in transactions and acknowledging after commit; the history query service on
// `<prefix>.archive.query.*`; retention of raw reading partitions; metrics. Several archive processes
// share the consumers (and the query service's queue group).
import { createServer, type Server } from "node:http";
import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decode, decodeBatch, decodeRecord, ensureClusterForClients, names as namesOf, type Names } from "../../runtime/mod.ts";
import { registryBucket } from "../registry/registry.ts";
import { DEFAULT_FLUSH_DELAY_MS, ownTransaction, SourceConsumer, type ArchiveLog, type BatchCommit, type BatchWriter } from "./consumer.ts";
import { SourceLease } from "./source-lease.ts";
import { archiveDeadLetters } from "./dead-letter.ts";
import { migrate, type Database } from "./db/mod.ts";
import { GroupCommit } from "./group-commit.ts";
import { ArchiveMetrics } from "./metrics.ts";
import { Partitions } from "./partitions.ts";
import { ArchiveQueryService } from "./query-service.ts";
import { ARCHIVE_MIGRATIONS } from "./schema.ts";
import { snapshotBatch, writeSnapshotBatches, type SnapshotBatch } from "./snapshot-write.ts";
import { writeInputs, writeOutputs, writeRegistry, type InputMessage, type KvMessage, type WriteCounts } from "./writer.ts";

/** Options of {@link startArchive}. */
export interface ArchiveOptions {
  nc: NatsConnection;
  db: Database;
  prefix: string;
  shards: number;
  streams: number;
  replicas: number;
  /** Raw readings older than this are dropped (whole month partitions); 0 = keep forever. Default 0. */
  retentionMs?: number;
  /** Most messages per batch. Default 256. */
  batchMessages?: number;
  /** How long a pull waits for messages (ms). Default 10 000 (consumer.ts). */
  pullWaitMs?: number;
  /** Longest a message waits for more to share its transaction (ms); 5 times that for snapshots. Default 200 (`DEFAULT_FLUSH_DELAY_MS`). */
  flushDelayMs?: number;
  /** Longest pause between retries of a failed write (ms). Default 5000. */
  maxRetryMs?: number;
  /** How often lag is measured and retention applied (ms). Default 5000. */
  housekeepingMs?: number;
  /** Port of a /metrics listener on 127.0.0.1; 0 = any free port; unset = none. */
  metricsPort?: number;
  /** Interface of the metrics listener. Default "127.0.0.1". */
  metricsHost?: string;
  defaultMetrics?: boolean;
  log?: ArchiveLog;
}

/** What GET /v1/ops/archive shows (and `<prefix>.archive.query.status` answers). */
export interface ArchiveStatus {
  /** Database kind and location (password hidden). */
  database: { kind: string; location: string };
  /** `standby`: another archive process reads this source now (input streams are read by one at a time). */
  sources: { source: string; lag: number; missing: boolean; standby?: boolean; lastError?: { at: number; message: string } }[];
  /** Sum of the sources' lag. */
  lag: number;
  /** Rows written by this process since it started, by table. */
  rows: Record<string, number>;
  /** Failed batch writes of this process (each retried). */
  errors: number;
  retentionMs: number;
}

export interface RunningArchive extends AsyncDisposable {
  readonly metrics: ArchiveMetrics;
  readonly metricsUrl: string | undefined;
  readonly names: Names;
  status(): Promise<ArchiveStatus>;
  /** Measures lag now (tests poll for "caught up"). */
  measureLag(): Promise<number>;
  close(): Promise<void>;
}

/** How many times the flush delay the snapshot buckets' consumers wait to fill a batch. */
const SNAPSHOT_FLUSH_FACTOR = 5;

/** Months of reading partitions created ahead of the current one. */
const MONTHS_AHEAD = 2;

export async function startArchive(o: ArchiveOptions): Promise<RunningArchive> {
  const log: ArchiveLog = o.log ?? (() => undefined);
  const names = namesOf(o.prefix);
  const metrics = new ArchiveMetrics({ defaultMetrics: o.defaultMetrics ?? true });
  await ensureClusterForClients(o.nc, names, { shards: o.shards, streams: o.streams, replicas: o.replicas });
  await migrate(o.db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
  const partitions = new Partitions();
  await partitions.ensureAhead(o.db, Date.now(), MONTHS_AHEAD);
  const js = jetstream(o.nc);
  const jsm = await jetstreamManager(o.nc);
  const deadLetter = archiveDeadLetters({ nc: o.nc, prefix: o.prefix, metrics, log });
  const deps = { js, jsm, metrics, log, deadLetter };
  const common = {
    ...(o.batchMessages === undefined ? {} : { batchMessages: o.batchMessages }),
    ...(o.pullWaitMs === undefined ? {} : { pullWaitMs: o.pullWaitMs }),
    ...(o.flushDelayMs === undefined ? {} : { flushDelayMs: o.flushDelayMs }),
    ...(o.maxRetryMs === undefined ? {} : { maxRetryMs: o.maxRetryMs }),
  };
  // a node's snapshots are spread over a bucket per shard (a few a second each in a fleet): a longer wait
  // gathers several per transaction, and costs restore nothing — the inputs after the archived checkpoint
  // are archived within the normal delay and replayed (docs/archive.md, Restore)
  const snapshotFlushDelayMs = SNAPSHOT_FLUSH_FACTOR * (o.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS);
  // and the shards' batches share transactions and statements (one commit and one upsert for many buckets' handfuls)
  const snapshotGroup = new GroupCommit<SnapshotBatch, WriteCounts>(o.db, o.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS, writeSnapshotBatches);
  const undecodable = (label: string, m: JsMsg, err: unknown) => deadLetter(label, m, "undecodable", (err as Error).message);

  // an input stream is read by one archive process at a time, its position moved with each batch (source-lease.ts)
  const inputLeases = Array.from({ length: o.streams }, (_, k) => new SourceLease(o.db, names.inputStream(k)));
  const inputWriter = (k: number): BatchWriter => async (tx, messages, gen) => {
    const decoded: InputMessage[] = [];
    for (const m of messages) {
      try {
        decoded.push({ stream: k, gen, seq: m.seq, batch: decodeBatch(m.data) });
      } catch (err) {
        undecodable(`in.${k}`, m, err); // nothing a twin applied either: the runner skips it too
      }
    }
    const counts = await writeInputs(tx, partitions, decoded);
    await inputLeases[k]!.advance(tx, gen, messages.at(-1)!.seq);
    return counts;
  };
  const outputWriter: BatchWriter = (tx, messages) =>
    writeOutputs(
      tx,
      o.prefix,
      messages.flatMap((m) => {
        try {
          return [{ subject: m.subject, payload: decode(m.data), storedAt: Math.floor(m.info.timestampNanos / 1e6) }];
        } catch (err) {
          undecodable("out", m, err);
          return [];
        }
      }),
    );
  const kvMessages = (messages: readonly JsMsg[], gen: number, bucket: string): KvMessage[] => {
    const cut = `$KV.${bucket}.`.length;
    return messages.map((m) => {
      const op = m.headers?.get("KV-Operation");
      return { key: m.subject.slice(cut), gen, seq: m.seq, value: op === "DEL" || op === "PURGE" || m.data.length === 0 ? null : m.data };
    });
  };
  const snapshotCommit = (shard: number): BatchCommit => (messages, gen) => {
    // the input stream's generation gives the snapshot's sequences their meaning (restore needs it)
    const inGen = inputConsumers[Math.floor((shard * o.streams) / o.shards)]!.generation;
    if (inGen === 0) return Promise.reject(new Error(`the generation of the input stream of shard ${shard} is not known yet`));
    // a record or checkpoint that does not decode (not written by an owner) is given up, not retried forever
    const seqs = new Map<Uint8Array, number>();
    const kv = kvMessages(messages, gen, names.snapshotBucket(shard)).filter((m, i) => {
      if (m.value === null || m.key === "_fence") return true;
      try {
        const seq = m.key === "_checkpoint" ? (decode(m.value) as { seq?: unknown } | null)?.seq : decodeRecord(m.value).appliedSeq;
        if (!Number.isSafeInteger(seq)) throw new TypeError(`malformed ${m.key === "_checkpoint" ? "checkpoint" : "snapshot record"}`);
        seqs.set(m.value, seq as number);
        return true;
      } catch (err) {
        undecodable(`snap.${shard}`, messages[i]!, err);
        return false;
      }
    });
    const seqOf = (bytes: Uint8Array) => seqs.get(bytes)!;
    return snapshotGroup.submit(snapshotBatch(shard, inGen, Date.now(), kv, seqOf, seqOf));
  };
  const registryWriter: BatchWriter = (tx, messages, gen) => writeRegistry(tx, kvMessages(messages, gen, registryBucket(o.prefix)), Date.now());
  const own = (write: BatchWriter) => ownTransaction(o.db, write);

  const inputConsumers = Array.from({ length: o.streams }, (_, k) => new SourceConsumer({ stream: names.inputStream(k), label: `in.${k}`, commit: own(inputWriter(k)), lease: inputLeases[k]!, ...common }, deps));
  const consumers: SourceConsumer[] = [new SourceConsumer({ stream: names.outputStream, label: "out", commit: own(outputWriter), ...common }, deps), ...inputConsumers];
  consumers.push(new SourceConsumer({ stream: `KV_${registryBucket(o.prefix)}`, label: "registry", commit: own(registryWriter), ...common }, deps));
  for (let s = 0; s < o.shards; s++) {
    consumers.push(new SourceConsumer({ stream: `KV_${names.snapshotBucket(s)}`, label: `snap.${s}`, commit: snapshotCommit(s), ...common, flushDelayMs: snapshotFlushDelayMs, missingRetryMs: 10_000 }, deps));
  }
  for (const c of consumers) c.start();

  const retentionMs = o.retentionMs ?? 0;
  const measureLag = async () => {
    await Promise.all(consumers.map((c) => c.measureLag()));
    return consumers.reduce((sum, c) => sum + c.lag, 0);
  };
  const housekeeping = async () => {
    await Promise.all(consumers.map((c) => c.measureLagIfMoving()));
    if (retentionMs > 0) {
      const dropped = await partitions.dropOlderThan(o.db, Date.now(), retentionMs).catch(() => []);
      if (dropped.length > 0) {
        metrics.dropped.inc(dropped.length);
        log("info", "dropped raw reading partitions past retention", { partitions: dropped });
      }
    }
  };
  let housekeepingRun: Promise<void> | undefined;
  const timer = setInterval(() => {
    housekeepingRun ??= housekeeping().finally(() => (housekeepingRun = undefined));
  }, o.housekeepingMs ?? 5000);
  timer.unref();

  // lag as last measured (every housekeepingMs): history answers ask for it, so it must stay cheap
  const status = async (): Promise<ArchiveStatus> => {
    const rows: Record<string, number> = {};
    for (const v of (await metrics.rows.get()).values) rows[String(v.labels.table)] = v.value;
    const errors = (await metrics.errors.get()).values.reduce((n, v) => n + v.value, 0);
    return {
      database: { kind: o.db.kind, location: o.db.location },
      sources: consumers.map((c) => ({ source: c.label, lag: c.lag, missing: c.missing, ...(c.standby ? { standby: true } : {}), ...(c.lastError === undefined ? {} : { lastError: c.lastError }) })),
      lag: consumers.reduce((sum, c) => sum + c.lag, 0),
      rows,
      errors,
      retentionMs,
    };
  };
  const service = new ArchiveQueryService({ nc: o.nc, names, db: o.db, status, log });

  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (o.metricsPort !== undefined) {
    server = createServer((req, res) => {
      if (req.url === "/metrics") {
        metrics.registry.metrics().then((text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text), () => res.writeHead(500).end());
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server!.listen(o.metricsPort, o.metricsHost ?? "127.0.0.1", resolve));
    const addr = server.address();
    metricsUrl = `http://127.0.0.1:${typeof addr === "object" && addr !== null ? addr.port : o.metricsPort}/metrics`;
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(timer);
      await service.drain();
      await Promise.all(consumers.map((c) => c.stop()));
      await housekeepingRun;
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
    })());
  return { metrics, metricsUrl, names, status, measureLag, close, [Symbol.asyncDispose]: close };
}
