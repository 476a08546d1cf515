// The archive's readings do not depend on the order its batches are written in: a batch redelivered
// after an archive process died holding it, or written by another archive process sharing the stream,
// lands after newer ones — the rows, their late flags (the twin's count) and which copy is the row and
// which the repeat come out as if everything had been written in log order. Both backends.
import { describe, expect, it } from "vitest";
import type { Database } from "../../gateways/archive/db/mod.ts";
import { migrate } from "../../gateways/archive/db/mod.ts";
import { Partitions } from "../../gateways/archive/partitions.ts";
import { ARCHIVE_MIGRATIONS } from "../../gateways/archive/schema.ts";
import { writeInputs, type InputMessage } from "../../gateways/archive/writer.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

const T0 = Date.UTC(2026, 9, 20);
const at = (m: number) => T0 + m * 60_000;

/** How the log's readings are laid out: the gateway's arrays (docs/design.md §5.1) or the older maps. */
type Form = "arrays" | "maps";

const messageAs = (form: Form) => (seq: number, device: string, minutes: number[], pm = seq): InputMessage => ({
  stream: 0,
  gen: 1,
  seq,
  batch: {
    acceptedAt: T0 + seq,
    items: [{ type: "twin", entityId: device, kind: "readings", payload: minutes.map((m) => (form === "arrays" ? [at(m), pm, null, null, null, null, null] : { t: at(m), pm })) }],
  },
});
const message = messageAs("arrays");

// the log: resends of the newest and of older readings, late readings, and a reset (which keeps the
// twin's newest t: what follows it can still be late)
const log = (form: Form, message = messageAs(form)): InputMessage[] => [
  message(1, "a", [0, 10]),
  message(2, "b", [0, 5]),
  message(3, "a", [5, 20]), // 5 late
  message(4, "a", [20]), // resend of the newest
  message(5, "b", [3, 8]), // 3 late
  message(6, "a", [10, 30]), // resend of an older one, then a new one
  { stream: 0, gen: 1, seq: 7, batch: { acceptedAt: T0 + 7, items: [{ type: "twin", entityId: "a", kind: "command", payload: { type: "reset" } }] } },
  message(8, "a", [25, 40]), // 25 late even after the reset
  message(9, "b", [5, 9]), // resend of an older one, then a new one
  message(10, "b", [7]), // late
];

async function archived(db: Database) {
  const rows = (await db.query<{ device_id: string; t: number; pm: number; late: boolean; seq: number }>("select device_id, t, pm, late, seq from readings order by device_id, t")).rows;
  const repeats = (await db.query<{ device_id: string; t: number; seq: number }>("select device_id, t, seq from reading_repeats order by device_id, t, seq")).rows;
  return { rows, repeats };
}

/** Writes the batches in the order given into emptied tables; what the archive then holds. */
async function writeInOrder(db: Database, batches: InputMessage[][]) {
  await db.exec("truncate readings, reading_repeats, device_heads, commands");
  const partitions = new Partitions();
  for (const batch of batches) await db.transaction((tx) => writeInputs(tx, partitions, batch));
  return archived(db);
}

