// The provider's own stream (gateways/integrations/provider-stream.ts) against a real nats-server: it
// holds the provider's integration messages and nothing else of the output stream, with their
// Nats-Msg-Id; a cluster whose provider consumed the output stream directly (the layout before) moves
// over from that consumer's ack floor, without the acknowledged messages, and the old consumer is gone.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureProviderStream, providerStream } from "../../gateways/integrations/provider-stream.ts";
import { consumerName } from "../../gateways/integrations/runner.ts";
import { outputStreamConfig } from "../../runtime/cluster-setup.ts";
import { connectNats, encode, msgpackHeaders, names } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/mod.ts";

describe("a provider's stream", () => {
  let ns: TestNatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let n = 0;
  const logged: string[] = [];
  const log = (_level: string, msg: string) => void logged.push(msg);

  beforeAll(async () => {
    ns = await startNatsServer();
    nc = await connectNats({ servers: ns.url, name: "provider-stream test" });
    jsm = await jetstreamManager(nc);
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await ns?.stop();
  });

  const cluster = async () => {
    const prefix = `ps${n++}`;
    await jsm.streams.add(outputStreamConfig(names(prefix), { shards: 1, streams: 1, replicas: 1 }));
    return prefix;
  };
  const publish = (subject: string, id: string) => jetstream(nc).publish(subject, encode({ id }), { msgID: id, headers: msgpackHeaders() });
  const contents = async (stream: string) => {
    const info = await jsm.streams.info(stream);
    const out: Array<{ subject: string; id: string | undefined }> = [];
    for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
      const m = (await jsm.streams.getMessage(stream, { seq }))!;
      out.push({ subject: m.subject, id: m.header?.get("Nats-Msg-Id") });
    }
    return out;
  };

  it("holds the provider's messages only, as they are published, with their ids", async () => {
    const p = await cluster();
    await publish(`${p}.out.integration.webhook.d1`, "w1");
    await publish(`${p}.out.integration.email.d1`, "e1");
    await publish(`${p}.out.alert.d1.co2.event.start`, "a1");
    const stream = await ensureProviderStream(jsm, { prefix: p, provider: "webhook", durable: consumerName("webhook"), maxAgeMs: 86_400_000, log });
    expect(stream).toBe(providerStream(p, "webhook"));
    await publish(`${p}.out.integration.webhook.d2`, "w2");
    await waitFor(async () => (await jsm.streams.info(stream)).state.messages === 2, { message: "both webhook messages sourced" });
    expect(await contents(stream)).toEqual([
      { subject: `${p}.out.integration.webhook.d1`, id: "w1" },
      { subject: `${p}.out.integration.webhook.d2`, id: "w2" },
    ]);
    // a second start (or another process) finds it
    expect(await ensureProviderStream(jsm, { prefix: p, provider: "webhook", durable: consumerName("webhook"), maxAgeMs: 86_400_000, log })).toBe(stream);
  });

  it("takes over from the previous layout's consumer after its ack floor, and removes that consumer", async () => {
    const p = await cluster();
    const out = names(p).outputStream;
    for (const id of ["w1", "w2", "w3"]) await publish(`${p}.out.integration.webhook.d1`, id);
    await jsm.consumers.add(out, { durable_name: consumerName("webhook"), filter_subject: `${p}.out.integration.webhook.>`, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const old = await jetstream(nc).consumers.get(out, consumerName("webhook"));
    for (let i = 0; i < 2; i++) await (await old.next({ expires: 2000 }))!.ackAck();
    const stream = await ensureProviderStream(jsm, { prefix: p, provider: "webhook", durable: consumerName("webhook"), maxAgeMs: 86_400_000, log });
    await waitFor(async () => (await jsm.streams.info(stream)).state.messages >= 1, { message: "the unacknowledged message sourced" });
    await publish(`${p}.out.integration.webhook.d1`, "w4");
    await waitFor(async () => (await jsm.streams.info(stream)).state.messages >= 2, { message: "a new message sourced" });
    expect((await contents(stream)).map((m) => m.id)).toEqual(["w3", "w4"]);
    await expect(jsm.consumers.info(out, consumerName("webhook"))).rejects.toThrow();
    expect(logged).toContain("the provider's consumer moved to a stream of its own");
  });
});
