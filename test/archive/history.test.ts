// History routes across the archive and the twin: 40 days of hourly readings come back hour by hour and
// day by day exactly once across the boundary, in cursor pages; raw readings as JSON pages and CSV;
// alerts merged by id; and `coverage` saying what no source could answer once the archive is gone.
import { describe, expect, it } from "vitest";
import { GatewayFixture } from "../gateway/fixture.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, BACKENDS, caughtUp, natsServerForFile, post, testDatabase } from "./fixture.ts";

const nats = natsServerForFile();

const H = 3_600_000;
const DAYS = 40;
const T0 = Date.UTC(2026, 8, 1); // 40 days of history, all in the past

interface Bucket {
  start: number;
  count: number;
  mean: number;
}
interface AggregatesPage {
  channels: { pm?: Bucket[] };
  next?: string;
  coverage: { archive: string; twinFrom?: number; uncovered?: { from: number; to: number }[] };
}

describe.each(BACKENDS)("history across archive and twin (%s)", (backend) => {
  it("returns every hour and every day of 40 days exactly once across the boundary, in pages", { timeout: 300_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    const archive = await archiveOn(f, db);
    try {
      await f.ready();
      const owner = await f.user("ann");
      const dev = await f.device("d40", owner.userId);
      // two readings an hour (minute 0 and 30), pm = day index so each day's mean is known
      const readings = [];
      for (let h = 0; h < DAYS * 24; h++) for (const m of [0, 30]) readings.push({ t: T0 + h * H + m * 60_000, pm: Math.floor(h / 24) + (m === 30 ? 1 : 0) });
      for (let i = 0; i < readings.length; i += 1000) await post(f, dev, readings.slice(i, i + 1000));
      // the last hour is open in the twin; every earlier one is closed and archived as a rollup
      await waitFor(async () => (await db.query<{ n: number }>("select count(*)::int as n from rollups_hourly where device_id = 'd40'")).rows[0]!.n === DAYS * 24 - 1, {
        timeoutMs: 180_000,
        message: "hourly rollups archived",
      });
      await caughtUp(archive);

      const pages = async (resolution: "hour" | "day", limit: number) => {
        const all: Bucket[] = [];
        let cursor: string | undefined;
        let last: AggregatesPage | undefined;
        let n = 0;
        do {
          const r = await f.app.inject({ method: "GET", url: `/v1/devices/d40/aggregates?resolution=${resolution}&from=${T0}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, headers: owner.headers });
          expect(r.statusCode, r.body).toBe(200);
          last = r.json<AggregatesPage>();
          all.push(...(last.channels.pm ?? []));
          cursor = last.next;
          n++;
        } while (cursor !== undefined && n < 100);
        return { all, last: last!, pages: n };
      };
      // the twin goes on emitting after the catch-up (its offline alert, snapshots), so a walk may meet
      // the archive a message behind on a loaded machine: walk again until one sees it caught up
      const hours = await waitFor(async () => {
        const walk = await pages("hour", 100);
        return walk.last.coverage.archive === "ok" ? walk : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500, message: "a walk of the hours with the archive caught up" });
      expect(hours.all.map((b) => b.start)).toEqual(Array.from({ length: DAYS * 24 }, (_, h) => T0 + h * H));
      expect(hours.all.every((b) => b.count === 2)).toBe(true);
      expect(hours.pages).toBeGreaterThan(9);
      expect(hours.last.coverage).toMatchObject({ archive: "ok", twinFrom: T0 + (DAYS * 24 - 24) * H });
      // the largest documented page: the gateway asks the archive for one more row to know a page follows
      for (const route of ["alerts", "events", "readings"]) {
        const r = await f.app.inject({ method: "GET", url: `/v1/devices/d40/${route}?from=${T0}&limit=10000`, headers: owner.headers });
        expect(r.statusCode, `${route}: ${r.body}`).toBe(200);
      }
      const days = await pages("day", 7);
      expect(days.all.map((b) => b.start)).toEqual(Array.from({ length: DAYS }, (_, d) => T0 + d * 24 * H));
      expect(days.all.map((b) => b.mean)).toEqual(Array.from({ length: DAYS }, (_, d) => d + 0.5));

      // raw readings: JSON pages, then CSV
      let cursor: string | undefined;
      const ts: number[] = [];
      do {
        const r = await f.app.inject({ method: "GET", url: `/v1/devices/d40/readings?limit=500${cursor ? `&cursor=${cursor}` : ""}`, headers: owner.headers });
        expect(r.statusCode, r.body).toBe(200);
        const page = r.json<{ readings: { t: number }[]; next?: string }>();
        ts.push(...page.readings.map((x) => x.t));
        cursor = page.next;
      } while (cursor !== undefined);
      expect(ts).toEqual(readings.map((x) => x.t));
      const csv = await f.app.inject({ method: "GET", url: `/v1/devices/d40/readings?from=${T0}&to=${T0 + H}`, headers: { ...owner.headers, accept: "text/csv" } });
      expect(csv.headers["content-type"]).toMatch(/^text\/csv/);
      expect(csv.body.split("\n")[0]).toBe("t,pm,co2,voc,tmp,hum,allpollu,accepted_at,late,repeats");
      const rows = csv.body.trim().split("\n");
      expect(rows).toHaveLength(3);
      expect(rows[1]).toMatch(new RegExp(`^${T0},0,,,,,,\\d+,false,0$`));

      // a cursor of another device or route is refused
      const bad = await f.app.inject({ method: "GET", url: `/v1/devices/d40/aggregates?cursor=${hours.last.next ?? "x"}`, headers: owner.headers });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: "AIRTWIN_ERR_ARCHIVE_CURSOR_INVALID" });
      const badTime = await f.app.inject({ method: "GET", url: `/v1/devices/d40/aggregates?from=yesterday`, headers: owner.headers });
      expect(badTime.json()).toMatchObject({ statusCode: 400, code: "AIRTWIN_ERR_HTTP_QUERY_INVALID" });

      const ops = await f.app.inject({ method: "GET", url: "/v1/ops/archive", headers: { authorization: "Bearer test-admin-token-0123456789" } });
      expect(ops.statusCode).toBe(200);
      expect(ops.json()).toMatchObject({ database: { kind: backend }, rows: { readings: readings.length } });

      // the archive gone: the twin still answers its part, and the answer says what is missing
      await archive.close();
      const r = await f.app.inject({ method: "GET", url: `/v1/devices/d40/aggregates?resolution=hour&from=${T0}`, headers: owner.headers });
      const page = r.json<AggregatesPage>();
      expect(page.channels.pm).toHaveLength(24);
      expect(page.coverage).toEqual({ archive: "absent", twinFrom: T0 + (DAYS * 24 - 24) * H, uncovered: [{ from: T0, to: T0 + (DAYS * 24 - 24) * H }] });
      const raw = await f.app.inject({ method: "GET", url: "/v1/devices/d40/readings", headers: owner.headers });
      expect(raw.json()).toMatchObject({ statusCode: 503, code: "AIRTWIN_ERR_ARCHIVE_UNAVAILABLE" });
      const opsGone = await f.app.inject({ method: "GET", url: "/v1/ops/archive", headers: { authorization: "Bearer test-admin-token-0123456789" } });
      expect(opsGone.statusCode).toBe(503);
    } finally {
      await archive.close();
      await db.drop();
    }
  });
});
