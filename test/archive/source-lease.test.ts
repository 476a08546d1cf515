// An input stream is read by one archive process at a time, from the position its last batch wrote
// (gateways/archive/source-lease.ts): a batch read under a replaced turn writes nothing, the reader takes
// the stream again and nothing is lost or doubled; with two archive processes on one Postgres one reads
// and the other waits, and takes over when the first goes.
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../gateways/archive/db/mod.ts";
import { SourceFencedError, SourceLease } from "../../gateways/archive/source-lease.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, BACKENDS, caughtUp, natsServerForFile, post, testDatabase } from "./fixture.ts";
import type { RunningArchive } from "../../gateways/archive/archive.ts";

const nats = natsServerForFile();
const T0 = Date.UTC(2026, 10, 3, 8);
const MIN = 60_000;

const readingsOf = async (db: { query<R>(sql: string): Promise<{ rows: R[] }> }) => {
  const rows = (await db.query<{ device_id: string; t: number }>("select device_id, t from readings order by device_id, t")).rows;
  const repeats = (await db.query<{ n: number }>("select count(*)::int as n from reading_repeats")).rows[0]!.n;
  return { readings: rows.map((r) => `${r.device_id}@${(r.t - T0) / MIN}`), repeats };
};

const inputSource = async (archive: RunningArchive) => (await archive.status()).sources.find((s) => s.source === "in.0")!;

describe.each(BACKENDS)("an input stream's turn (%s)", (backend) => {
  it("a batch read under a replaced turn is refused and writes nothing; the reader takes the stream again: nothing lost or doubled", { timeout: 120_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    const logged: string[] = [];
    try {
      const archive = await archiveOn(f, db, { log: (_level, msg) => void logged.push(msg) });
      try {
        await f.ready();
        const owner = await f.user("ann");
        const dev = await f.device("dev-1", owner.userId);
        for (const m of [0, 5, 10]) await post(f, dev, [{ t: T0 + m * MIN, pm: 5 }]);
        await caughtUp(archive);
        expect(await readingsOf(db)).toEqual({ readings: ["dev-1@0", "dev-1@5", "dev-1@10"], repeats: 0 });
        expect(await inputSource(archive)).toMatchObject({ lag: 0, missing: false });
        expect((await inputSource(archive)).standby).toBeUndefined();

        // another process takes the stream over (as it would once this one's lock session had ended unnoticed)
        const stream = f.parts.names.inputStream(0);
        expect((await db.query("update sources set epoch = epoch + 1 where stream = $1", [stream])).rowCount).toBe(1);
        for (const m of [15, 20, 25]) await post(f, dev, [{ t: T0 + m * MIN, pm: 5 }]);
        await waitFor(() => logged.includes("archive source taken over by another process"), { timeoutMs: 30_000, message: "the batch refused" });
        // this process's lock is free again (it gave it up): it takes the stream again and writes the batch
        await waitFor(async () => (await readingsOf(db)).readings.length === 6, { timeoutMs: 30_000, message: "the batch written after the turn was taken again" });
        await caughtUp(archive);
        expect(await readingsOf(db)).toEqual({ readings: ["dev-1@0", "dev-1@5", "dev-1@10", "dev-1@15", "dev-1@20", "dev-1@25"], repeats: 0 });
        const position = (await db.query<{ last_seq: number; epoch: number }>("select last_seq, epoch from sources where stream = $1", [stream])).rows[0]!;
        expect(position.epoch).toBeGreaterThanOrEqual(3); // claimed, replaced, claimed again
      } finally {
        await archive.close();
      }
    } finally {
      await db.drop();
    }
  });

  it("an input stream recreated while it is read (a wiped JetStream): the new stream is read from its first message", { timeout: 120_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    try {
      const archive = await archiveOn(f, db);
      try {
        await f.ready();
        const owner = await f.user("ann");
        const dev = await f.device("dev-1", owner.userId);
        for (const m of [0, 5, 10, 15]) await post(f, dev, [{ t: T0 + m * MIN, pm: 5 }]);
        await caughtUp(archive);
        const stream = f.parts.names.inputStream(0);
        const before = (await db.query<{ gen: number; last_seq: number }>("select gen, last_seq from sources where stream = $1", [stream])).rows[0]!;
        expect(before.last_seq).toBeGreaterThanOrEqual(4);
        // the stream deleted and made again with its config: its sequences start over at 1
        const jsm = await jetstreamManager(f.nc);
        const { config } = await jsm.streams.info(stream);
        await jsm.streams.delete(stream);
        await new Promise((r) => setTimeout(r, 50)); // a distinct creation time: the stream's generation
        await jsm.streams.add(config);
        for (const m of [20, 25]) await post(f, dev, [{ t: T0 + m * MIN, pm: 5 }]);
        await waitFor(async () => (await readingsOf(db)).readings.length === 6, { timeoutMs: 30_000, message: "the recreated stream's readings archived" });
        const after = (await db.query<{ gen: number; last_seq: number }>("select gen, last_seq from sources where stream = $1", [stream])).rows[0]!;
        expect(after.gen).toBeGreaterThan(before.gen);
        expect(after.last_seq).toBe(2);
        const logPositions = (await db.query<{ gen: number; seq: number }>("select gen, seq from readings where t >= $1 order by t", [T0 + 20 * MIN])).rows;
        expect(logPositions).toEqual([
          { gen: after.gen, seq: 1 },
          { gen: after.gen, seq: 2 },
        ]);
      } finally {
        await archive.close();
      }
    } finally {
      await db.drop();
    }
  });

  it("a replaced turn's advance rolls its whole transaction back", { timeout: 60_000 }, async () => {
    const db = await testDatabase(backend);
    try {
      await db.exec("create table if not exists sources (stream text primary key, gen bigint not null, last_seq bigint not null, updated_at bigint not null, epoch bigint not null default 0)");
      await db.exec("create table written (n int)");
      const first = new SourceLease(db, "IN");
      expect(await first.claim()).toEqual({ gen: 0, lastSeq: 0 });
      await db.transaction(async (tx) => {
        await tx.query("insert into written values (1)");
        await first.advance(tx, 7, 10);
      });
      expect(await first.position()).toEqual({ gen: 7, lastSeq: 10 });
      await first.release();
      // the next reader takes over (after the first released its lock) and starts after what was written
      const second = new SourceLease(db, "IN");
      expect(await second.claim()).toEqual({ gen: 7, lastSeq: 10 });
      await expect(
        db.transaction(async (tx) => {
          await tx.query("insert into written values (2)");
          await first.advance(tx, 7, 20);
        }),
      ).rejects.toBeInstanceOf(SourceFencedError);
      expect((await db.query<{ n: number }>("select n from written")).rows).toEqual([{ n: 1 }]);
      expect(await second.position()).toEqual({ gen: 7, lastSeq: 10 });
      // a position moves forward only, within a generation; a new generation starts it afresh
      await second.advanceAlone(7, 5);
      expect(await second.position()).toEqual({ gen: 7, lastSeq: 10 });
      await second.advanceAlone(8, 3);
      expect(await second.position()).toEqual({ gen: 8, lastSeq: 3 });
      await second.release();
    } finally {
      await db.drop();
    }
  });
});

