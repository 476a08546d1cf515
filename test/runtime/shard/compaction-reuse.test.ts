// Device twins compacted and decoded over and over on a real nats-server: each decode takes the statistics
// buffer a twin compacted before it gave back (EntityBehavior.release, stats-layout.ts), so twins keep
// living in each other's old buffers. After a handoff every stored twin must equal, byte for byte, the twin
// replayed from the log on its own in the pure domain: nothing of a buffer's former owner may show.
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { deviceTwinBehavior } from "../../../actors/device-twin/behavior.ts";
import { releaseTwin, type TwinState } from "../../../actors/device-twin/domain/mod.ts";
import { packReadings } from "../../../actors/device-twin/domain/logged-readings.ts";
import { RuntimeClient } from "../../../runtime/client.ts";
import { decodeBatch } from "../../../runtime/envelope.ts";
import { replayRecord, type ReplayInput } from "../../../runtime/replay.ts";
import { decodeRecord } from "../../../runtime/snapshot-store.ts";
import { names } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { natsForFile, testNode } from "../fixture.ts";

const SHARDS = 2;
const ROUNDS = 8;
const IDS = Array.from({ length: 16 }, (_, i) => `reuse-${i}`);
const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 1);

const nats = natsForFile();

/** Round r's readings of device d: six hours each, values that differ by device so buffers differ. */
function readings(d: number, r: number) {
  return Array.from({ length: 6 }, (_, k) => {
    const h = r * 6 + k;
    return { t: T0 + h * H, pm: 5 + d + (h % 7), co2: 400 + 25 * d + 10 * (h % 24), voc: 90 + 3 * d + h, tmp: 18 + (d % 5) + (h % 3), hum: 35 + d, allpollu: 10 + d + (h % 11) };
  });
}

describe("compact twins reuse each other's statistics buffers", () => {
  it("every twin, compacted and decoded eight times in shuffled order, equals the twin replayed alone from the log", { timeout: 60_000 }, async () => {
    const prefix = "cmpreuse";
    const nc = await nats.conn();
    let releases = 0;
    const twin = deviceTwinBehavior();
    const counting = { ...twin, release: (s: TwinState) => (releases++, releaseTwin(s)) };
    const node = await testNode(nc, { prefix, shards: SHARDS, behaviors: [counting], runner: { commitIntervalMs: 50, wakeIntervalMs: 50, compactAfterMs: 30 } });
    for (let s = 0; s < SHARDS; s++) await node.host.start({ shard: s, epoch: 1, owner: "a" });
    const client = new RuntimeClient(nc, { prefix, shards: SHARDS });
    const gauge = async (g: "compactEntities" | "residentEntities") => (await node.metrics[g].get()).values[0]?.value ?? 0;
    const applied = async () => (await node.metrics.itemsApplied.get()).values.reduce((n, v) => n + v.value, 0);
    await client.command("twin", IDS[3]!, "command", { type: "putRule", rule: { id: "warm", channel: "tmp", direction: "above", enter: 20, exit: 19, minDurationMs: 0, clearDurationMs: 0 } });
    for (let r = 0; r < ROUNDS; r++) {
      // a different order each round (7 is prime to 16: a permutation): a twin decodes into whichever buffer was given back last
      const order = [...IDS.keys()].sort((a, b) => ((a * 7 + r * 3) % IDS.length) - ((b * 7 + r * 3) % IDS.length));
      await Promise.all(order.map((d) => client.send("twin", IDS[d]!, "readings", packReadings(readings(d, r)))));
      await waitFor(async () => (await applied()) === 1 + IDS.length * (r + 1), { message: `round ${r} applied` });
      await waitFor(async () => (await gauge("compactEntities")) === IDS.length && (await gauge("residentEntities")) === 0, { timeoutMs: 5000, message: `round ${r} compacted` });
    }
    expect(releases).toBeGreaterThanOrEqual(IDS.length * ROUNDS);
    await node.host.stopAll(); // the handoff's commit writes every twin
    node.close();
    await client.close();

    // the log, replayed per twin in the pure domain with nothing else in memory's way
    const inputs = new Map<string, ReplayInput[]>(IDS.map((id) => [id, []]));
    const js = jetstream(nc);
    const consumer = await js.consumers.get(names(prefix).inputStream(0));
    const pending = (await consumer.info()).num_pending;
    for await (const m of await consumer.fetch({ max_messages: pending, expires: 5000 })) {
      const batch = decodeBatch(m.data);
      batch.items.forEach((item, index) => inputs.get(item.entityId)!.push({ kind: item.kind, payload: item.payload, acceptedAt: batch.acceptedAt, seq: m.seq, index }));
    }
    const kvm = new Kvm(nc);
    for (const id of IDS) {
      const expected = replayRecord(twin, id, undefined, inputs.get(id)!, { prefix, appliedSeq: 0 });
      const entry = await (await kvm.open(names(prefix).snapshotBucket(client.shardOf(id)))).get(`twin.${id}`);
      expect(entry, id).not.toBeNull();
      expect([...decodeRecord(entry!.value).state], id).toEqual([...expected.state]);
    }
  });
});
