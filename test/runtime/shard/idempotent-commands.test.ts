// Idempotency keys of commands against a real nats-server: a command resent under the same key is
// applied once and the retry gets the first reply (same seq); the record of applied keys survives
// passivation, a planned restart (a shard move is one), a crash with and without a commit (replay),
// keeps the last COMMAND_KEYS_PER_ENTITY keys per entity, and `$erase` clears it. A key reused for a
// different command (another kind or payload; not merely its object keys in another order) is refused
// with AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED and not applied; entries recorded before fingerprints are not
// compared.
import { createInbox } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { COMMAND_KEYS_PER_ENTITY } from "../../../runtime/command-keys.ts";
import { encodeBatch } from "../../../runtime/envelope.ts";
import { decodeRecord, encodeRecord, entityKey } from "../../../runtime/snapshot-store.ts";
import { isRuntimeError } from "../../../runtime/errors.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import type { ShardRunnerOptions } from "../../../runtime/shard/mod.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterState, natsForFile, testNode } from "../fixture.ts";

const SHARDS = 4;
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const nats = natsForFile();
const conn = () => nats.conn();

async function node(prefix: string, epoch: number, runner: Partial<ShardRunnerOptions> = {}): Promise<NodeRuntime> {
  const rt = await testNode(await conn(), { prefix, shards: SHARDS, runner: { commitIntervalMs: 100, wakeIntervalMs: 50, ...runner } });
  for (let s = 0; s < SHARDS; s++) await rt.host.start({ shard: s, epoch, owner: `node-e${epoch}` });
  return rt;
}

/** Crash: no planned stop, no final commit. */
function crash(rt: NodeRuntime): void {
  for (let s = 0; s < SHARDS; s++) rt.host.abort(s, "simulated crash");
  rt.close();
}

async function stop(rt: NodeRuntime): Promise<void> {
  await rt.host.stopAll();
  rt.close();
}

const add = (client: RuntimeClient, id: string, v: number, idempotencyKey?: string) =>
  client.command("counter", id, "add", { v }, idempotencyKey === undefined ? {} : { idempotencyKey });

