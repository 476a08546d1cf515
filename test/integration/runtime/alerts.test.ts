// @vitest-environment node
// Issue 3 proof, scenario 7: a week of real office air (UCI Occupancy Detection, ~8,000 readings) replayed
// as one device with the default rules plus a user rule. The co2 `event.start`/`event.end` alerts in the
// OUT stream must be exactly those the pure domain implies for the same inputs, each once (no repeated
// id), also when the device's owner is killed -9 in the middle of the replay.
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { applyInput, createTwin, twinView, type Alert, type Command, type Reading } from "../../../actors/device-twin/domain/mod.ts";
import { UCI_TRAINING, loadUciReadings } from "../../domain/uci.ts";
import { startNatsServer, type TestNatsServer } from "../../harness/nats-server.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { TestCluster } from "./cluster.ts";
import { CONVERGE_MS } from "./node-process.ts";
import { FleetReference, expectMatchesReference, sendMessages, waitApplied, type DeviceMessage } from "./fleet.ts";

const NODES = ["u1", "u2", "u3"];
const BATCH = 100;
const PUT_RULE: Command = {
  type: "putRule",
  rule: { id: "co2-800", channel: "co2", direction: "above", enter: 800, exit: 700, minDurationMs: 300_000, clearDurationMs: 900_000 },
};

let server: TestNatsServer;
let cluster: TestCluster | undefined;

/** The replay as the gateway would log it: messages of BATCH readings, each sorted by `t`. */
function messagesOf(deviceId: string, readings: readonly Reading[]): DeviceMessage[] {
  const out: DeviceMessage[] = [];
  for (let i = 0; i < readings.length; i += BATCH) out.push({ deviceId, readings: readings.slice(i, i + BATCH).sort((a, b) => a.t - b.t) });
  return out;
}

/** What the pure domain emits on `<id>.co2.event.*` for the same command and messages, in order. */
function expectedCo2Events(deviceId: string, messages: readonly DeviceMessage[]): { alerts: Alert[]; fromMessage: number[]; twin: ReturnType<typeof createTwin> } {
  const twin = createTwin(deviceId);
  const alerts: Alert[] = [];
  /** Index of the message whose apply emitted each alert. */
  const fromMessage: number[] = [];
  const collect = (outputs: ReturnType<typeof applyInput>["outputs"], index: number) => {
    for (const o of outputs) {
      if (o.type !== "alert" || o.alert.channel !== "co2" || !o.alert.kind.startsWith("event.")) continue;
      alerts.push(o.alert);
      fromMessage.push(index);
    }
  };
  collect(applyInput(twin, { type: "command", command: PUT_RULE, at: 0 }).outputs, -1);
  // receivedAt only moves presence (offline/online), which these alerts do not depend on
  messages.forEach((m, i) => collect(applyInput(twin, { type: "readings", readings: m.readings, receivedAt: 0 }).outputs, i));
  return { alerts, fromMessage, twin };
}

const byId = (a: { id?: unknown }, b: { id?: unknown }) => String(a.id).localeCompare(String(b.id));

beforeAll(async () => {
  server = await startNatsServer();
});

afterAll(async () => {
  await cluster?.close();
  await server?.stop();
});

