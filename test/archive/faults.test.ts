// The archive is never in the way: Postgres refusing connections (through a proxy this test controls)
// makes it fall behind while ingest carries on at its usual latency; once Postgres is back it catches up
// with nothing lost and nothing doubled. Postgres only (an embedded database cannot be cut off).
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../gateways/archive/db/mod.ts";
import { GatewayFixture } from "../gateway/fixture.ts";
import { pgProxy } from "../harness/pg-proxy.ts";
import { waitFor } from "../harness/wait-for.ts";
import { archiveOn, natsServerForFile, post, testDatabase } from "./fixture.ts";

const url = process.env.DATABASE_URL;

const nats = natsServerForFile();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe.runIf(url)("archive faults (postgres)", () => {
  it("Postgres refusing connections for seconds: ingest unaffected, the archive catches up, nothing lost or doubled", { timeout: 300_000 }, async () => {
    await using f = await GatewayFixture.start(nats());
    const direct = await testDatabase("postgres");
    const proxy = await pgProxy(new URL(url!));
    const proxied = new URL(url!);
    proxied.host = `127.0.0.1:${proxy.port}`;
    const viaProxy = await openDatabase({ databaseUrl: proxied.toString(), schema: direct.schema!, connectTimeoutMs: 1000 });
    const archive = await archiveOn(f, viaProxy);
    try {
      await f.ready();
      const owner = await f.user("ann");
      const dev = await f.device("flaky", owner.userId);
      const t0 = Date.UTC(2026, 10, 1);
      let t = t0;
      const send = async (requests: number) => {
        const ms: number[] = [];
        for (let i = 0; i < requests; i++) {
          const readings = Array.from({ length: 50 }, () => ({ t: (t += 60_000), pm: 10, co2: 500 }));
          const started = performance.now();
          await post(f, dev, readings);
          ms.push(performance.now() - started);
        }
        return ms;
      };
      const before = await send(20);
      await waitFor(async () => (await direct.query<{ n: number }>("select count(*)::int as n from readings")).rows[0]!.n === 1000, { timeoutMs: 60_000, message: "archived before" });

      proxy.down();
      const during = await send(40);
      // the archive is behind and says so; its retries are counted
      await waitFor(async () => (await archive.status()).errors > 0, { timeoutMs: 60_000, message: "failed batches counted" });
      expect((await direct.query<{ n: number }>("select count(*)::int as n from readings")).rows[0]!.n).toBe(1000);
      await new Promise((r) => setTimeout(r, 2000)); // hold the outage a little longer

      proxy.up();
      await waitFor(async () => (await direct.query<{ n: number }>("select count(*)::int as n from readings")).rows[0]!.n === 3000, { timeoutMs: 60_000, message: "caught up" });
      await waitFor(async () => (await archive.measureLag()) === 0, { timeoutMs: 60_000, message: "no lag" });
      expect((await direct.query<{ n: number }>("select count(*)::int as n from reading_repeats")).rows[0]!.n).toBe(0);
      expect((await direct.query<{ n: number }>("select count(distinct t)::int as n from readings")).rows[0]!.n).toBe(3000);
      console.log(`ingest latency median before ${median(before).toFixed(1)} ms, during the outage ${median(during).toFixed(1)} ms`);
      // generous on a shared machine: the outage must not make ingest wait for the database
      expect(median(during)).toBeLessThan(median(before) * 4 + 50);
    } finally {
      await archive.close();
      await viaProxy.close();
      await proxy.close();
      await direct.drop();
    }
  });
});
