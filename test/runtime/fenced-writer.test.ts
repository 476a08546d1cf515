// The commit path's writes under pressure, against a real nats-server: a commit far larger than the
// publisher's in-flight window waits for room instead of timing out in a queue, keeps every fenced
// chain in order (several shards sharing one window), and acks that arrived while the process was
// stalled are not mistaken for missing ones. Found by `npm run bench -- runtime` (memory part: one
// node committing 100,000 twins at once lost most shards to "no ack within 5000 ms").
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PipelinedPublisher } from "../../runtime/publisher.ts";
import { bucketStream, claimShard, openSnapshotBucket } from "../../runtime/snapshot-store.ts";
import { startNatsServer, type TestNatsServer } from "../harness/mod.ts";

let server: TestNatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, noAsyncTraces: true });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

async function writer(publisher: PipelinedPublisher, bucket: string, shard: number) {
  const jsm = await jetstreamManager(nc);
  const kv = await openSnapshotBucket(new Kvm(nc), bucket, { replicas: 1 });
  return { jsm, w: await claimShard(jsm, kv, publisher, bucket, shard, 1) };
}

describe("fenced snapshot writes through the pipelined publisher", () => {
  it("a commit of many times the in-flight window lands whole and in order, for several shards at once", async () => {
    const publisher = new PipelinedPublisher(nc, { maxInFlight: 16, ackTimeoutMs: 2000 });
    const a = await writer(publisher, "fw-a", 0);
    const b = await writer(publisher, "fw-b", 1);
    const N = 3000;
    const writes: Promise<number>[] = [];
    const value = new Uint8Array(200);
    for (let i = 0; i < N; i++) {
      // interleaved like two shards committing at the same time; each put expects its predecessor
      writes.push(a.w.put(`k${i % 500}`, value), b.w.put(`k${i % 500}`, value));
      expect(publisher.inFlight).toBeLessThanOrEqual(16);
    }
    const seqs = await Promise.all(writes);
    expect(a.w.failed).toBeUndefined();
    expect(b.w.failed).toBeUndefined();
    // each writer's sequence numbers grow in call order: the chain was published in order
    const aSeqs = seqs.filter((_, i) => i % 2 === 0);
    expect(aSeqs.every((s, i) => i === 0 || s > aSeqs[i - 1]!)).toBe(true);
    expect((await a.jsm.streams.info(bucketStream("fw-a"))).state.last_seq).toBe(N + 1); // fence + N writes
    publisher.close();
  });

  it("does not fail publishes whose acks arrived while the process was stalled", async () => {
    const publisher = new PipelinedPublisher(nc, { ackTimeoutMs: 300 });
    const { w } = await writer(publisher, "fw-c", 2);
    const writes = Array.from({ length: 100 }, (_, i) => w.put(`k${i}`, new Uint8Array(10)));
    // a synchronous stretch longer than the ack timeout (a big cut, a GC pause): the acks arrive
    // meanwhile and wait unread in the socket, which Node reads after the timers
    const until = performance.now() + 1200;
    while (performance.now() < until) {
      // busy
    }
    await expect(Promise.all(writes)).resolves.toHaveLength(100);
    publisher.close();
  });
});
