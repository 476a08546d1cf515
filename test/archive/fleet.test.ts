// The archive's proof at fleet size (issue #11): 1,000 devices post 100,000 readings through the
// gateway, with resends (a request sent again at once, or much later) and late readings (held back and
// sent with the next request) mixed in. The archive must then hold each accepted reading exactly once —
// late ones flagged as the twin counted them, each resend once in reading_repeats —, each output of the
// output stream exactly once, and hourly and daily rollups equal to the twins' own buckets.
import { describe, expect, it } from "vitest";
import type { BucketView, Channel, TwinView } from "../../actors/device-twin/domain/mod.ts";
import { QUANTUM } from "../../actors/device-twin/domain/snapshot.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { archiveOn, type Backend, BACKENDS, caughtUp, natsServerForFile, testDatabase } from "./fixture.ts";
import { archiveDifferences, expectations, outputDifferences, outputsSettled, planFleet, postFleet, registerFleet, twinsApplied, type DeviceExpectation } from "./fleet-load.ts";

const nats = natsServerForFile();

const H = 3_600_000;
const DAY = 24 * H;
// 100 readings 12 min apart from 10:00: 19 closed hours, the day closed at midnight, 05:00 still open
const T0 = Date.UTC(2026, 9, 5, 10);

// PGlite runs inside this test's process, on the one event loop the gateway, the node and the test
// share: 100,000 readings took 190 s there on the loaded 2-core machine (Postgres: 90 s), too much of
// CI's budget for both. Its write path is the same SQL (COPY included, through PGlite's blob) at a quarter
// of the fleet: 250 devices of 100 readings each, every hour, day, resend and late case included.
const SIZE: Record<Backend, { devices: number; readingsPerDevice: number }> = {
  postgres: { devices: 1000, readingsPerDevice: 100 },
  pglite: { devices: 250, readingsPerDevice: 100 },
};

type Bucket = BucketView;
type View = TwinView & { lastT: number };
interface RollupRow {
  device_id: string;
  channel: Channel;
  start: number;
  count: number;
  mean: number;
  min: number;
  max: number;
  top_max_mean: number | null;
  top_min_mean: number | null;
}

