// What nats-server spends on a snapshot write that replaces the twin's previous one, against the same
// write of a key the bucket does not hold yet (the baseline, same run, same server). A shard's snapshot
// bucket keeps one revision a key (runtime/snapshot-store.ts), so in service every snapshot deletes the
// one before it from the file store; a fleet's first snapshot cycle deletes nothing. The writes are
// shaped as an owner's: pipelined, each with its `Nats-Msg-Id` and the `Nats-Expected-Last-Msg-Id` of
// the write before it and the epoch header, ~1.2 KB (a week-old twin's record), keys in a scattered
// order, at an even rate in bursts every 20 ms (a commit's handful).
//
// node bin/bench.js kv-replace [--keys 60000] [--rate 1000] [--bytes 1230] [--passes 3]
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { PipelinedPublisher } from "../runtime/publisher.ts";
import { EPOCH_HEADER, openSnapshotBucket } from "../runtime/snapshot-store.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { int, parseArgs } from "./lib/args.ts";
import { emit, median, note, round } from "./lib/report.ts";
import { cpuSeconds } from "./peers/workload.ts";

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const keys = int(args, "keys", 60_000);
  const rate = int(args, "rate", 1000);
  const bytes = int(args, "bytes", 1230);
  const passes = Math.max(2, int(args, "passes", 3));
  note("kv-replace", { keys, rate, bytes, passes });

  await using server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    const bucket = "bench-snap-0";
    await openSnapshotBucket(new Kvm(nc), bucket, { replicas: 1 });
    const publisher = new PipelinedPublisher(nc);
    const value = new Uint8Array(bytes).map((_, i) => (i * 31) & 255);
    let written = 0;
    let lastMsgId: string | undefined;
    const perBurst = Math.max(1, Math.round(rate / 50));
    const perPut: number[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const cpu0 = cpuSeconds(server.pid);
      const t0 = performance.now();
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < keys; i++) {
        // a stride prime to `keys`: every key once a pass, neighbours far apart in the store
        const key = `twin.d${String((i * 7919) % keys).padStart(7, "0")}`;
        const msgId = `e1.bench.${++written}`;
        inFlight.push(publisher.publish(`$KV.${bucket}.${key}`, value, { msgId, expectLastMsgId: lastMsgId, headers: { [EPOCH_HEADER]: "1" } }));
        lastMsgId = msgId;
        if ((i + 1) % perBurst === 0) {
          await Promise.all(inFlight.splice(0));
          const wait = t0 + ((i + 1) / rate) * 1000 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
      await Promise.all(inFlight);
      const us = ((cpuSeconds(server.pid) - cpu0) / keys) * 1e6;
      perPut.push(us);
      note(pass === 0 ? "first writes" : "replacing", { pass, natsCpuUsPerPut: round(us), seconds: round((performance.now() - t0) / 1000) });
    }
    const replacing = median(perPut.slice(1));
    emit({
      suite: "kv-replace",
      name: "kv-replace.nats-cpu-us-per-put",
      value: round(replacing),
      unit: "µs of nats-server CPU a snapshot write replacing the key's revision (median of the passes after the first)",
      baseline: { name: "first write of the key (pass 1)", value: round(perPut[0]!) },
      detail: { keys, rate, bytes, passes: perPut.map((us) => round(us)) },
    });
  } finally {
    await nc.close();
  }
}
