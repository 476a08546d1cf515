// Peer 1, the floor: the readings published to a JetStream stream (each request one message, awaiting
// its PubAck, as any JetStream producer does) and one ordered consumer in the same process updating a
// Map of device statistics (bench/peers/device-stats.ts). Nothing but the input is persisted: the
// statistics live in memory only. The lowest cost any JetStream-based design can have for this job.
//
// Tuning, from the nats.js/JetStream documentation: an ordered push-less consumer (`consumers.get`
// without a name, flow-controlled pulls of 1000), msgpack bodies, `noAsyncTraces`, publishes pipelined
// (64 in flight); a file-backed stream on a private nats-server, the same store airtwin uses.
//
// Latency: request sent → its readings applied to the Map.
// A crash loses: every statistic (rebuilding them means replaying the whole stream from the start);
// the readings themselves are in the stream once PubAck'ed.
//
//   node bin/bench.js peers/floor [--quick] [--devices N] …   (one round; bench/peers.ts runs the rounds)
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pack, unpack } from "msgpackr";
import { startNatsServer } from "../../test/harness/nats-server.ts";
import type { Reading } from "../../actors/device-twin/domain/types.ts";
import { applyReadings, emptyStats, type DeviceStats } from "./device-stats.ts";
import { natsVersion, packageVersion } from "./versions.ts";
import { drive, emitRound, ProcessMeter, self, totalReadings, totalRequests, workloadFrom } from "./workload.ts";

export async function main(argv: string[]): Promise<void> {
  const { workload: w } = workloadFrom(argv);
  await using ns = await startNatsServer();
  const nc = await connect({ servers: ns.url, noAsyncTraces: true, name: "peers floor" });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "FLOOR", subjects: ["floor.in"] });
  const js = jetstream(nc);

  const total = totalRequests(w);
  const sentAt = new Float64Array(total);
  const appliedMs = new Float64Array(total);
  const devices = new Map<string, DeviceStats>();
  let events = 0;
  let applied = 0;
  let allApplied: () => void = () => undefined;
  const done = new Promise<void>((r) => (allApplied = r));
  const consumer = await js.consumers.get("FLOOR");
  const messages = await consumer.consume({ max_messages: 1000 });
  void (async () => {
    for await (const m of messages) {
      const { i, d, r } = unpack(m.data) as { i: number; d: string; r: Reading[] };
      let s = devices.get(d);
      if (s === undefined) devices.set(d, (s = emptyStats()));
      events += applyReadings(s, r).length;
      appliedMs[i] = performance.now() - sentAt[i]!;
      if (++applied === total) allApplied();
    }
  })();

  const meter = new ProcessMeter({ "bench+floor": [self()], "nats-server": [ns.pid] });
  const t0 = performance.now();
  await drive(w, async (req) => {
    sentAt[req.index] = performance.now();
    await js.publish("floor.in", pack({ i: req.index, d: req.deviceId, r: req.readings }));
  });
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const { cpuS, peakRssMb } = meter.read();
  await messages.close();
  await nc.close();
  emitRound(w, {
    system: "floor",
    readings: totalReadings(w),
    seconds,
    latencyMs: appliedMs,
    latencyIs: "sent → applied to the in-memory Map (nothing durable but the input)",
    cpuS,
    peakRssMb,
    crashLoses: "all statistics and events (memory only; rebuilt by replaying the whole input stream)",
    versions: { "nats-server": natsVersion(), "@nats-io/jetstream": packageVersion("@nats-io/jetstream") },
    extra: { devices: devices.size, pmEvents: events },
  });
}