describe.each(BACKENDS)("archive at fleet size (%s)", (backend) => {
  const size = SIZE[backend];
  it(`${size.devices * size.readingsPerDevice} readings of ${size.devices} devices with resends and late ones: each once, outputs once, rollups = the twins' buckets`, { timeout: 900_000 }, async () => {
    const plan = planFleet({ ...size, t0: T0, seed: 11 });
    const expected = new Map<string, DeviceExpectation>(plan.devices.map((d) => [d.deviceId, expectations(d)]));
    const late = [...expected.values()].reduce((n, e) => n + [...e.rows.values()].filter((r) => r.late).length, 0);
    const repeats = [...expected.values()].reduce((n, e) => n + e.repeats, 0);
    expect(plan.readings).toBe(size.devices * size.readingsPerDevice);
    expect(late).toBeGreaterThan(plan.readings / 100);
    expect(repeats).toBeGreaterThan(plan.readings / 20);

    await using f = await GatewayFixture.start(nats());
    const db = await testDatabase(backend);
    const archive = await archiveOn(f, db);
    try {
      await f.ready();
      const registering = performance.now();
      const { owner, creds } = await registerFleet(f, plan);
      const started = performance.now();
      const registerSeconds = (started - registering) / 1000;
      // the archive's lag while the gateway ingests as fast as this process can post (sampled each second)
      let maxLag = 0;
      let posting = true;
      const sampling = (async () => {
        while (posting) {
          maxLag = Math.max(maxLag, await archive.measureLag());
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      await postFleet(f, plan, creds).finally(() => (posting = false));
      await sampling;
      const postSeconds = (performance.now() - started) / 1000;

      const views = (await twinsApplied(f, owner, expected)) as Map<string, View>;
      const appliedSeconds = (performance.now() - started) / 1000;
      await outputsSettled(f, () => caughtUp(archive, 300_000).then(() => true));
      const archivedSeconds = (performance.now() - started) / 1000;

      expect(await archiveDifferences(db, plan, expected)).toEqual([]);
      const rows = (await db.query<{ n: number; late: number }>("select count(*)::int as n, count(*) filter (where late)::int as late from readings")).rows[0]!;
      expect(rows).toEqual({ n: plan.readings, late });
      expect((await db.query<{ n: number }>("select count(*)::int as n from reading_repeats")).rows[0]!.n).toBe(repeats);

      const outputs = await outputDifferences(f, db);
      expect(outputs.problems).toEqual([]);
      // every kind the twins produced is there: an hour closed per hour, a day and its report per device
      expect(outputs.perKind.aggregate).toBe(size.devices * 20);
      expect(outputs.perKind.report).toBeGreaterThanOrEqual(size.devices);
      expect(outputs.perKind.alert).toBeGreaterThan(size.devices / 10);

      // rollups: exactly the twins' closed buckets (the twin keeps a closed bucket's mean quantized)
      const hourly = await rollupsByDevice(db, "rollups_hourly");
      const daily = await rollupsByDevice(db, "rollups_daily");
      const problems: string[] = [];
      for (const [id, view] of views) {
        const openHour = Math.floor(view.lastT / H) * H;
        const openDay = Math.floor(view.lastT / DAY) * DAY;
        for (const [channel, stats] of Object.entries(view.channels) as [Channel, { hourly: Bucket[]; daily: Bucket[] }][]) {
          compareBuckets(problems, `${id} ${channel} hourly`, channel, stats.hourly.filter((b) => b.start < openHour), hourly.get(`${id}|${channel}`) ?? []);
          compareBuckets(problems, `${id} ${channel} daily`, channel, stats.daily.filter((b) => b.start < openDay), daily.get(`${id}|${channel}`) ?? []);
        }
      }
      expect(problems.slice(0, 10)).toEqual([]);
      const rollupRows = [...hourly.values()].reduce((n, r) => n + r.length, 0);
      expect(rollupRows).toBe(size.devices * 19 * 5);
      expect(hourly.size).toBe(views.size * 5);
      const s = (x: number) => `${x.toFixed(1)} s`;
      console.log(
        `${backend}: ${size.devices} devices registered in ${s(registerSeconds)}; ${plan.posted} readings posted (${plan.readings} distinct, ${late} late, ${repeats} resent) in ${s(postSeconds)}; ` +
          `the archive's lag at most ${maxLag} messages while posting; applied by the twins after ${s(appliedSeconds)}, archived with outputs ${JSON.stringify(outputs.perKind)} after ${s(archivedSeconds)}, checked after ${s((performance.now() - started) / 1000)}`,
      );
    } finally {
      await archive.close();
      await db.drop();
    }
  });
});

async function rollupsByDevice(db: { query<R>(sql: string): Promise<{ rows: R[] }> }, table: string): Promise<Map<string, RollupRow[]>> {
  const out = new Map<string, RollupRow[]>();
  for (const row of (await db.query<RollupRow>(`select * from ${table} order by device_id, channel, start`)).rows) {
    const key = `${row.device_id}|${row.channel}`;
    out.set(key, [...(out.get(key) ?? []), row]);
  }
  return out;
}

function compareBuckets(problems: string[], what: string, channel: Channel, twin: Bucket[], archived: RollupRow[]): void {
  if (twin.length !== archived.length) {
    problems.push(`${what}: twin ${twin.length} closed buckets, archive ${archived.length}`);
    return;
  }
  const { scale } = QUANTUM[channel];
  const same = (a: number | undefined | null, b: number | undefined | null) => (a ?? null) === (b ?? null) || Math.abs((a ?? NaN) - (b ?? NaN)) < 1e-9;
  twin.forEach((b, i) => {
    const r = archived[i]!;
    const ok =
      b.start === r.start && b.count === r.count && same(b.min, r.min) && same(b.max, r.max) && same(b.mean, Math.round(r.mean * scale) / scale) && same(b.topMaxMean, r.top_max_mean) && same(b.topMinMean, r.top_min_mean);
    if (!ok) problems.push(`${what} ${b.start}: twin ${JSON.stringify(b)}, archive ${JSON.stringify(r)}`);
  });
}
