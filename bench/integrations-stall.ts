// nats-server 2.9's "stall every second drain" of an integration backlog (`node bin/bench.js
// integrations-stall [--rounds N] [--messages N] [--devices N] [--variants a,b,…]`): which stream layout,
// consumer config or pull pattern removes it. Each variant has streams of its own on one real
// nats-server (test/harness); every round publishes a backlog of integration messages (the bench's
// shape: msgpack alert, Nats-Msg-Id, one subject per device, a subscription list per device beside
// them) and drains it with a pull consumer as the runner does (64 in flight, a 5 ms fake partner, acks
// in batches); the variants take turns round by round, so each is measured beside the current layout
// under the same load. Reports deliveries/s and nats-server CPU µs per message per round.
import { readFileSync } from "node:fs";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerConfig, type JetStreamClient, type JsMsg, type StreamConfig } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import { AckBatch } from "../gateways/integrations/ack-batch.ts";
import { connectNats, decode, encode, msgpackHeaders } from "../runtime/mod.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { int, parseArgs } from "./lib/args.ts";
import { emit, median, note, round } from "./lib/report.ts";

const SUITE = "integrations-stall";
const IN_FLIGHT = 64;
const PARTNER_MS = 5;

/** How a variant pulls: `consume` (the runner today) or `fetch` loops. */
type Pull = { kind: "consume"; max_messages: number; expires: number; max_bytes?: number } | { kind: "fetch"; max_messages: number; expires: number };

interface Variant {
  name: string;
  /** Streams to create (subjects under the variant's own prefix `p`). */
  streams: (p: string) => Array<Partial<StreamConfig> & { name: string }>;
  /** Where the twin publishes an integration message of `deviceId`. */
  subject: (p: string, deviceId: string) => string;
  /** Another subject published once per 10 integration messages (another provider, other outputs). */
  other?: (p: string, deviceId: string) => string;
  /** Where the subscription lists go (the other traffic of the output stream). */
  listSubject: (p: string, deviceId: string) => string;
  /** The stream and config of the provider's consumer. */
  consumer: (p: string) => { stream: string; config: Partial<ConsumerConfig> };
  pull: Pull;
  /** Waits until the backlog is readable by the consumer's stream (a sourced stream catching up). */
  ready?: (nc: NatsConnection, p: string, expected: number) => Promise<void>;
}

