// Export and retention on both backends, written through the archive's own writer: export streams
// every reading of the range once, in order, as CSV and JSON lines (and the CLI does the same on
// Postgres); retention drops whole raw-reading months past the setting and never touches rollups.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { exportReadings, EXPORT_CSV_HEADER } from "../../gateways/archive/export.ts";
import { migrate } from "../../gateways/archive/db/mod.ts";
import { Partitions } from "../../gateways/archive/partitions.ts";
import { refusesData } from "../../gateways/archive/dead-letter.ts";
import { ARCHIVE_MIGRATIONS } from "../../gateways/archive/schema.ts";
import { writeInputs, writeOutputs, type InputMessage } from "../../gateways/archive/writer.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

const DAY = 86_400_000;
const BIN = fileURLToPath(new URL("../../bin/airtwin.js", import.meta.url));

function message(seq: number, deviceId: string, readings: object[]): InputMessage {
  return { stream: 0, gen: 1, seq, batch: { acceptedAt: 1_000 + seq, items: [{ type: "twin", entityId: deviceId, kind: "readings", payload: readings }] } };
}

describe.each(BACKENDS)("export and retention (%s)", (backend) => {
  it("exports a range in order as CSV and JSON lines, page after page", async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const partitions = new Partitions();
      const t0 = Date.UTC(2026, 0, 30);
      const messages = ["b", "a"].flatMap((d, k) => [message(2 * k + 1, d, Array.from({ length: 30 }, (_, i) => ({ t: t0 + i * DAY / 10, pm: i, co2: d === "a" ? 400 : undefined })))]);
      await db.transaction((tx) => writeInputs(tx, partitions, messages)); // spans two month partitions
      const chunks: string[] = [];
      const n = await exportReadings(db, { fromMs: t0 + DAY / 10, toMs: t0 + 2 * DAY, format: "csv", pageSize: 7, write: async (c) => void chunks.push(c) });
      expect(n).toBe(2 * 19);
      const lines = chunks.join("").split("\n").filter(Boolean);
      expect(`${lines[0]}\n`).toBe(EXPORT_CSV_HEADER);
      expect(lines[1]).toBe(`a,${t0 + DAY / 10},1,400,,,,,${1_000 + 3},false`);
      expect(lines.slice(1).map((l) => l.split(",")[0])).toEqual([...Array(19).fill("a"), ...Array(19).fill("b")]);
      const jsonl: string[] = [];
      await exportReadings(db, { fromMs: t0, toMs: t0 + DAY, deviceId: "b", format: "jsonl", write: async (c) => void jsonl.push(c) });
      const parsed = jsonl.join("").trim().split("\n").map((l) => JSON.parse(l) as { deviceId: string; t: number; pm: number });
      expect(parsed.map((r) => r.t)).toEqual(Array.from({ length: 10 }, (_, i) => t0 + i * DAY / 10));
      expect(parsed[3]).toEqual({ deviceId: "b", t: t0 + 3 * DAY / 10, pm: 3, acceptedAt: 1_001 });

      if (db.schema !== undefined) {
        // the CLI: a real process against the same schema
        const { stdout } = await promisify(execFile)(process.execPath, [BIN, "archive", "export", "--from", new Date(t0).toISOString(), "--to", String(t0 + DAY), "--device", "a", "--format", "csv"], {
          env: { ...process.env, AIRTWIN_ARCHIVE_SCHEMA: db.schema },
        });
        expect(stdout.split("\n").filter(Boolean)).toHaveLength(11);
        await expect(promisify(execFile)(process.execPath, [BIN, "archive", "export", "--from", "yesterday", "--to", "1"], { env: { ...process.env, AIRTWIN_ARCHIVE_SCHEMA: db.schema } })).rejects.toMatchObject({
          stderr: expect.stringContaining("AIRTWIN_ERR_ARCHIVE_RESTORE_INVALID"),
        });
      }
    } finally {
      await db.drop();
    }
  }, 60_000);

  it("a month partition created in a transaction that rolled back is created again, not its readings refused", async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const partitions = new Partitions();
      const t = Date.UTC(2031, 4, 10);
      // the database lost mid-batch: the partition made for May 2031 goes with the transaction
      await expect(
        db.transaction(async (tx) => {
          await writeInputs(tx, partitions, [message(1, "p", [{ t, pm: 1 }])]);
          throw new Error("connection lost");
        }),
      ).rejects.toThrow("connection lost");
      // the next batch finds no partition: a retryable failure (not the data's fault) that forgets the month
      const failed = await db.transaction((tx) => writeInputs(tx, partitions, [message(1, "p", [{ t, pm: 1 }])])).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(Error);
      expect(refusesData(failed)).toBe(false);
      // written again, as the consumer does
      await db.transaction((tx) => writeInputs(tx, partitions, [message(1, "p", [{ t, pm: 1 }])]));
      const { rows } = await db.query<{ n: string }>("select count(*) as n from readings where device_id = 'p'");
      expect(Number(rows[0]!.n)).toBe(1);
    } finally {
      await db.drop();
    }
  }, 60_000);

  it("drops raw reading months past retention, keeping rollups and outputs", async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const partitions = new Partitions();
      const months = [Date.UTC(2026, 0, 15), Date.UTC(2026, 1, 15), Date.UTC(2026, 2, 15)];
      await db.transaction((tx) => writeInputs(tx, partitions, months.map((t, i) => message(i + 1, "d", [{ t, pm: 1 }]))));
      await db.transaction((tx) =>
        writeOutputs(tx, "p", [{ subject: "p.out.aggregate.d", storedAt: 1, payload: { id: "d:agg", deviceId: "d", resolution: "day", start: months[0], channels: { pm: { start: months[0], count: 1, mean: 1, min: 1, max: 1 } } } }]),
      );
      // now = 10 March; keep 30 days: January ended more than 30 days ago, February did not
      const dropped = await partitions.dropOlderThan(db, Date.UTC(2026, 2, 10), 30 * DAY);
      expect(dropped).toEqual(["readings_p202601"]);
      const left = (await db.query<{ t: number }>("select t from readings order by t")).rows.map((r) => r.t);
      expect(left).toEqual(months.slice(1));
      expect((await db.query("select 1 from rollups_daily")).rows).toHaveLength(1);
      expect((await db.query("select 1 from outputs")).rows).toHaveLength(1);
      // a late reading for the dropped month gets its partition back
      await db.transaction((tx) => writeInputs(tx, new Partitions(), [message(9, "d", [{ t: months[0]! + 1, pm: 2 }])]));
      expect((await db.query("select count(*)::int as n from readings")).rows).toEqual([{ n: 3 }]);
    } finally {
      await db.drop();
    }
  });
});
