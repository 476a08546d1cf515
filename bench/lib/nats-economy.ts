// What nats-server does per request (issue #16 §2, "the message economy"): its monitoring counters
// (/varz, /jsz, /connz) read before and after a window, and a tap — a `>` subscription for a few
// seconds — that sorts the messages it sees by what they are (inputs, PubAcks, deliveries, pull
// requests, acks, outputs, KV puts, consumer-info requests, heartbeats…), each per request.
// The tap costs nats-server a copy of every message while it runs: run it outside the measured window.
import { connect, type Msg } from "@nats-io/transport-node";
import { round } from "./report.ts";

/** nats-server's counters at one moment. */
export interface NatsCounters {
  at: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  jsApiTotal: number;
  /** Messages in and out per connection name (several connections of one name are summed). */
  byConnection: Record<string, { inMsgs: number; outMsgs: number; connections: number }>;
}

async function json(url: string): Promise<Record<string, unknown>> {
  return (await (await fetch(url)).json()) as Record<string, unknown>;
}

/** Reads /varz, /jsz and /connz of the server at `monitorUrl`. */
export async function natsCounters(monitorUrl: string): Promise<NatsCounters> {
  const [varz, jsz, connz] = await Promise.all([json(`${monitorUrl}/varz`), json(`${monitorUrl}/jsz`), json(`${monitorUrl}/connz?limit=4096`)]);
  const byConnection: NatsCounters["byConnection"] = {};
  for (const c of (connz.connections ?? []) as Array<{ name?: string; in_msgs: number; out_msgs: number }>) {
    const k = c.name ?? "(unnamed)";
    const e = (byConnection[k] ??= { inMsgs: 0, outMsgs: 0, connections: 0 });
    e.inMsgs += c.in_msgs;
    e.outMsgs += c.out_msgs;
    e.connections++;
  }
  return {
    at: performance.now(),
    inMsgs: Number(varz.in_msgs),
    outMsgs: Number(varz.out_msgs),
    inBytes: Number(varz.in_bytes),
    outBytes: Number(varz.out_bytes),
    jsApiTotal: Number((jsz.api as { total?: number } | undefined)?.total ?? 0),
    byConnection,
  };
}

/** The counters' growth between two reads, per request. (Connections opened in between count from 0.) */
export function countersPerRequest(a: NatsCounters, b: NatsCounters, requests: number): Record<string, unknown> {
  const per = (x: number) => round(x / Math.max(1, requests));
  const byConnection: Record<string, { in: number; out: number }> = {};
  for (const [k, v] of Object.entries(b.byConnection)) {
    const p = a.byConnection[k] ?? { inMsgs: 0, outMsgs: 0 };
    byConnection[`${k} ×${v.connections}`] = { in: per(v.inMsgs - p.inMsgs), out: per(v.outMsgs - p.outMsgs) };
  }
  return {
    requests,
    inMsgs: per(b.inMsgs - a.inMsgs),
    outMsgs: per(b.outMsgs - a.outMsgs),
    inBytes: per(b.inBytes - a.inBytes),
    outBytes: per(b.outBytes - a.outBytes),
    jsApiRequests: per(b.jsApiTotal - a.jsApiTotal),
    byConnection,
  };
}

/** What kind of message this is, from its subject, reply subject, headers and body. */
export function kindOf(m: Msg, prefix: string): string {
  const s = m.subject;
  // a delivery to a consumer carries the message's own subject (the server routes it by the inbox)
  if (m.reply?.startsWith("$JS.ACK.") === true) {
    const t = m.reply.split(".");
    return `delivery ${streamKind(t[2] ?? "", prefix)} ${consumerKind(t[3] ?? "")}`;
  }
  if (s.startsWith("$JS.API.CONSUMER.MSG.NEXT.")) return `pull request ${streamKind(s.split(".")[5] ?? "", prefix)} ${consumerKind(s.split(".")[6] ?? "")}`;
  if (s.startsWith("$JS.API.CONSUMER.INFO.")) return `consumer info ${streamKind(s.split(".")[4] ?? "", prefix)} ${consumerKind(s.split(".")[5] ?? "")}`;
  if (s.startsWith("$JS.API.")) return `js api ${s.split(".").slice(2, 4).join(".")}`;
  if (s.startsWith("$JS.ACK.")) return `ack ${streamKind(s.split(".")[2] ?? "", prefix)} ${consumerKind(s.split(".")[3] ?? "")}`;
  if (s.startsWith("$JS.FC.")) return "flow control";
  if (s.startsWith("$JS.EVENT.ADVISORY.API")) return "js advisory (api audit)";
  if (s.startsWith("$JS.EVENT.")) return "js advisory";
  if (s.startsWith("$KV.")) return `kv put ${bucketKind(s.split(".")[1] ?? "", prefix)}`;
  if (s.startsWith(`${prefix}.in.`)) return "input publish";
  if (s.startsWith(`${prefix}.out.`)) return `output publish ${s.split(".").slice(2, 3).join(".")}`;
  if (s.startsWith(`${prefix}.`)) return `${prefix}.${s.split(".")[1]}`;
  const code = m.headers?.code ?? 0;
  if (code === 100) return "idle heartbeat / flow control";
  if (code !== 0) return `pull status ${code}`;
  if (m.data.length > 10 && m.data[0] === 0x7b && m.data[2] === 0x73 && m.data[3] === 0x74) return "pubAck"; // {"stream"
  if (m.data.length > 10 && m.data[0] === 0x7b) return "js api reply";
  return "other reply";
}

function streamKind(stream: string, prefix: string): string {
  const upper = prefix.toUpperCase();
  if (stream.startsWith(`${upper}_IN_`)) return "input";
  if (stream === `${upper}_OUT`) return "output";
  if (stream.startsWith("KV_")) return `kv(${bucketKind(stream.slice(3), prefix)})`;
  return stream;
}

function consumerKind(consumer: string): string {
  if (consumer.startsWith("shard-")) return "by node";
  if (consumer.startsWith("archive")) return "by archive";
  return consumer === "" ? "" : "by other";
}

function bucketKind(bucket: string, prefix: string): string {
  if (bucket.startsWith(`${prefix}-snap-`)) return "snapshot";
  return bucket.startsWith(`${prefix}-`) ? bucket.slice(prefix.length + 1) : bucket;
}

/**
 * Listens to every subject for `seconds` and returns each kind's messages and bytes per second (per
 * second, not per request: the load may run behind its schedule; "input publish" against the offered
 * rate shows how many requests share a message).
 */
export async function tapTraffic(url: string, prefix: string, seconds: number): Promise<Record<string, { msgsPerS: number; bytesPerS: number }>> {
  const nc = await connect({ servers: url, name: "bench tap" });
  const counts = new Map<string, { msgs: number; bytes: number }>();
  nc.subscribe(">", {
    callback: (err, m) => {
      if (err !== null) return;
      const k = kindOf(m, prefix);
      const e = counts.get(k) ?? { msgs: 0, bytes: 0 };
      e.msgs++;
      e.bytes += m.data.length + m.subject.length + (m.reply?.length ?? 0);
      counts.set(k, e);
    },
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await nc.close();
  const rows = [...counts].sort((a, b) => b[1].msgs - a[1].msgs);
  return Object.fromEntries(rows.map(([k, v]) => [k, { msgsPerS: round(v.msgs / seconds), bytesPerS: round(v.bytes / seconds) }]));
}
