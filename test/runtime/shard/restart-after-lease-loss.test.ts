// A runner that failed on storage is restarted by its host only while ownership still has the host run
// that very lease. After a NATS server loss both happen at once: a runner fails (a publish refused, a
// delivery lost in transit) and its lease cannot be renewed, so ownership aborts the shard and, once
// NATS answers again, takes it anew under a newer epoch. The restart of the old epoch, still due, then
// aborted the newer epoch's runner as "superseded", was refused by the newer fence and left the shard
// run by nobody while ownership kept renewing its lease — the node wedge the chaos run found (test/chaos).
// The failure is made deterministic: the output stream is gone, so a commit's outputs are refused until
// the runner gives up (askAgainMs) and fails; ownership's abort and new start (once the stream is back)
// are driven at that moment, before the host schedules its restart.
import { Kvm } from "@nats-io/kv";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { outputStreamConfig } from "../../../runtime/cluster-setup.ts";
import { expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { decode } from "../../../runtime/codec.ts";
import type { LogFn } from "../../../runtime/log.ts";
import { CHECKPOINT_KEY } from "../../../runtime/snapshot-store.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, debugLog, natsForFile, testNode } from "../fixture.ts";

const PREFIX = "relost";
const ENTITIES = 20;
const ADDS = 100;

const nats = natsForFile();
const conn = () => nats.conn();

it("a failed runner whose lease was lost and taken again is not restarted over the newer epoch", async () => {
  const client = new RuntimeClient(await conn(), { prefix: PREFIX, shards: 1, maxBatchItems: 20 });
  const aborts: Array<{ epoch: unknown; reason: unknown }> = [];
  const log: LogFn = (level, msg, fields) => {
    // the host's own aborts of a runner: superseded by another start, or stopped on a failure
    if (msg === "shard runner superseded" || msg.startsWith("shard stopped")) aborts.push({ epoch: fields?.epoch, reason: fields?.by ?? fields?.error });
    debugLog(level, msg, fields);
  };
  const runtime = await testNode(await conn(), { prefix: PREFIX, shards: 1, runner: { commitIntervalMs: 50, fetchBatch: 4, askAgainMs: 300 }, log });
  const jsm = await jetstreamManager(await conn());
  const out = outputStreamConfig(namesOf(PREFIX), { shards: 1, streams: 1, replicas: 1 });
  await jsm.streams.delete(out.name);
  const ids = Array.from({ length: ENTITIES }, (_, i) => `e${i}`);
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < ADDS; i++) for (const id of ids) sends.push(client.send("counter", id, "add", { v: i }));
  await Promise.all(sends);

  // epoch 1 fails on its refused outputs; ownership, which could not renew its lease meanwhile, aborts
  // it and takes the shard again as epoch 2 once NATS serves again — all before the host's restart of
  // epoch 1 is due
  const host = runtime.host;
  const failures: string[] = [];
  let second: Promise<void> | undefined;
  host.onShardFailed = (shard, err) => {
    failures.push(err.message);
    if (second !== undefined) return;
    host.abort(shard, "lease not renewed in time");
    second = jsm.streams.add(out).then(() => host.start({ shard, epoch: 2, owner: "n1" }));
  };
  const names = namesOf(PREFIX);
  const js = jetstream(await conn());
  await host.start({ shard: 0, epoch: 1, owner: "n1" });
  await waitFor(() => second !== undefined, { timeoutMs: 30_000, message: "epoch 1 failed on its refused outputs" });
  await second;

  // epoch 2 serves the shard to the end: every add applied once, committed under epoch 2
  const state = (id: string) => counterState(client, id);
  await waitFor(async () => (await Promise.all(ids.map(state))).every((c) => c.n >= ADDS), { timeoutMs: 30_000, message: "every add applied by epoch 2" });
  await host.commitAll();
  for (const id of ids) expect(await state(id), id).toMatchObject({ n: ADDS, sum: (ADDS * (ADDS - 1)) / 2 });
  expect(aborts.filter((a) => a.epoch === 2), "epoch 2 was never aborted").toEqual([]);
  expect(host.owned()).toEqual([0]);
  const kv = await new Kvm(js).open(names.snapshotBucket(0));
  const checkpoint = decode<{ epoch: number }>((await kv.get(CHECKPOINT_KEY))!.value);
  expect(checkpoint.epoch).toBe(2);
  expect(failures).toHaveLength(1);

  await host.stopAll();
  runtime.close();
  await client.close();
}, 90_000);