describe.sequential("alerts from a real replay", () => {
  const readings = loadUciReadings(UCI_TRAINING);

  async function replay(
    c: TestCluster,
    deviceId: string,
    o: { killOwnerAt?: number } = {},
  ): Promise<{ alerts: Array<Record<string, unknown>>; expected: Alert[]; fromMessage: number[]; killed?: string }> {
    const messages = messagesOf(deviceId, readings);
    const { alerts: expected, fromMessage, twin } = expectedCo2Events(deviceId, messages);
    expect(await c.client.command("twin", deviceId, "command", PUT_RULE)).toMatchObject({ ok: true });

    let killed: string | undefined;
    let kill: Promise<unknown> | undefined;
    const ref = new FleetReference();
    await sendMessages(c.client, messages, ref, {
      // paced, so the owner is applying while it dies rather than idle after the whole replay
      ratePerSec: 40,
      onAccepted: (n) => {
        if (n !== o.killOwnerAt) return;
        kill = c.leases().then((leases) => {
          killed = leases[c.client.shardOf(deviceId)]!.owner!;
          return c.node(killed).kill("SIGKILL");
        });
      },
    });
    await kill;
    const views = await waitApplied(c.client, [deviceId], ref, { timeoutMs: 120_000 });
    expectMatchesReference(deviceId, views.get(deviceId)!, ref.get(deviceId));
    // the live twin is the domain's twin: same events state
    expect(views.get(deviceId)!.events).toEqual(twinView(twin).events);

    // every expected alert reaches the OUT stream (outputs are confirmed at the commit after the apply)
    // the rule's event alerts (the learned state's anomaly and forecast alerts share the channel)
    const subject = `${deviceId}.co2.event.>`;
    const alerts = await waitFor(
      async () => {
        const got = await c.alerts(subject);
        return got.length >= expected.length ? got : undefined;
      },
      { timeoutMs: CONVERGE_MS, intervalMs: 200, message: `${expected.length} co2 alerts of ${deviceId}` },
    );
    return { alerts, expected, fromMessage, ...(killed === undefined ? {} : { killed }) };
  }

  function expectExactlyOnce(alerts: Array<Record<string, unknown>>, expected: Alert[]): void {
    const ids = alerts.map((a) => String(a.id));
    expect(new Set(ids).size, `repeated ids in the stream: ${ids.filter((id, i) => ids.indexOf(id) !== i).join(", ")}`).toBe(ids.length);
    expect([...alerts].sort(byId)).toEqual([...expected].sort(byId));
  }

  it("the co2 event alerts are exactly those the domain implies, once each", { timeout: 300_000 }, async () => {
    // commits only every 5 s: the owner killed below has published alerts whose inputs are not yet
    // committed, so its successor applies those inputs again and re-publishes the same alerts
    const c = (cluster = await TestCluster.start(server.url, { prefix: "it-alerts", nodes: NODES, node: { commitIntervalMs: 5000 } }));
    onTestFailed(() => console.error(`node logs:\n${c.dumpLogs(40)}`));
    await c.waitBalanced(NODES);
    const { alerts, expected } = await replay(c, "uci-office-1");
    // the user rule and the default rule both fire on this week of data
    const rules = new Set(expected.map((a) => a.ruleId));
    expect(rules).toEqual(new Set(["co2-800", "default-co2"]));
    expect(expected.filter((a) => a.kind === "event.start").length).toBeGreaterThanOrEqual(5);
    expectExactlyOnce(alerts, expected);
    console.log(`[scenario 7] ${readings.length} UCI readings as one device: ${alerts.length} co2 alerts (${[...rules].join(", ")}), equal to the domain's, no repeated id`);
  });

  it("still exactly once when the device's owner is killed -9 in the middle of the replay", { timeout: 300_000 }, async () => {
    const c = cluster!;
    onTestFailed(() => console.error(`node logs:\n${c.dumpLogs(40)}`));
    const half = Math.floor(readings.length / BATCH / 2);
    const { alerts, expected, fromMessage, killed } = await replay(c, "uci-office-2", { killOwnerAt: half });
    expect(killed).toBeDefined();
    // the kill falls after alerts were emitted (and before they were committed): the successor repeats them
    const beforeKill = fromMessage.filter((i) => i < half).length;
    expect(beforeKill).toBeGreaterThan(0);
    expect(beforeKill).toBeLessThan(expected.length);
    expect((await c.node(killed!).exited).signal).toBe("SIGKILL");
    expectExactlyOnce(alerts, expected);
    console.log(
      `[scenario 7] replay with ${killed} (the owner) killed -9 after ${half} of ${Math.ceil(readings.length / BATCH)} messages ` +
        `(${beforeKill} alerts emitted before, commit interval 5 s): ${alerts.length} co2 alerts, equal to the domain's, no repeated id`,
    );
  });
});
