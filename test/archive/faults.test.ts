// The archive is never in the way: Postgres refusing connections for 30 s (through a proxy this test
// controls) while a fleet posts makes it fall behind while ingest carries on at its usual latency
// (median and p99 before and during, printed); once Postgres is back it catches up with every reading
// once (late flags, repeats) and every output once. Postgres only (an embedded database cannot be cut off).
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../gateways/archive/db/mod.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { pgProxy } from "../harness/pg-proxy.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, natsServerForFile, testDatabase } from "./fixture.ts";
import { archiveDifferences, expectations, outputDifferences, outputsSettled, planFleet, postFleet, registerFleet, twinsApplied } from "./fleet-load.ts";

const url = process.env.DATABASE_URL;

const nats = natsServerForFile();

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;
const OUTAGE_MS = 30_000;

describe.runIf(url)("archive faults (postgres)", () => {
  it("Postgres refusing connections for 30 s under load: ingest unaffected, the archive catches up, nothing lost or doubled", { timeout: 600_000 }, async () => {
    // the load posts 250 requests a second: over the per-device rate limit (120 a minute), which is not
    // what this test is about
    await using f = await GatewayFixture.start(nats(), { http: { rateLimitMax: 1_000_000 } });
    const direct = await testDatabase("postgres");
    const proxy = await pgProxy(new URL(url!));
    const proxied = new URL(url!);
    proxied.host = `127.0.0.1:${proxy.port}`;
    const viaProxy = await openDatabase({ databaseUrl: proxied.toString(), schema: direct.schema!, connectTimeoutMs: 1000 });
    const archive = await archiveOn(f, viaProxy);
    const count = async () => (await direct.query<{ n: number }>("select count(*)::int as n from readings")).rows[0]!.n;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      await f.ready();
      // more than the load posts in the test (20,000 requests, 80 s at 250 a second): it is stopped once
      // the outage is over. Paced, not as fast as the gateway answers: a gateway that got faster posted
      // all of it before the outage, and the outage had no load to show.
      const plan = planFleet({ devices: 100, readingsPerDevice: 2000, t0: Date.UTC(2026, 8, 1), stepMs: 60_000, seed: 5, idPrefix: "of" });
      const { owner, creds } = await registerFleet(f, plan);
      const latencies: { ms: number; at: number }[] = [];
      let stopped = false;
      const load = postFleet(f, plan, creds, { concurrency: 8, ratePerS: 250, latency: (ms, at) => latencies.push({ ms, at }), stop: () => stopped });
      load.catch(() => (stopped = true));

      await waitFor(async () => (await count()) > 2000, { timeoutMs: 60_000, message: "archiving under load" });
      // "before": the 10 s before the outage, once the load is warm (the archive writing all along)
      const beforeFrom = performance.now();
      await sleep(10_000);
      const downAt = performance.now();
      proxy.down();
      await sleep(2000); // a batch committed as the connections were cut is counted
      const frozen = await count();
      await waitFor(async () => (await archive.status()).errors > 0, { timeoutMs: 60_000, message: "failed batches counted" });
      await sleep(downAt + OUTAGE_MS - performance.now());
      // nothing reached the database while it refused, and the archive says it is behind
      expect(await count()).toBe(frozen);
      await archive.measureLag();
      expect((await archive.status()).lag).toBeGreaterThan(0);
      const upAt = performance.now();
      proxy.up();
      await sleep(5000);
      stopped = true;
      const posted = await load;

      const before = latencies.filter((l) => l.at >= beforeFrom && l.at < downAt).map((l) => l.ms);
      const during = latencies.filter((l) => l.at >= downAt && l.at < upAt).map((l) => l.ms);
      const expected = new Map(posted.devices.map((d) => [d.deviceId, expectations(d)]));
      await twinsApplied(f, owner, expected);
      await outputsSettled(f, async () => (await count()) === posted.readings && (await archive.measureLag()) === 0);
      expect(await archiveDifferences(direct, posted, expected)).toEqual([]);
      const outputs = await outputDifferences(f, direct);
      expect(outputs.problems).toEqual([]);
      // an empty window says so (the length checks below fail on it), rather than throw while printing
      const ms = (xs: number[]) => (xs.length === 0 ? "no requests" : `median ${quantile(xs, 0.5).toFixed(1)} ms, p99 ${quantile(xs, 0.99).toFixed(1)} ms (${xs.length} requests)`);
      console.log(`ingest latency before the outage: ${ms(before)}; during the ${OUTAGE_MS / 1000} s outage: ${ms(during)}; ${posted.posted} readings posted, outputs ${JSON.stringify(outputs.perKind)}`);
      // generous on a shared machine: the outage must not make ingest wait for the database
      expect(before.length).toBeGreaterThan(100);
      expect(during.length).toBeGreaterThan(100);
      expect(quantile(during, 0.5)).toBeLessThan(quantile(before, 0.5) * 4 + 50);
    } finally {
      await archive.close();
      await viaProxy.close();
      await proxy.close();
      await direct.drop();
    }
  });
});
