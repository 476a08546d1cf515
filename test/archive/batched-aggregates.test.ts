// Closed aggregates travel batched per shard and commit (`<prefix>.out.aggregates.<shard>`, `{ items }`,
// docs/design.md §5.1): the archive stores each item as the single `<prefix>.out.aggregate.<deviceId>`
// message it was before (still readable from older streams), once by id, with its rollups.
import { describe, expect, it } from "vitest";
import { migrate } from "../../gateways/archive/db/mod.ts";
import { ARCHIVE_MIGRATIONS } from "../../gateways/archive/schema.ts";
import { writeOutputs } from "../../gateways/archive/writer.ts";
import { BACKENDS, testDatabase } from "./fixture.ts";

const HOUR = 3_600_000;
const aggregate = (deviceId: string, start: number, mean: number) => ({
  id: `${deviceId}:hour:${start}`,
  deviceId,
  resolution: "hour",
  start,
  channels: { pm: { start, count: 12, mean, min: mean - 1, max: mean + 1 } },
});

describe.each(BACKENDS)("batched aggregates in the archive (%s)", (backend) => {
  it("archives every item of a batch as its own aggregate, once by id, beside an old single message", async () => {
    const db = await testDatabase(backend);
    try {
      await migrate(db, { component: "archive", migrations: ARCHIVE_MIGRATIONS });
      const t0 = Date.UTC(2026, 0, 5);
      await db.transaction((tx) =>
        writeOutputs(tx, "p", [
          { subject: "p.out.aggregates.3", storedAt: 10, payload: { items: [aggregate("a", t0, 5), aggregate("b", t0, 7)] } },
          // a crash published the cut again in another batch: stored once
          { subject: "p.out.aggregates.3", storedAt: 11, payload: { items: [aggregate("b", t0, 7), aggregate("a", t0 + HOUR, 6)] } },
          // the format before batching
          { subject: "p.out.aggregate.c", storedAt: 12, payload: aggregate("c", t0, 9) },
          // garbage is skipped, not archived
          { subject: "p.out.aggregates.3", storedAt: 13, payload: { items: "no" } },
        ]),
      );
      const outputs = (await db.query<{ id: string; kind: string; device_id: string; subject: string }>("select id, kind, device_id, subject from outputs order by id")).rows;
      expect(outputs).toEqual([
        { id: `a:hour:${t0}`, kind: "aggregate", device_id: "a", subject: "p.out.aggregate.a" },
        { id: `a:hour:${t0 + HOUR}`, kind: "aggregate", device_id: "a", subject: "p.out.aggregate.a" },
        { id: `b:hour:${t0}`, kind: "aggregate", device_id: "b", subject: "p.out.aggregate.b" },
        { id: `c:hour:${t0}`, kind: "aggregate", device_id: "c", subject: "p.out.aggregate.c" },
      ]);
      const rollups = (await db.query<{ device_id: string; mean: number }>("select device_id, mean from rollups_hourly order by device_id, start")).rows;
      expect(rollups).toEqual([
        { device_id: "a", mean: 5 },
        { device_id: "a", mean: 6 },
        { device_id: "b", mean: 7 },
        { device_id: "c", mean: 9 },
      ]);
    } finally {
      await db.drop();
    }
  });
});
