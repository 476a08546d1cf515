// Compaction against a real nats-server: twins compacted while dirty (their snapshots deferred, none
// written) answer queries and fire wake-ups as if decoded, take more input, and after a crash (the next
// owner replays the log) or a planned handoff (the stop's commit writes their compact bytes) every twin
// and every output equals a run without compaction.
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { createNodeRuntime, type NodeRuntime } from "../../../runtime/node-runtime.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterBehavior } from "../counter-behavior.ts";
import { counterState, debugLog, natsForFile } from "../fixture.ts";

const SHARDS = 2;
const IDS = Array.from({ length: 8 }, (_, i) => `k${i}`);
const WOKEN = IDS.slice(0, 3);

const nats = natsForFile();

function node(nc: NatsConnection, prefix: string, compactAfterMs: number): Promise<NodeRuntime> {
  return createNodeRuntime(nc, {
    prefix,
    shards: SHARDS,
    streams: 1,
    replicas: 1,
    behaviors: [counterBehavior],
    defaultMetrics: false,
    log: debugLog,
    // no twin's snapshot is due within the test: every compacted twin is dirty
    runner: { commitIntervalMs: 50, wakeIntervalMs: 50, snapshotIntervalMs: 300_000, compactAfterMs },
  });
}

const gauge = async (rt: NodeRuntime, g: "compactEntities" | "residentEntities") => (await rt.metrics[g].get()).values[0]?.value ?? 0;
const count = async (rt: NodeRuntime, c: "itemsApplied" | "timersFired") => (await rt.metrics[c].get()).values.reduce((n, v) => n + v.value, 0);

async function sendAdds(client: RuntimeClient, from: number, to: number): Promise<void> {
  const sends: Promise<unknown>[] = [];
  for (let v = from; v < to; v++) for (const id of IDS) sends.push(client.send("counter", id, "add", { v }));
  await Promise.all(sends);
}

/** One owner applies, is queried and woken; then it crashes or hands over; the next owner's twins and the outputs published. */
async function run(prefix: string, compactAfterMs: number, ending: "crash" | "handoff") {
  const nc = await nats.conn();
  const a = await node(nc, prefix, compactAfterMs);
  for (let s = 0; s < SHARDS; s++) await a.host.start({ shard: s, epoch: 1, owner: "a" });
  const client = new RuntimeClient(nc, { prefix, shards: SHARDS });
  const allCompact = async (message: string) => {
    if (compactAfterMs > 0) await waitFor(async () => (await gauge(a, "compactEntities")) === IDS.length && (await gauge(a, "residentEntities")) === 0, { timeoutMs: 5000, message });
  };
  await sendAdds(client, 0, 25);
  await waitFor(async () => (await count(a, "itemsApplied")) === IDS.length * 25, { message: "first inputs applied" });
  for (const id of WOKEN) await client.command("counter", id, "wake", { at: Date.now() + 1000 });
  await allCompact("every twin compact before its wake-up");
  if (compactAfterMs > 0) {
    // compact and dirty: no snapshot written yet
    const kvm = new Kvm(nc);
    for (const id of IDS) expect(await (await kvm.open(`${prefix}-snap-${client.shardOf(id)}`)).get(`counter.${id}`), id).toBeNull();
  }
  await waitFor(async () => (await count(a, "timersFired")) === WOKEN.length, { timeoutMs: 5000, message: "wake-ups fired" });
  await allCompact("compact again after the wake-ups");
  for (const id of IDS) expect(await counterState(client, id), id).toMatchObject({ n: 25, sum: (25 * 24) / 2, ticks: WOKEN.includes(id) ? 1 : 0 });
  await allCompact("compact again after the queries");
  await sendAdds(client, 25, 30);
  await waitFor(async () => (await count(a, "itemsApplied")) === IDS.length * 30 + WOKEN.length, { message: "later inputs applied" });
  await allCompact("compact again after more input");
  if (ending === "crash") {
    for (let s = 0; s < SHARDS; s++) a.host.abort(s, "simulated crash");
  } else {
    await a.host.stopAll();
  }
  a.close();
  const b = await node(nc, prefix, 0);
  for (let s = 0; s < SHARDS; s++) await b.host.start({ shard: s, epoch: 2, owner: "b" });
  // the next owner replays what the crash left unsaved, and fires the wake-ups the replay finds overdue,
  // before it is asked
  await waitFor(async () => [...(await b.host.lag()).values()].every((n) => n === 0), { message: "replay read" });
  const overdue = async () => (await Promise.all(IDS.map((id) => counterState(client, id)))).some((t) => t.wakeAt !== undefined && t.wakeAt <= Date.now());
  await waitFor(async () => !(await overdue()), { message: "overdue wake-ups fired" });
  await b.host.commitAll();
  const twins: Record<string, unknown> = {};
  for (const id of IDS) twins[id] = await counterState(client, id);
  await b.host.commitAll();
  const js = jetstream(nc);
  const c = await js.consumers.get(`${prefix.toUpperCase()}_OUT`, { filter_subjects: `${prefix}.out.>` });
  const outputs: string[] = [];
  const pending = (await c.info()).num_pending;
  if (pending > 0) for await (const m of await c.fetch({ max_messages: pending, expires: 5000 })) outputs.push(m.headers?.get("Nats-Msg-Id") ?? "");
  await b.host.stopAll();
  b.close();
  await client.close();
  return { twins, outputs: outputs.sort() };
}

describe("compact twins", () => {
  it("compacted while dirty, then a crash or a handoff: every twin and output equals a run without compaction", async () => {
    const reference = await run("cmpref", 0, "crash");
    expect(Object.values(reference.twins)).toEqual(IDS.map((id) => ({ id, n: 30, sum: (30 * 29) / 2, ticks: WOKEN.includes(id) ? 1 : 0 })));
    expect(reference.outputs).toHaveLength(IDS.length * 3 + WOKEN.length);
    expect(await run("cmpcrash", 100, "crash")).toEqual(reference);
    expect(await run("cmphand", 100, "handoff")).toEqual(reference);
  });
});
