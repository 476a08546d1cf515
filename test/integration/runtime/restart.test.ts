// @vitest-environment node
// Issue 3 proof, scenario 6: the whole cluster restarts — every node SIGTERMed (graceful hand-off, exit
// code 0), the nats-server stopped and started again on the same store and port, the nodes started
// again. Every twin's full view must be exactly as before, and timers must still fire: devices that
// stopped sending before the restart go offline after it, each with exactly one `offline` alert.
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startNatsServer, type TestNatsServer } from "../../harness/nats-server.ts";
import { TestCluster, probesByShard } from "./cluster.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { CONVERGE_MS } from "./node-process.ts";
import { FleetReference, allMessages, eachLimited, expectMatchesReference, generateFleet, liveView, sendMessages, waitApplied } from "./fleet.ts";

const NODES = ["r1", "r2", "r3"];
/**
 * Wall-clock silence after which a twin reports its device offline: long enough that the nodes are down
 * before it passes (checked: no offline alert exists when they are), short enough to wait for.
 */
const OFFLINE_AFTER_MS = 30_000;
const fleet = generateFleet({ devices: 300, readingsPerDevice: 60, batchSize: 20, seed: 66 });
const RULE = { id: "co2-800", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 300_000, clearDurationMs: 900_000 };

let server: TestNatsServer;
let cluster: TestCluster | undefined;

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await cluster?.close();
  await server?.stop();
});

/** The view without `online`, which depends on the wall clock of the question. */
function stable(view: Record<string, unknown>): Record<string, unknown> {
  const { online: _online, ...rest } = view;
  return rest;
}

describe.sequential("whole-cluster restart", () => {
  it("state is exactly as before, and offline timers fire once after the restart", { timeout: 300_000 }, async () => {
    const c = (cluster = await TestCluster.start(server.url, { prefix: "it-restart", nodes: NODES, env: { AIRTWIN_OFFLINE_AFTER_MS: String(OFFLINE_AFTER_MS) } }));
    onTestFailed(() => console.error(`node logs:\n${c.dumpLogs(40)}\n--- nats-server ---\n${server.logTail(20)}`));
    await c.waitBalanced(NODES);
    const probe = probesByShard(c.client, fleet.ids);

    // state worth keeping: readings, and a user rule on every tenth device
    const withRule = fleet.ids.filter((_, i) => i % 10 === 0);
    for (const id of withRule) expect(await c.client.command("twin", id, "command", { type: "putRule", rule: RULE })).toMatchObject({ ok: true });
    const ref = new FleetReference();
    await sendMessages(c.client, allMessages(fleet), ref);
    const lastSent = Date.now();
    await waitApplied(c.client, fleet.ids, ref);
    const before = new Map<string, Awaited<ReturnType<typeof liveView>>>();
    await eachLimited(fleet.ids, 50, async (id) => before.set(id, await liveView(c.client, id)));
    for (const id of fleet.ids) expectMatchesReference(id, before.get(id)!, ref.get(id));
    for (const id of withRule) expect((before.get(id)!.rules as Array<{ id: string }>).map((r) => r.id)).toContain(RULE.id);

    // restart everything: nodes first (graceful: each commits and releases its shards, exit code 0) …
    const phases: string[] = [`views ${Math.round(Date.now() - lastSent)} ms after the last send`];
    let t = performance.now();
    const r0 = t;
    const phase = (name: string) => {
      phases.push(`${name} ${Math.round(performance.now() - t)} ms`);
      t = performance.now();
    };
    await Promise.all(NODES.map((id) => c.node(id).stop()));
    phase("nodes stopped");
    // … no twin went offline yet: whatever offline alert exists later was fired after the restart
    expect(await c.outputCounts("alert.*.device.offline")).toEqual({});
    // … then the nats-server, on the same store and port, then the nodes again
    await server.restart();
    phase("nats-server restarted");
    await Promise.all(NODES.map((id) => c.startNode(id, { AIRTWIN_OFFLINE_AFTER_MS: String(OFFLINE_AFTER_MS) })));
    phase("nodes ready");
    await c.waitServed(probe, NODES);
    phase("every shard served");
    const restartMs = performance.now() - r0;

    // every twin's full view is as it was (only `online` may differ: it depends on the clock)
    const after = new Map<string, Record<string, unknown>>();
    await eachLimited(fleet.ids, 50, async (id) => after.set(id, await liveView(c.client, id)));
    for (const id of fleet.ids) expect(stable(after.get(id)!), `view of ${id} after the restart`).toEqual(stable(before.get(id)!));

    // timers still fire: every device goes offline, once, with the id its last contact implies
    const offline = await waitFor(
      async () => {
        const counts = await c.outputCounts("alert.*.device.offline");
        return Object.keys(counts).length === fleet.ids.length ? counts : undefined;
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 250, message: "an offline alert for every device" },
    );
    for (const id of fleet.ids) expect(offline[`${c.names.outputRoot}.alert.${id}.device.offline`], `offline alerts of ${id}`).toBe(1);
    const alerts = await c.alerts("*.device.offline");
    expect(alerts.length).toBe(fleet.ids.length);
    for (const a of alerts) {
      const lastSeen = before.get(String(a.deviceId))!.lastSeen as number;
      expect(a).toMatchObject({ id: `${a.deviceId}:offline:${lastSeen}`, kind: "offline", channel: "device", at: lastSeen + OFFLINE_AFTER_MS });
    }
    await waitFor(async () => (await liveView(c.client, fleet.ids[0]!)).online === false, { timeoutMs: 10_000, message: "the view says offline" });
    console.log(
      `[scenario 6] ${fleet.ids.length} twins (${ref.totals().sent} readings, ${withRule.length} user rules): full cluster restart ` +
        `(3 nodes SIGTERM → nats-server restart → 3 nodes serving) in ${Math.round(restartMs)} ms (${phases.join(", ")}); views identical; ` +
        `${alerts.length} offline alerts, one per device, fired after the restart`,
    );
  });
});
