// Query hand-off across a planned move, against a real nats-server: the old owner answers until the new
// one serves, so callers see no gap; and no answer is ever older than a result a caller already had —
// an old owner that kept answering after the new one applied would show exactly that.
import { errors as natsErrors } from "@nats-io/nats-core";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { announceServing, listenForNewerOwner } from "../../../runtime/handoff.ts";
import type { NodeRuntime } from "../../../runtime/node-runtime.ts";
import type { ShardRunnerOptions } from "../../../runtime/shard/mod.ts";
import { names as namesOf } from "../../../runtime/subjects.ts";
import { waitFor } from "../../harness/wait-for.ts";
import type { CounterState } from "../counter-behavior.ts";
import { natsForFile, testNode } from "../fixture.ts";

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const nats = natsForFile();
const conn = () => nats.conn();

async function node(prefix: string, runner: Partial<ShardRunnerOptions> = {}): Promise<NodeRuntime> {
  return testNode(await conn(), { prefix, shards: 1, runner: { commitIntervalMs: 50, ...runner } });
}

describe("handoff announcements", () => {
  it("reach older runners only, are acknowledged once they stopped, and find nobody when none is left", async () => {
    const nc = await conn();
    const subject = "ho.handoff.0";
    expect(await announceServing(nc, subject, { epoch: 1, instance: "a" }, 2000), "nobody listens").toBe("no-older-owner");

    const heard: string[] = [];
    const older = listenForNewerOwner(nc, subject, { epoch: 3, instance: "old" }, (e) => heard.push(`old<-${e}`));
    const newer = listenForNewerOwner(nc, subject, { epoch: 5, instance: "new" }, (e) => heard.push(`new<-${e}`));
    // a late zombie of epoch 4 announcing must not stop the owner of epoch 5; it does stop epoch 3
    expect(await announceServing(nc, subject, { epoch: 4, instance: "zombie" }, 2000)).toBe("acknowledged");
    expect(heard).toEqual(["old<-4"]);
    older.unsubscribe();
    // a runner that is not older keeps quiet (and keeps serving): the announcer waits out its timeout
    expect(await announceServing(nc, subject, { epoch: 4, instance: "zombie" }, 200)).toBe("timeout");
    expect(heard).toEqual(["old<-4"]);
    newer.unsubscribe();
  });
});

describe("planned move", () => {
  it("the old owner answers until the new one serves; no answer is older than a result already seen", async () => {
    // a long linger: only the new owner's announcement can end it within this test
    const a = await node("ho1", { lingerMs: 60_000 });
    await a.host.start({ shard: 0, epoch: 1, owner: "a" });
    const b = await node("ho1");
    const nc = await conn();
    const client = new RuntimeClient(nc, { prefix: "ho1", shards: 1 });
    const rpc = namesOf("ho1").rpc(0);
    const body = packr.pack({ type: "counter", id: "c1", q: null });

    // writer: commands one after another; `acked` is the count the last reply confirmed
    let acked = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const r = await client.command("counter", "c1", "add", { v: 1 });
        if (r.ok) acked = Math.max(acked, (r.value as { n: number }).n);
      }
    })();
    // reader: direct requests (no client retries), each must see at least what was acked before it was sent
    const stale: string[] = [];
    let answered = 0;
    let unanswered = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const before = acked;
        try {
          const m = await nc.request(rpc, body, { timeout: 2000 });
          const r = packr.unpack(m.data) as { ok: boolean; value?: CounterState };
          answered++;
          if (r.ok && r.value!.n < before) stale.push(`answer n=${r.value!.n} after n=${before} was acked`);
        } catch (err) {
          if (!(err instanceof natsErrors.RequestError || err instanceof natsErrors.TimeoutError || err instanceof natsErrors.NoRespondersError)) throw err;
          unanswered++;
        }
      }
    })();

    await waitFor(() => acked >= 20, { message: "commands applied by the first owner" });
    await a.host.stop(0, "move");
    const atStop = { answered, unanswered };
    await waitFor(() => answered >= atStop.answered + 20, { message: "the stopped owner still answers" });
    await b.host.start({ shard: 0, epoch: 2, owner: "b" });
    const atStart = acked;
    await waitFor(() => acked >= atStart + 20, { message: "commands applied by the new owner" });
    writing = false;
    await writer;
    const last = acked;
    await waitFor(() => answered >= atStop.answered + 100, { message: "more answers" });
    reading = false;
    await reader;

    expect(stale).toEqual([]);
    // from the stop through the new owner's start, every query was answered by someone
    expect(unanswered).toBe(atStop.unanswered);
    const r = await client.get("counter", "c1", null);
    expect(r).toMatchObject({ ok: true, value: { n: last, sum: last } });
    await b.host.stopAll();
    a.close();
    b.close();
    await client.close();
  });

  it("a lingering owner stops answering after lingerMs when no next owner comes", async () => {
    const a = await node("ho2", { lingerMs: 300 });
    await a.host.start({ shard: 0, epoch: 1, owner: "a" });
    const nc = await conn();
    const client = new RuntimeClient(nc, { prefix: "ho2", shards: 1 });
    await client.command("counter", "c1", "add", { v: 1 });
    await a.host.stop(0, "move");
    expect(await client.get("counter", "c1", null, { timeoutMs: 200 })).toMatchObject({ ok: true, value: { n: 1 } });
    const rpc = namesOf("ho2").rpc(0);
    await waitFor(
      async () => {
        try {
          await nc.request(rpc, packr.pack({ type: "counter", id: "c1", q: null }), { timeout: 500 });
          return false;
        } catch (err) {
          return err instanceof natsErrors.RequestError && err.isNoResponders();
        }
      },
      { timeoutMs: 5000, message: "nobody answers once the linger is over" },
    );
    a.close();
    await client.close();
  });
});