describe.runIf(BACKENDS.includes("postgres"))("two archive processes on one Postgres", () => {
  it("one reads each input stream, the other waits its turn; when the reader goes, the other takes over: every reading once", { timeout: 180_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase("postgres");
    const db2 = await openDatabase({ databaseUrl: process.env.DATABASE_URL, schema: db.schema! });
    try {
      const a = await archiveOn(f, db);
      const b = await archiveOn(f, db2);
      try {
        await f.ready();
        const owner = await f.user("ann");
        const devices = await Promise.all(["dev-1", "dev-2"].map((id) => f.device(id, owner.userId)));
        for (const m of [0, 5, 10, 15]) for (const d of devices) await post(f, d, [{ t: T0 + m * MIN, pm: 5 }]);
        await caughtUp(a);
        await caughtUp(b);
        // a lock each stream, on Postgres: one of them reads it, the other says it waits
        const aWaits = (await inputSource(a)).standby === true;
        const bWaits = (await inputSource(b)).standby === true;
        expect([aWaits, bWaits].sort()).toEqual([false, true]);
        expect((await readingsOf(db)).readings).toHaveLength(8);

        // the reader goes (its lock's session ends); the other takes the stream within its next try
        const [reader, waiting] = aWaits ? [b, a] : [a, b];
        await reader.close();
        for (const m of [20, 25, 30]) for (const d of devices) await post(f, d, [{ t: T0 + m * MIN, pm: 5 }]);
        await waitFor(async () => (await readingsOf(db)).readings.length === 14, { timeoutMs: 30_000, message: "the waiting archive took the stream over" });
        await caughtUp(waiting);
        expect((await inputSource(waiting)).standby).toBeUndefined();
        const all = await readingsOf(db);
        expect(all.repeats).toBe(0);
        expect(all.readings).toEqual(["dev-1", "dev-2"].flatMap((id) => [0, 5, 10, 15, 20, 25, 30].map((m) => `${id}@${m}`)));
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await db2.close();
      await db.drop();
    }
  });
});
