// Snapshots deferred (`snapshotIntervalMs`): an owner that crashes after its commits confirmed outputs and
// moved the checkpoint, but before any twin's snapshot was written, is replayed from the log by the next
// owner — every twin ends equal to the reference, and no output is published again or under a new id,
// even with the output stream's duplicate window long over (the checkpoint's `applied`).
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { decode } from "../../../runtime/codec.ts";
import { createNodeRuntime, type NodeRuntime } from "../../../runtime/node-runtime.ts";
import { CHECKPOINT_KEY } from "../../../runtime/snapshot-store.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterBehavior } from "../counter-behavior.ts";
import { counterState, debugLog, natsForFile } from "../fixture.ts";

const SHARDS = 2;
const PREFIX = "defer";
const DUPLICATE_WINDOW_MS = 300;

const nats = natsForFile();

function node(nc: NatsConnection, runner: { snapshotIntervalMs: number; snapshotPacing?: boolean } = { snapshotIntervalMs: 300_000 }): Promise<NodeRuntime> {
  return createNodeRuntime(nc, {
    prefix: PREFIX,
    shards: SHARDS,
    streams: 1,
    replicas: 1,
    behaviors: [counterBehavior],
    defaultMetrics: false,
    log: debugLog,
    // commits every 50 ms; by default no twin's snapshot is due within the test
    runner: { commitIntervalMs: 50, wakeIntervalMs: 50, ...runner },
    streamsOptions: { duplicateWindowMs: DUPLICATE_WINDOW_MS },
  });
}

async function sendAdds(client: RuntimeClient, ids: string[], from: number, to: number): Promise<void> {
  const sends: Promise<unknown>[] = [];
  for (let v = from; v < to; v++) for (const id of ids) sends.push(client.send("counter", id, "add", { v }));
  await Promise.all(sends);
}

/**
 * After a crash: once the outputs' duplicate window has run out, a new owner (epoch `epoch`) replays
 * the shards and gets 10 more adds a counter; every counter must equal the reference (n = 35, sum of
 * 0..34) and its outputs (n = 10, 20, 30) be published exactly once under the reference's ids.
 */
async function replayChecked(nc: NatsConnection, client: RuntimeClient, ids: string[], runner: Parameters<typeof node>[1], epoch: number): Promise<void> {
  await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS * 3));
  const b = await node(nc, runner);
  for (let s = 0; s < SHARDS; s++) await b.host.start({ shard: s, epoch, owner: "b" });
  await sendAdds(client, ids, 25, 35); // the output at n = 30 comes from new input
  for (const id of ids) {
    await waitFor(async () => (await counterState(client, id)).n === 35, { message: `${id} at 35` });
    expect((await counterState(client, id)).sum).toBe((35 * 34) / 2);
  }
  await b.host.commitAll();
  // every output once, under the reference's ids
  const js = jetstream(nc);
  const c = await js.consumers.get("DEFER_OUT", { filter_subjects: `${PREFIX}.out.counter.>` });
  const seen: string[] = [];
  const pending = (await c.info()).num_pending;
  if (pending > 0) for await (const m of await c.fetch({ max_messages: pending, expires: 5000 })) seen.push(m.headers?.get("Nats-Msg-Id") ?? "");
  const ours = new Set(ids);
  const reference = ids.flatMap((id) => [10, 20, 30].map((n) => `${id}:${n}`));
  expect(seen.filter((msgId) => ours.has(msgId.split(":")[0]!)).sort()).toEqual(reference.sort());
  await b.host.stopAll();
  b.close();
}

describe("deferred snapshots", () => {
  it("a crash between snapshots: the replay equals the reference, no output published again or under a new id", async () => {
    const nc = await nats.conn();
    const kvm = new Kvm(nc);
    const jsm = await jetstreamManager(nc);
    const a = await node(nc);
    for (let s = 0; s < SHARDS; s++) await a.host.start({ shard: s, epoch: 1, owner: "a" });
    const client = new RuntimeClient(nc, { prefix: PREFIX, shards: SHARDS });
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await sendAdds(client, ids, 0, 25); // outputs at n = 10 and 20
    for (const id of ids) await waitFor(async () => (await counterState(client, id)).n === 25, { message: `${id} applied` });
    // every shard's checkpoint commits its last input (outputs confirmed), while it still replays from the start
    const last = await Promise.all(Array.from({ length: SHARDS }, async (_, s) => (await jsm.streams.getMessage("DEFER_IN_0", { last_by_subj: `${PREFIX}.in.${s}` }).catch(() => null))?.seq ?? 0));
    const checkpoint = async (s: number) => {
      const e = await (await kvm.open(`${PREFIX}-snap-${s}`)).get(CHECKPOINT_KEY);
      return e === null ? { seq: 0 } : decode<{ seq: number; applied?: number }>(e.value);
    };
    for (let s = 0; s < SHARDS; s++) {
      if (last[s] === 0) continue;
      await waitFor(async () => ((await checkpoint(s)).applied ?? 0) >= last[s]!, { message: `shard ${s} committed its input` });
      const cp = await checkpoint(s);
      expect(cp.seq).toBeLessThan(cp.applied!); // the replay starts before the committed input
    }
    // no twin's snapshot written: the log makes up all of it
    for (const id of ids) {
      const shard = client.shardOf(id);
      expect(await (await kvm.open(`${PREFIX}-snap-${shard}`)).get(`counter.${id}`)).toBeNull();
    }
    // crash: no planned stop, no final commit; the outputs' duplicate window runs out before the replay
    for (let s = 0; s < SHARDS; s++) a.host.abort(s, "simulated crash");
    a.close();
    await replayChecked(nc, client, ids, undefined, 2);
    await client.close();
  });

  it("paced: a crash while a group's snapshots are being written one by one — the replay equals the reference, every output once", async () => {
    const nc = await nats.conn();
    const kvm = new Kvm(nc);
    const paced = { snapshotIntervalMs: 1500, snapshotPacing: true };
    const a = await node(nc, paced);
    for (let s = 0; s < SHARDS; s++) await a.host.start({ shard: s, epoch: 3, owner: "a" }); // after the test above's owners, on the same streams
    const client = new RuntimeClient(nc, { prefix: PREFIX, shards: SHARDS });
    const ids = Array.from({ length: 40 }, (_, i) => `p${i}`);
    const written = async () => {
      let n = 0;
      for (const id of ids) if ((await (await kvm.open(`${PREFIX}-snap-${client.shardOf(id)}`)).get(`counter.${id}`)) !== null) n++;
      return n;
    };
    await sendAdds(client, ids, 0, 25); // the group starts waiting together; outputs at n = 10 and 20
    for (const id of ids) await waitFor(async () => (await counterState(client, id)).n === 25, { message: `${id} applied` });
    // paced, the group's snapshots come one by one between ½ and 1½ intervals: crash once some are written
    await waitFor(async () => ((await written()) > 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, message: "the first paced snapshot" });
    for (let s = 0; s < SHARDS; s++) a.host.abort(s, "simulated crash");
    a.close();
    const atCrash = await written();
    expect(atCrash).toBeGreaterThan(0);
    expect(atCrash).toBeLessThan(10); // unpaced, a shard's ~20 come due at the same commit
    await replayChecked(nc, client, ids, paced, 4);
    await client.close();
  });
});