describe.each(BACKENDS)("archive writes out of log order (%s)", (backend) => {
  it.each(["arrays", "maps"] as const)("gives the same rows, late flags and repeats whatever order the batches are written in (readings as %s)", { timeout: 120_000 }, async (readingForm) => {
    const db = await testDatabase(backend);
    const LOG = log(readingForm);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const inOrder = await writeInOrder(db, [LOG.slice(0, 4), LOG.slice(4)]);
      const late = (d: string) => inOrder.rows.filter((r) => r.device_id === d && r.late).map((r) => (r.t - T0) / 60_000);
      expect(late("a")).toEqual([5, 25]);
      expect(late("b")).toEqual([3, 7]);
      expect(inOrder.repeats.map((r) => [r.device_id, (r.t - T0) / 60_000, r.seq])).toEqual([
        ["a", 10, 6],
        ["a", 20, 4],
        ["b", 5, 9],
      ]);
      const orders: InputMessage[][][] = [
        [LOG.slice(5), LOG.slice(0, 5)], // a crash: the first batch comes back after the next
        [LOG.slice(7), LOG.slice(3, 7), LOG.slice(0, 3)],
        [[LOG[9]!, LOG[2]!], [LOG[5]!, LOG[0]!, LOG[7]!], [LOG[8]!, LOG[1]!, LOG[3]!], [LOG[6]!, LOG[4]!]], // two processes' batches interleaved
        [LOG.slice(0, 6), LOG.slice(0, 6), LOG.slice(4)], // delivered again
      ];
      for (const batches of orders) expect(await writeInOrder(db, batches)).toEqual(inOrder);
    } finally {
      await db.drop();
    }
  });

  it("keeps device ids and values COPY's text format must escape, and keys taken before an erase, on each of its paths", { timeout: 60_000 }, async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const ids = ["back\\slash", "tab\tbed", "new\nline\r", "\\N", "ünï-😀"];
      const erase = (seq: number, device: string): InputMessage => ({ stream: 0, gen: 1, seq, batch: { acceptedAt: T0, items: [{ type: "twin", entityId: device, kind: "$erase", payload: null }] } });
      const { rows, repeats } = await writeInOrder(db, [
        // new devices, then newer readings: COPY straight in; a resend among them: the staging table
        ids.map((id, i) => message(i + 1, id, [0, 1], 0.1 * (i + 1))),
        [...ids.map((id, i) => message(10 + i, id, [2, 3], 0.1 * (i + 1))), message(20, ids[0]!, [1], 7)],
        // a reading after an erase in the same batch: staged; in the next batch the head is 5, but the
        // key 10 was archived before the erase: the straight COPY fails, the whole batch is staged
        [message(30, "e", [0, 10]), erase(31, "e"), message(32, "e", [5])],
        [message(40, "e", [10, 20])],
      ]);
      const byId = (x: [string, number], y: [string, number]) => (x[0] < y[0] ? -1 : 1);
      for (const t of [at(0), at(2)]) {
        expect(rows.filter((r) => r.t === t && r.device_id !== "e").map((r): [string, number] => [r.device_id, r.pm]).sort(byId)).toEqual(ids.map((id, i): [string, number] => [id, 0.1 * (i + 1)]).sort(byId));
      }
      expect(rows.filter((r) => r.device_id !== "e")).toHaveLength(ids.length * 4);
      expect(rows.filter((r) => r.device_id === "e").map((r) => [(r.t - T0) / 60_000, r.seq])).toEqual([
        [0, 30],
        [5, 32],
        [10, 30],
        [20, 40],
      ]);
      expect(repeats.map((r) => [r.device_id, (r.t - T0) / 60_000, r.seq])).toEqual([
        ["e", 10, 40],
        [ids[0], 1, 20],
      ].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1)));
    } finally {
      await db.drop();
    }
  });

  it("reads each reading form in place: every channel into its column, what is no reading of its payload's form skipped", { timeout: 60_000 }, async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const item = (device: string, payload: unknown[]): InputMessage["batch"]["items"][number] => ({ type: "twin", entityId: device, kind: "readings", payload });
      await writeInOrder(db, [
        [
          {
            stream: 0,
            gen: 1,
            seq: 1,
            batch: {
              acceptedAt: T0,
              items: [
                // the form is the first reading's: a map among arrays, an array with no valid time, are no readings
                item("arr", [[at(0), 1, 2, 3, 4, 5, 6], { t: at(1), pm: 9 }, [at(2), null, "x", Number.NaN, 4.5], ["soon", 1], [at(3.5), 0, -1, 1e300, 0.25, 100, 0.5]]),
                item("map", [{ t: at(0), pm: 1, co2: 2, voc: 3, tmp: 4, hum: 5, allpollu: 6 }, [at(1), 9], { t: at(2), co2: "x" }, null]),
              ],
            },
          },
        ],
      ]);
      const rows = (await db.query<Record<string, unknown>>("select device_id, t, pm, co2, voc, tmp, hum, allpollu, idx from readings order by device_id, t")).rows;
      const row = (device: string, m: number, idx: number, v: (number | null)[]) => ({ device_id: device, t: at(m), pm: v[0], co2: v[1], voc: v[2], tmp: v[3], hum: v[4], allpollu: v[5], idx });
      expect(rows).toEqual([
        row("arr", 0, 0, [1, 2, 3, 4, 5, 6]),
        row("arr", 2, 1, [null, null, null, 4.5, null, null]),
        row("arr", 3.5, 2, [0, -1, 1e300, 0.25, 100, 0.5]),
        row("map", 0, 65_536, [1, 2, 3, 4, 5, 6]),
        row("map", 2, 65_537, [null, null, null, null, null, null]),
      ]);
    } finally {
      await db.drop();
    }
  });
});