const DAY_NS = nanos(86_400_000);
const fileStream = (name: string, subjects: string[]): Partial<StreamConfig> & { name: string } => ({
  name, subjects, storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: 1, max_age: 7 * DAY_NS, duplicate_window: nanos(120_000),
});
const runnerConsumer = (filter?: string): Partial<ConsumerConfig> => ({
  durable_name: "integration-webhook",
  ...(filter === undefined ? {} : { filter_subject: filter }),
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  ack_wait: nanos(30_000),
  max_deliver: -1,
  max_ack_pending: 20_000,
});
const runnerPull: Pull = { kind: "consume", max_messages: IN_FLIGHT, expires: 5000 };
// today's layout: everything on `<p>.out.>` in one stream, the provider's consumer filtered
const shared = (name: string, pull: Pull = runnerPull, extra: Partial<ConsumerConfig> = {}): Variant => ({
  name,
  streams: (p) => [fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`])],
  subject: (p, d) => `${p}.out.integration.webhook.${d}`,
  listSubject: (p, d) => `${p}.out.subscriptions.${d}`,
  consumer: (p) => ({ stream: `${p.toUpperCase()}_OUT`, config: { ...runnerConsumer(`${p}.out.integration.webhook.>`), ...extra } }),
  pull,
});

const VARIANTS: Variant[] = [
  shared("shared-filtered (today)"),
  shared("shared, consume 256", { kind: "consume", max_messages: 256, expires: 5000 }),
  shared("shared, fetch 64 loop", { kind: "fetch", max_messages: IN_FLIGHT, expires: 1000 }),
  shared("shared, max_ack_pending 256", runnerPull, { max_ack_pending: 256 }),
  shared("shared, ack all", runnerPull, { ack_policy: AckPolicy.All }),
  {
    // today's layout without the other traffic: the lists in a stream of their own
    name: "shared, no other subjects",
    streams: (p) => [fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`]), fileStream(`${p.toUpperCase()}_LISTS`, [`${p}.lists.>`])],
    subject: (p, d) => `${p}.out.integration.webhook.${d}`,
    listSubject: (p, d) => `${p}.lists.${d}`,
    consumer: (p) => ({ stream: `${p.toUpperCase()}_OUT`, config: runnerConsumer(`${p}.out.integration.webhook.>`) }),
    pull: runnerPull,
  },
  {
    // one stream for every provider's integration subjects: another provider's messages among them
    name: "own stream, two providers, filtered",
    streams: (p) => [fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`]), fileStream(`${p.toUpperCase()}_INTEGRATION`, [`${p}.integration.>`])],
    subject: (p, d) => `${p}.integration.webhook.${d}`,
    other: (p, d) => `${p}.integration.email.${d}`,
    listSubject: (p, d) => `${p}.out.subscriptions.${d}`,
    consumer: (p) => ({ stream: `${p.toUpperCase()}_INTEGRATION`, config: runnerConsumer(`${p}.integration.webhook.>`) }),
    pull: runnerPull,
  },
  {
    // today's layout with the output stream's other traffic among the integration messages
    ...shared("shared, other subjects interleaved"),
    other: (p, d) => `${p}.out.aggregate.${d}`,
  },
  {
    // the integration subjects in a stream of their own, the provider's consumer still filtered
    name: "own stream, filtered",
    streams: (p) => [fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`]), fileStream(`${p.toUpperCase()}_INTEGRATION`, [`${p}.integration.>`])],
    subject: (p, d) => `${p}.integration.webhook.${d}`,
    listSubject: (p, d) => `${p}.out.subscriptions.${d}`,
    consumer: (p) => ({ stream: `${p.toUpperCase()}_INTEGRATION`, config: runnerConsumer(`${p}.integration.webhook.>`) }),
    pull: runnerPull,
  },
  {
    name: "own stream, unfiltered",
    streams: (p) => [fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`]), fileStream(`${p.toUpperCase()}_INTEGRATION`, [`${p}.integration.>`])],
    subject: (p, d) => `${p}.integration.webhook.${d}`,
    listSubject: (p, d) => `${p}.out.subscriptions.${d}`,
    consumer: (p) => ({ stream: `${p.toUpperCase()}_INTEGRATION`, config: runnerConsumer() }),
    pull: runnerPull,
  },
  {
    // no subject change: a stream per provider sourcing its subjects from the output stream, read unfiltered
    name: "sourced per provider, unfiltered",
    streams: (p) => [
      fileStream(`${p.toUpperCase()}_OUT`, [`${p}.out.>`]),
      { ...fileStream(`${p.toUpperCase()}_INTEGRATION_WEBHOOK`, []), subjects: undefined, sources: [{ name: `${p.toUpperCase()}_OUT`, filter_subject: `${p}.out.integration.webhook.>` }] },
    ],
    subject: (p, d) => `${p}.out.integration.webhook.${d}`,
    listSubject: (p, d) => `${p}.out.subscriptions.${d}`,
    consumer: (p) => ({ stream: `${p.toUpperCase()}_INTEGRATION_WEBHOOK`, config: runnerConsumer() }),
    pull: runnerPull,
    ready: async (nc, p, expected) => {
      const jsm = await jetstreamManager(nc);
      const deadline = Date.now() + 120_000;
      while ((await jsm.streams.info(`${p.toUpperCase()}_INTEGRATION_WEBHOOK`)).state.messages < expected) {
        if (Date.now() > deadline) throw new Error("source did not catch up");
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  },
];

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

async function publishBacklog(js: JetStreamClient, v: Variant, p: string, round: number, messages: number, devices: number): Promise<void> {
  for (let i = 0; i < messages; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, messages - i) }, (_, k) => {
      const n = i + k;
      const deviceId = `bench-${n % devices}`;
      const at = Date.now();
      const alert = { id: `${deviceId}:default-co2:${round}-${n}:start`, deviceId, ruleId: "default-co2", channel: "co2", kind: "event.start", at, value: 1500, threshold: 1400, eventId: `${deviceId}:default-co2:${round}-${n}`, startedAt: at };
      const data = encode({ subscriptionId: "hook", target: "http://127.0.0.1:9/hook", alert });
      const other = v.other !== undefined && n % 10 === 0 ? js.publish(v.other(p, deviceId), data, { msgID: `${alert.id}:other`, headers: msgpackHeaders() }) : undefined;
      return Promise.all([other, js.publish(v.subject(p, deviceId), data, { msgID: `${alert.id}:hook`, headers: msgpackHeaders() })]);
    }));
  }
}

/** Drains `messages` as the runner does: IN_FLIGHT at once, a fake partner, acks in batches. Resolves with the seconds it took. */
async function drain(nc: NatsConnection, v: Variant, p: string, messages: number): Promise<number> {
  const js = jetstream(nc);
  const { stream, config } = v.consumer(p);
  const consumer = await js.consumers.get(stream, config.durable_name!);
  const acks = new AckBatch();
  let done = 0;
  let active = 0;
  let slotFree: (() => void) | undefined;
  const t0 = performance.now();
  const finished = new Promise<void>((resolve) => {
    const handle = (m: JsMsg) => {
      active++;
      decode(m.data);
      setTimeout(() => {
        acks.ack(m);
        active--;
        const f = slotFree;
        slotFree = undefined;
        f?.();
        if (++done >= messages) resolve();
      }, PARTNER_MS);
    };
    void (async () => {
      if (v.pull.kind === "consume") {
        const it = await consumer.consume({ max_messages: v.pull.max_messages, expires: v.pull.expires, idle_heartbeat: 1000, ...(v.pull.max_bytes === undefined ? {} : { max_bytes: v.pull.max_bytes }) } as never);
        for await (const m of it) {
          handle(m);
          while (active >= IN_FLIGHT) await new Promise<void>((r) => (slotFree = r));
          if (done >= messages) break;
        }
        await it.close();
      } else {
        while (done < messages) {
          while (active >= IN_FLIGHT) await new Promise<void>((r) => (slotFree = r));
          const batch = await consumer.fetch({ max_messages: IN_FLIGHT - active, expires: v.pull.expires });
          for await (const m of batch) handle(m);
        }
      }
    })();
  });
  await finished;
  acks.flush();
  await nc.flush();
  return (performance.now() - t0) / 1000;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const rounds = int(args, "rounds", 5);
  const messages = int(args, "messages", 10_000);
  const devices = int(args, "devices", 100);
  const list = args.get("variants");
  const only = typeof list === "string" ? list.split(",").map(Number) : undefined;
  const variants = only === undefined ? VARIANTS : only.map((i) => VARIANTS[i]!);
  note("machine", { loadavg: (await import("node:os")).loadavg().map((x) => round(x, 2)), variants: variants.map((v) => v.name) });
  // --prof-port P: nats-server's pprof on 127.0.0.1:P (curl /debug/pprof/profile during a slow round)
  const profPort = args.get("prof-port");
  await using ns = await startNatsServer(typeof profPort === "string" ? { extraConfig: `prof_port: ${profPort}\n` } : {});
  const nc = await connectNats({ servers: ns.url, name: "bench stall" });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const prefixes = variants.map((_, i) => `v${i}`);
  for (const [i, v] of variants.entries()) {
    const p = prefixes[i]!;
    for (const s of v.streams(p)) await jsm.streams.add(s);
    // the other traffic of the output stream: each device's subscription list
    for (let d = 0; d < devices; d++) await js.publish(v.listSubject(p, `bench-${d}`), encode({ deviceId: `bench-${d}`, revision: [1, 0], subscriptions: [{ id: "hook", provider: "webhook", match: {}, target: "http://127.0.0.1:9/hook" }] }), { headers: msgpackHeaders() });
    const { stream, config } = v.consumer(p);
    await jsm.consumers.add(stream, config);
  }
  const rates = variants.map(() => [] as number[]);
  const serverUs = variants.map(() => [] as number[]);
  for (let r = 0; r <= rounds; r++) {
    for (const [i, v] of variants.entries()) {
      const p = prefixes[i]!;
      await publishBacklog(js, v, p, r, messages, devices);
      const published = performance.now();
      await v.ready?.(nc, p, (r + 1) * messages);
      const catchUpMs = Math.round(performance.now() - published);
      // a connection per drain, closed after it, as the bench's runner does
      const rnc = await connectNats({ servers: ns.url, name: "bench stall drain" });
      const cpu0 = cpuMs(ns.pid);
      const s = await drain(rnc, v, p, messages);
      const cpu = cpuMs(ns.pid) - cpu0;
      await rnc.close();
      const rate = messages / s;
      note(r === 0 ? "warm-up" : "round", { round: r, variant: v.name, perS: Math.round(rate), serverUsPerMsg: Math.round((cpu * 1000) / messages), ...(v.ready === undefined ? {} : { catchUpMs }) });
      if (r > 0) {
        rates[i]!.push(rate);
        serverUs[i]!.push((cpu * 1000) / messages);
      }
    }
  }
  await nc.close();
  for (const [i, v] of variants.entries()) {
    emit({
      suite: SUITE, name: v.name, value: round(median(rates[i]!)), unit: "deliveries/s",
      detail: { rounds: rates[i]!.map((x) => Math.round(x)), serverUsPerMsg: serverUs[i]!.map((x) => Math.round(x)), messages, devices, partnerMs: PARTNER_MS, inFlight: IN_FLIGHT },
    });
  }
}