describe("idempotent commands", () => {
  it("applies a key once and answers its retries with the first reply; other keys, no key and other entities apply", async () => {
    const rt = await node("ik1", 1);
    const client = new RuntimeClient(await conn(), { prefix: "ik1", shards: SHARDS });
    const first = await add(client, "c1", 5, "k1");
    expect(first).toMatchObject({ ok: true, value: { n: 1 }, seq: expect.any(Number) });
    expect(first).not.toHaveProperty("replayed");
    const retry = await add(client, "c1", 5, "k1");
    expect(retry).toEqual({ ok: true, value: { n: 1 }, seq: (first as { seq: number }).seq, replayed: true });
    expect(await counterState(client, "c1")).toMatchObject({ n: 1, sum: 5 });

    expect(await add(client, "c1", 5, "k2")).toMatchObject({ ok: true, value: { n: 2 } });
    await add(client, "c1", 5);
    await add(client, "c1", 5);
    expect(await counterState(client, "c1")).toMatchObject({ n: 4, sum: 20 });
    // keys are per entity
    expect(await add(client, "c2", 1, "k1")).toMatchObject({ ok: true, value: { n: 1 } });

    // two callers racing with one key (likely in one input message): one application, one reply for both
    const [a, b] = await Promise.all([add(client, "c3", 1, "race"), add(client, "c3", 1, "race")]);
    expect([a, b].filter((r) => (r as { replayed?: boolean }).replayed === true)).toHaveLength(1);
    expect((a as { seq: number }).seq).toBe((b as { seq: number }).seq);
    expect(await counterState(client, "c3")).toMatchObject({ n: 1 });
    expect((await rt.metrics.commandsReplayed.get()).values[0]?.value).toBe(2);
    await stop(rt);
    await client.close();
  });

  it("refuses an invalid key before sending (client) and when logged by a client that does not check (runner)", async () => {
    const rt = await node("ik2", 1);
    const nc = await conn();
    const client = new RuntimeClient(nc, { prefix: "ik2", shards: SHARDS });
    for (const bad of ["", " padded", "x".repeat(129), "naïve"]) {
      const err = await add(client, "v1", 1, bad).then(() => undefined, (e: unknown) => e);
      expect(isRuntimeError(err, "IDEMPOTENCY_KEY_INVALID"), JSON.stringify(bad)).toBe(true);
    }
    const inbox = createInbox();
    const sub = nc.subscribe(inbox, { max: 1 });
    const item = { type: "counter", entityId: "v1", kind: "add", payload: { v: 1 }, replyTo: inbox, idempotencyKey: "x".repeat(129) };
    await jetstream(nc).publish(client.names.input(client.shardOf("v1")), encodeBatch({ acceptedAt: Date.now(), items: [item] }));
    for await (const m of sub) expect(packr.unpack(m.data)).toMatchObject({ ok: false, error: { code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_INVALID" } });
    expect(await counterState(client, "v1")).toMatchObject({ n: 0 });
    await stop(rt);
    await client.close();
  });

  it("remembers keys across passivation, a planned restart and a commit followed by a crash", async () => {
    const a = await node("ik3", 1, { commitIntervalMs: 50, idlePassivateMs: 300 });
    const client = new RuntimeClient(await conn(), { prefix: "ik3", shards: SHARDS });
    const first = (await add(client, "p1", 3, "once")) as { seq: number };
    const resident = async () => (await a.metrics.residentEntities.get()).values[0]?.value ?? 0;
    await waitFor(async () => (await resident()) === 0, { timeoutMs: 10_000, message: "p1 passivated" });
    expect(await add(client, "p1", 3, "once")).toEqual({ ok: true, value: { n: 1 }, seq: first.seq, replayed: true });

    // planned restart (what a shard move does): the new owner reads the record from the snapshot
    await stop(a);
    expect((await client.getSnapshot("counter", "p1"))?.commands?.map((c) => [c.key, c.seq])).toEqual([["once", first.seq]]);
    const b = await node("ik3", 2);
    expect(await add(client, "p1", 3, "once")).toEqual({ ok: true, value: { n: 1 }, seq: first.seq, replayed: true });

    // committed, then more keyed commands and a retry that are not, then a crash: replayed exactly
    await b.host.commitAll();
    const later = (await add(client, "p1", 3, "later")) as { seq: number };
    await add(client, "p1", 3, "once");
    crash(b);
    const c = await node("ik3", 3);
    expect(await add(client, "p1", 3, "later")).toEqual({ ok: true, value: { n: 2 }, seq: later.seq, replayed: true });
    expect(await add(client, "p1", 3, "once")).toMatchObject({ seq: first.seq, replayed: true });
    expect(await counterState(client, "p1")).toMatchObject({ n: 2, sum: 6 });
    await stop(c);
    await client.close();
  });

  it("rebuilds the record by replay after a crash before any commit (redelivery)", async () => {
    // nothing is committed: the next owner replays the command and its retry from the log
    const a = await node("ik4", 1, { commitIntervalMs: 60_000 });
    const client = new RuntimeClient(await conn(), { prefix: "ik4", shards: SHARDS });
    const first = (await add(client, "r1", 4, "k")) as { seq: number };
    expect(await add(client, "r1", 4, "k")).toMatchObject({ replayed: true, seq: first.seq });
    expect(await client.getSnapshot("counter", "r1")).toBeUndefined();
    crash(a);
    const b = await node("ik4", 2);
    expect(await counterState(client, "r1")).toMatchObject({ n: 1, sum: 4 });
    expect(await add(client, "r1", 4, "k")).toEqual({ ok: true, value: { n: 1 }, seq: first.seq, replayed: true });
    // and what the replay rebuilt is committed like any change
    await stop(b);
    const c = await node("ik4", 3);
    expect(await add(client, "r1", 4, "k")).toMatchObject({ replayed: true, seq: first.seq });
    expect(await counterState(client, "r1")).toMatchObject({ n: 1 });
    await stop(c);
    await client.close();
  });

  it(`keeps the last ${COMMAND_KEYS_PER_ENTITY} keys of an entity: the oldest is forgotten, also in the snapshot`, async () => {
    const a = await node("ik5", 1);
    const client = new RuntimeClient(await conn(), { prefix: "ik5", shards: SHARDS });
    const seqs: number[] = [];
    for (let i = 0; i <= COMMAND_KEYS_PER_ENTITY; i++) seqs.push(((await add(client, "b1", 1, `k${i}`)) as { seq: number }).seq);
    expect(await add(client, "b1", 1, "k1")).toMatchObject({ replayed: true, seq: seqs[1] });
    // k0 was evicted by k32: its retry applies again
    const again = await add(client, "b1", 1, "k0");
    expect(again).toMatchObject({ ok: true, value: { n: COMMAND_KEYS_PER_ENTITY + 2 } });
    expect(again).not.toHaveProperty("replayed");
    await stop(a);
    const keys = (await client.getSnapshot("counter", "b1"))?.commands?.map((c) => c.key);
    expect(keys).toHaveLength(COMMAND_KEYS_PER_ENTITY);
    expect(keys?.[0]).toBe("k2"); // k1 made way for k0's second application
    expect(keys?.at(-1)).toBe("k0");
    await client.close();
  });

  it("$erase forgets the keys: a retry after it applies to the fresh state", async () => {
    const a = await node("ik6", 1);
    const client = new RuntimeClient(await conn(), { prefix: "ik6", shards: SHARDS });
    await add(client, "e1", 9, "k");
    await client.erase("counter", "e1");
    const after = await add(client, "e1", 2, "k");
    expect(after).toMatchObject({ ok: true, value: { n: 1 } });
    expect(after).not.toHaveProperty("replayed");
    expect(await counterState(client, "e1")).toMatchObject({ n: 1, sum: 2 });
    await client.erase("counter", "e1");
    await waitFor(async () => (await counterState(client, "e1")).n === 0, { message: "second erasure applied" });
    await stop(a);
    const snapshot = await client.getSnapshot("counter", "e1");
    expect(snapshot?.appliedSeq).toBeGreaterThan(0);
    expect(snapshot).not.toHaveProperty("commands");
    await client.close();
  });

  it("refuses a key reused for a different command without applying it; the same command in another key order is replayed; across a restart", async () => {
    const a = await node("ik7", 1);
    const client = new RuntimeClient(await conn(), { prefix: "ik7", shards: SHARDS });
    const send = (kind: string, payload: unknown) => client.command("counter", "f1", kind, payload, { idempotencyKey: "k" });
    const reused = { ok: false, error: { code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED", message: "this idempotency key was used for a different command" } };
    const first = (await send("add", { v: 5, meta: { a: 1, b: [1, { x: 1, y: 2 }] } })) as { seq: number };
    expect(first).toMatchObject({ ok: true, value: { n: 1 } });
    // the same JSON, its keys in another order at every level: the same command
    const replay = { ok: true, value: { n: 1 }, seq: first.seq, replayed: true };
    expect(await send("add", { meta: { b: [1, { y: 2, x: 1 }], a: 1 }, v: 5 })).toEqual(replay);
    // another value, an array in another order, another kind: refused
    expect(await send("add", { v: 6, meta: { a: 1, b: [1, { x: 1, y: 2 }] } })).toEqual(reused);
    expect(await send("add", { v: 5, meta: { a: 1, b: [{ x: 1, y: 2 }, 1] } })).toEqual(reused);
    expect(await send("wake", { v: 5, meta: { a: 1, b: [1, { x: 1, y: 2 }] } })).toEqual(reused);
    expect(await counterState(client, "f1")).toMatchObject({ n: 1, sum: 5 });
    expect(await counterState(client, "f1")).not.toHaveProperty("wakeAt");
    // the refusals changed nothing: the first command is still what the key answers
    expect(await send("add", { v: 5, meta: { a: 1, b: [1, { x: 1, y: 2 }] } })).toEqual(replay);
    expect((await a.metrics.commandsReplayed.get()).values[0]?.value).toBe(2);

    // the fingerprint is committed with the key, and the next owner compares with it
    await stop(a);
    const committed = (await client.getSnapshot("counter", "f1"))?.commands;
    expect(committed?.map((c) => [c.key, c.seq, c.fingerprint?.length])).toEqual([["k", first.seq, 16]]);
    const b = await node("ik7", 2);
    expect(await send("add", { v: 6 })).toEqual(reused);
    expect(await send("add", { meta: { a: 1, b: [1, { x: 1, y: 2 }] }, v: 5 })).toEqual(replay);
    expect(await counterState(client, "f1")).toMatchObject({ n: 1, sum: 5 });
    await stop(b);
    await client.close();
  });

  it("answers from an entry recorded before fingerprints (three elements) without comparing the command", async () => {
    const nc = await conn();
    const a = await node("ik8", 1);
    const client = new RuntimeClient(nc, { prefix: "ik8", shards: SHARDS });
    const first = (await add(client, "o1", 3, "old")) as { seq: number };
    await stop(a);
    // rewrite the committed record as a runner before fingerprints wrote it
    const kv = await new Kvm(nc).open(client.names.snapshotBucket(client.shardOf("o1")));
    const key = entityKey("counter", "o1");
    const record = decodeRecord((await kv.get(key))!.value);
    await kv.put(key, encodeRecord({ ...record, commands: record.commands!.map(({ key, seq, reply }) => ({ key, seq, reply })) }));
    expect((packr.unpack((await kv.get(key))!.value) as unknown[][][])[3]).toEqual([["old", first.seq, expect.any(Uint8Array)]]);

    const b = await node("ik8", 2);
    expect(await add(client, "o1", 4, "old")).toEqual({ ok: true, value: { n: 1 }, seq: first.seq, replayed: true });
    expect(await counterState(client, "o1")).toMatchObject({ n: 1, sum: 3 });
    // keys recorded from now on have fingerprints
    await add(client, "o1", 4, "new");
    expect(await add(client, "o1", 5, "new")).toMatchObject({ ok: false, error: { code: "AIRTWIN_ERR_IDEMPOTENCY_KEY_REUSED" } });
    expect(await counterState(client, "o1")).toMatchObject({ n: 2, sum: 7 });
    await stop(b);
    await client.close();
  });
});
