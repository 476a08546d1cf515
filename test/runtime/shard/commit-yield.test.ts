// A commit of a large cut must keep the node's event loop turning: encoding thousands of dirty
// entities (a first ingest, a backlog after downtime) took seconds in one synchronous stretch, and lease
// renewals, heartbeats, acks and queries waited for it (7.9 s measured by `npm run bench -- runtime`
// with 100,000 twins on one node). The cut is now encoded in slices while the shard applies nothing;
// the state stays exact.
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { timerGaps } from "../../harness/timer-gaps.ts";
import { busyEncode } from "../busy-behavior.ts";
import { natsForFile, testNode } from "../fixture.ts";

const ENCODE_MS = 1;

/** Encoding each snapshot keeps the CPU busy for ENCODE_MS, like a large twin. */
const slowEncode = busyEncode(ENCODE_MS);

const nats = natsForFile();

describe("shard runner commit of a large cut", () => {
  it("lets timers run while it encodes, and commits every entity exactly", async () => {
    const nc = await nats.conn();
    const ENTITIES = 1500; // 1.5 s of encoding in one cut
    const client = new RuntimeClient(nc, { prefix: "cyield", shards: 1 });
    // one commit, started by the test
    const runtime = await testNode(nc, { prefix: "cyield", shards: 1, behaviors: [slowEncode], runner: { commitIntervalMs: 60_000 } });
    await runtime.host.start({ shard: 0, epoch: 1, owner: "t" });
    const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);
    await Promise.all(ids.map((id) => client.send("slow", id, "add", {})));
    await waitFor(async () => (await runtime.metrics.messagesApplied.get()).values[0]?.value === Math.ceil(ENTITIES / 500), { message: "all applied" });

    const gaps = timerGaps();
    // inputs sent during the cut wait for it and are applied after it
    const commit = runtime.host.commitAll();
    const during = Promise.all(ids.slice(0, 10).map((id) => client.send("slow", id, "add", {})));
    try {
      await commit;
    } finally {
      gaps.stop();
    }
    await during;
    // One synchronous stretch would be the whole cut (~1500 ms); in slices it is ~10 ms plus the load.
    expect(gaps.worstMs).toBeLessThan(700);
    expect((await runtime.metrics.commitRecords.get()).values.find((v) => v.metricName?.endsWith("_sum"))?.value).toBe(ENTITIES);
    await waitFor(async () => {
      const r = await client.get("slow", "e0", null);
      return r.ok && (r.value as { n: number }).n === 2;
    }, { message: "input sent during the cut applied after it" });
    await runtime.host.stopAll();
    runtime.close();
    // the committed state is exact: a new owner reads every entity back with its count
    const again = await testNode(nc, { prefix: "cyield", shards: 1, behaviors: [slowEncode] });
    await again.host.start({ shard: 0, epoch: 2, owner: "t2" });
    for (const id of [ids[0]!, ids[9]!, ids[10]!, ids[ENTITIES - 1]!]) {
      const r = await client.get("slow", id, null);
      expect(r.ok && (r.value as { n: number }).n).toBe(ids.indexOf(id) < 10 ? 2 : 1);
    }
    await again.host.stopAll();
    again.close();
    await client.close();
  });
});
