// The runtime client's micro-batching against a real nats-server: batches of many shards leave in one
// synchronous run (one socket write), an idle shard's input leaves at once whatever the linger, a batch
// whose shard awaits a PubAck gathers what arrives meanwhile and leaves when that PubAck comes, and at
// the latest after the linger when it does not.
import { readFileSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../runtime/client.ts";
import { ensureStreams } from "../../runtime/cluster-setup.ts";
import { shardOf } from "../../runtime/shard-id.ts";
import { names as namesOf } from "../../runtime/subjects.ts";
import { waitFor } from "../harness/wait-for.ts";
import { natsForFile } from "./fixture.ts";

const SHARDS = 64;
const nats = natsForFile();

/** What was published on input subjects, with the synchronous run each publish happened in. */
interface Recorded {
  subject: string;
  run: number;
  at: number;
}

/**
 * A connection whose publishes are recorded. Publishes made in one synchronous run share `run`:
 * nats.js flushes its outbound buffer in a microtask after the first, so they share a socket write.
 */
async function recordingConn(prefix: string): Promise<{ nc: NatsConnection; published: Recorded[] }> {
  const nc = await nats.conn();
  await ensureStreams(await jetstreamManager(nc), namesOf(prefix), { shards: SHARDS, streams: 1, replicas: 1 });
  const published: Recorded[] = [];
  let run = 0;
  let inRun = false;
  const publish = nc.publish.bind(nc);
  nc.publish = (subject, payload, options) => {
    if (!inRun) {
      inRun = true;
      run++;
      queueMicrotask(() => (inRun = false));
    }
    if (subject.startsWith(`${prefix}.in.`)) published.push({ subject, run, at: performance.now() });
    publish(subject, payload, options);
  };
  return { nc, published };
}

/** One entity id per shard. */
function idPerShard(): string[] {
  const ids = new Array<string>(SHARDS);
  for (let i = 0, found = 0; found < SHARDS; i++) {
    const s = shardOf(`e${i}`, SHARDS);
    if (ids[s] === undefined) {
      ids[s] = `e${i}`;
      found++;
    }
  }
  return ids;
}

/** A process's state letter from /proc ("T": stopped). */
function processState(pid: number): string | undefined {
  return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("runtime client batching", () => {
  it("publishes the batches of many shards in one synchronous run", async () => {
    const { nc, published } = await recordingConn("b1");
    const client = new RuntimeClient(nc, { prefix: "b1", shards: SHARDS });
    const ids = idPerShard();
    const acks = await Promise.all(ids.map((id) => client.send("counter", id, "add", { v: 1 })));
    expect(published).toHaveLength(SHARDS);
    expect(new Set(published.map((p) => p.run)).size).toBe(1);
    expect(new Set(published.map((p) => p.subject)).size).toBe(SHARDS);
    expect(new Set(acks.map((a) => a.seq)).size).toBe(SHARDS);
    await client.close();
  });

  it("publishes an idle shard's input at once, whatever the linger", async () => {
    const { nc } = await recordingConn("b2");
    const client = new RuntimeClient(nc, { prefix: "b2", shards: SHARDS, lingerMs: 10_000 });
    const started = performance.now();
    await client.send("counter", "x", "add", { v: 1 });
    expect(performance.now() - started).toBeLessThan(2000);
    await client.close();
  });

  it("gathers a shard's inputs while its previous message awaits the PubAck, and sends them when it comes", async () => {
    const { nc, published } = await recordingConn("b3");
    const client = new RuntimeClient(nc, { prefix: "b3", shards: SHARDS, lingerMs: 10_000 });
    const started = performance.now();
    const first = client.send("counter", "x", "add", { v: 1 });
    // The client's flush was scheduled before this turn: the first message is published, and its
    // PubAck cannot have been read yet (I/O comes after this phase of the event loop).
    await nextTurn();
    expect(published).toHaveLength(1);
    const more = [2, 3, 4].map((v) => client.send("counter", "x", "add", { v }));
    const firstAck = await first;
    const moreAcks = await Promise.all(more);
    expect(performance.now() - started).toBeLessThan(5000); // released by the PubAck, not the 10 s linger
    expect(published).toHaveLength(2);
    expect(new Set(moreAcks.map((a) => a.seq))).toEqual(new Set([firstAck.seq + 1]));
    await client.close();
  });

  it("sends a waiting batch after the linger when the shard's PubAck does not come", async () => {
    const { nc, published } = await recordingConn("b4");
    const client = new RuntimeClient(nc, { prefix: "b4", shards: SHARDS, lingerMs: 200, ackTimeoutMs: 5000 });
    await client.send("counter", "x", "add", { v: 0 }); // the stream answers
    process.kill(nats.server.pid, "SIGSTOP");
    // the stop is asynchronous: on a busy machine the server may still answer for a moment
    await waitFor(() => processState(nats.server.pid) === "T", { message: "nats-server stopped" });
    try {
      const first = client.send("counter", "x", "add", { v: 1 });
      await nextTurn();
      const second = client.send("counter", "x", "add", { v: 2 });
      await waitFor(() => published.length === 3, { timeoutMs: 3000, message: "second batch published while the first is unconfirmed" });
      const gapMs = published[2]!.at - published[1]!.at;
      expect(gapMs).toBeGreaterThanOrEqual(150);
      expect(gapMs).toBeLessThan(2000);
      process.kill(nats.server.pid, "SIGCONT");
      const [a, b] = await Promise.all([first, second]);
      expect(b.seq).toBe(a.seq + 1);
    } finally {
      process.kill(nats.server.pid, "SIGCONT");
    }
    await client.close();
  });

  it("stores input messages without a Nats-Msg-Id (no input is ever republished, so the server keeps no de-duplication state for them)", async () => {
    const { nc } = await recordingConn("b5");
    const client = new RuntimeClient(nc, { prefix: "b5", shards: SHARDS });
    const ack = await client.send("counter", "x", "add", { v: 1 });
    const stored = await (await jetstreamManager(nc)).streams.getMessage(ack.stream, { seq: ack.seq });
    expect(stored?.header.get("Nats-Msg-Id") ?? "").toBe("");
    await client.close();
  });
});
