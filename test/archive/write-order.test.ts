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

const message = (seq: number, device: string, minutes: number[], pm = seq): InputMessage => ({
  stream: 0,
  gen: 1,
  seq,
  batch: { acceptedAt: T0 + seq, items: [{ type: "twin", entityId: device, kind: "readings", payload: minutes.map((m) => ({ t: at(m), pm })) }] },
});

// the log: resends of the newest and of older readings, late readings, and a reset (which keeps the
// twin's newest t: what follows it can still be late)
const LOG: InputMessage[] = [
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
  it("gives the same rows, late flags and repeats whatever order the batches are written in", { timeout: 120_000 }, async () => {
    const db = await testDatabase(backend);
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

  it("keeps device ids and values that COPY's text format must escape, on both of its paths", { timeout: 60_000 }, async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const ids = ["back\\slash", "tab\tbed", "new\nline\r", "\\N", "ünï-😀"];
      const batch = ids.map((id, i) => message(i + 1, id, [0, 1], 0.1 * (i + 1)));
      // the second write conflicts with the first (a redelivery) and takes the staging path
      for (const b of [batch, [...batch, message(9, ids[0]!, [1, 2], 7)]]) {
        const { rows, repeats } = await writeInOrder(db, [b]);
        const byId = (x: [string, number], y: [string, number]) => (x[0] < y[0] ? -1 : 1);
        expect(rows.filter((r) => r.t === at(0)).map((r): [string, number] => [r.device_id, r.pm]).sort(byId)).toEqual(ids.map((id, i): [string, number] => [id, 0.1 * (i + 1)]).sort(byId));
        expect(rows.length).toBe(ids.length * 2 + b.length - batch.length);
        expect(repeats).toEqual(b.length > batch.length ? [{ device_id: ids[0], t: at(1), seq: 9 }] : []);
      }
    } finally {
      await db.drop();
    }
  });
});
