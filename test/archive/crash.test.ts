// `kill -9` of the archive process in the middle of a batch while a fleet posts, three times, each time
// started again: every accepted reading archived exactly once (late flags and repeats as the twins
// counted), every output once. The archive is a real `airtwin archive` child process; on Postgres it is
// killed the moment one of its transactions is open (pg_stat_activity, by application name), on PGlite
// (inside the process, invisible from outside) while its row counter is climbing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../gateways/archive/db/mod.ts";
import { AirtwinProcess } from "../e2e/processes.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { getFreePort } from "../harness/free-port.ts";
import { waitFor } from "../harness/wait-for.ts";
import { BACKENDS, natsServerForFile, testDatabase } from "./fixture.ts";
import { archiveDifferences, consumersCaughtUp, expectations, outputDifferences, outputsSettled, planFleet, postFleet, registerFleet, snapshotDifferences, twinsApplied } from "./fleet-load.ts";

const nats = natsServerForFile();
const KILLS = 3;

describe.each(BACKENDS)("archive process killed mid-batch (%s)", (backend) => {
  it(`kill -9 under load ${KILLS} times, restarted each time: nothing lost or doubled`, { timeout: 600_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const dir = mkdtempSync(join(tmpdir(), "airtwin-archive-crash-"));
    const pg = backend === "postgres" ? await testDatabase("postgres") : undefined;
    const appName = `airtwin_archive_crash_${process.pid}`;
    const metricsPort = await getFreePort();
    const env = {
      NATS_URL: nats().url,
      AIRTWIN_PREFIX: f.prefix,
      AIRTWIN_SHARDS: String(f.shards),
      AIRTWIN_STREAMS: "1",
      AIRTWIN_DATA_DIR: dir,
      AIRTWIN_METRICS_PORT: String(metricsPort),
      DATABASE_URL: pg === undefined ? "" : process.env.DATABASE_URL,
      ...(pg === undefined ? {} : { AIRTWIN_ARCHIVE_SCHEMA: pg.schema, PGAPPNAME: appName }),
    };
    const metricsText = () => fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => "");
    const readingsWritten = async (): Promise<number> => Number(/^airtwin_archive_rows_total\{table="readings"\} (\d+)/m.exec(await metricsText())?.[1] ?? 0);
    // the input stream written to its end: no lag past the stored position, and no batch written since the
    // last look (the lag is measured every few seconds; a figure from before the last batches may stand)
    let inputMessagesBefore = -1;
    const inputWritten = async (): Promise<boolean> => {
      const text = await metricsText();
      const lag = /^airtwin_archive_lag_messages\{source="in\.0"\} (\d+)/m.exec(text)?.[1];
      const messages = Number(/^airtwin_archive_messages_total\{source="in\.0"\} (\d+)/m.exec(text)?.[1] ?? -1);
      const settled = lag === "0" && messages === inputMessagesBefore;
      inputMessagesBefore = messages;
      return settled;
    };
    const startArchive = async (): Promise<AirtwinProcess> => {
      const p = new AirtwinProcess("archive", ["archive"], env);
      await waitFor(() => p.stdout().includes('"archive ready"') || !p.running, { timeoutMs: 60_000, message: "archive started" });
      if (!p.running) throw new Error(`archive exited: ${p.output()}`);
      return p;
    };
    let archive = await startArchive();
    try {
      await f.ready();
      // PGlite's archive writes several times slower on this loaded machine: half the fleet keeps the test near 2 min
      const plan = planFleet({ devices: backend === "postgres" ? 200 : 100, readingsPerDevice: 100, t0: Date.UTC(2026, 9, 12, 10), seed: 7, idPrefix: "kx" });
      const { owner, creds } = await registerFleet(f, plan);
      const load = postFleet(f, plan, creds, { concurrency: 8 });
      let loadDone = false;
      void load.finally(() => (loadDone = true)).catch(() => undefined);

      let inTransaction = 0;
      for (let kill = 1; kill <= KILLS; kill++) {
        // this process's readings counter restarts with it: wait until it wrote some, under load
        await waitFor(async () => (await readingsWritten()) >= 500 || loadDone, { timeoutMs: 120_000, intervalMs: 100, message: "the archive writing" });
        if (pg !== undefined) {
          // the moment one of its transactions is open (a batch being written)
          const open = await waitFor(
            async () =>
              (
                await pg.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and xact_start is not null and state in ('active', 'idle in transaction')", [
                  appName,
                ])
              ).rows[0]!.n > 0,
            { timeoutMs: 60_000, intervalMs: 5, message: "an archive transaction open" },
          ).then(
            () => true,
            () => false,
          );
          if (open) inTransaction++;
        }
        archive.child.kill("SIGKILL");
        await archive.exited;
        expect(archive.child.signalCode).toBe("SIGKILL");
        archive = await startArchive();
      }
      await load;
      if (pg !== undefined) expect(inTransaction).toBeGreaterThan(0);

      const expected = new Map(plan.devices.map((d) => [d.deviceId, expectations(d)]));
      await twinsApplied(f, owner, expected);
      // the killed batches come back when their ack wait (30 s) runs out (the input stream's: the restarted
      // archive reads on from the position its last committed batch stored)
      await outputsSettled(f, () => consumersCaughtUp(f, inputWritten));
      // every twin's latest snapshot and every shard's checkpoint, byte for byte (a restore writes them
      // back): the killed batches of the snapshot buckets, merged with other shards', came back too
      if (pg !== undefined) {
        let last: Awaited<ReturnType<typeof snapshotDifferences>> | undefined;
        await waitFor(async () => (last = await snapshotDifferences(f, pg)).problems.length === 0 && last.records >= plan.devices.length, {
          timeoutMs: 120_000,
          intervalMs: 1000,
          message: "snapshots archived as the buckets hold them",
        }).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`);
        });
      }

      await archive.stop();
      const db = pg ?? (await openDatabase({ dataDir: dir, name: "archive" }));
      try {
        expect(await archiveDifferences(db, plan, expected)).toEqual([]);
        const outputs = await outputDifferences(f, db);
        expect(outputs.problems).toEqual([]);
        expect(outputs.perKind.aggregate).toBe(plan.devices.length * 20);
        console.log(`${backend}: ${KILLS} kills${pg === undefined ? "" : ` (${inTransaction} with a transaction open)`}, ${plan.posted} readings posted, outputs ${JSON.stringify(outputs.perKind)}`);
      } finally {
        if (pg === undefined) await db.close();
      }
    } finally {
      await archive.stop();
      await pg?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
