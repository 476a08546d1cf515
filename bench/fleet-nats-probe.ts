// Probe: nats-server's CPU per stored message with one filtered consumer per subject (64 shards' consumers
// on one stream) against one consumer for all subjects — the same messages stored and delivered once each.
// `node --import tsx bench/fleet-nats-probe.ts [consumers] [messages] [rate]`
import { readFileSync } from "node:fs";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../test/harness/nats-server.ts";

const cpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const [consumers = 64, messages = 20000, rate = 1000] = process.argv.slice(2).map(Number);
await using ns = await startNatsServer();
const nc = await connect({ servers: ns.url });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
await jsm.streams.add({ name: "P", subjects: ["p.in.*"] });
const subjects = 64;
let got = 0;
for (let k = 0; k < consumers; k++) {
  const name = `c${k}`;
  await jsm.consumers.add("P", { durable_name: name, ack_policy: AckPolicy.All, filter_subject: consumers === 1 ? "p.in.*" : `p.in.${k % subjects}` });
  const c = await js.consumers.get("P", name);
  const it = await c.consume({ max_messages: 32, threshold_messages: 8, expires: 5000, idle_heartbeat: 1000 });
  void (async () => { for await (const m of it) { got++; if (got % 16 === 0) m.ack(); } })();
}
await new Promise((r) => setTimeout(r, 2000));
const c0 = cpu(ns.pid);
const t0 = performance.now();
const data = new Uint8Array(150);
for (let i = 0; i < messages; i++) {
  const due = t0 + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  void js.publish(`p.in.${i % subjects}`, data);
}
while (got < messages) await new Promise((r) => setTimeout(r, 50));
const s = (performance.now() - t0) / 1000;
const used = cpu(ns.pid) - c0;
process.stdout.write(`${JSON.stringify({ consumers, messages, rate, seconds: Math.round(s), natsCpuUsPerMessage: Math.round((used * 1e6) / messages) })}\n`);
await nc.close();
