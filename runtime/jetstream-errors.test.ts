// The JetStream failures the runtime tells apart, as a real nats-server reports them: a KV key taken
// (a restore keeps the live entry) is neither a missing stream nor a timeout (both asked again).

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { isCasConflict, isStreamNotFound } from "./jetstream-errors.ts";

it("tells a taken KV key from a missing stream", async () => {
  await using ns = await startNatsServer();
  const nc = await connect({ servers: ns.url });
  try {
    const kv = await new Kvm(jetstream(nc, { timeout: 1000 })).create("errors_probe", { history: 1 });
    await kv.create("devices.a", "1");
    const taken = await kv.create("devices.a", "2").catch((err: unknown) => err);
    expect(isCasConflict(taken)).toBe(true);
    expect(isStreamNotFound(taken)).toBe(false);
    expect((await kv.get("devices.a"))?.string()).toBe("1");

    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete("KV_errors_probe");
    const notFound = await jsm.streams.info("KV_errors_probe").catch((err: unknown) => err);
    expect(isStreamNotFound(notFound)).toBe(true);
    expect(isCasConflict(notFound)).toBe(false);
    // a create into a missing bucket: no responders, then the get that follows times out — not "taken"
    const missing = await kv.create("devices.b", "1").catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(Error);
    expect(isCasConflict(missing)).toBe(false);
  } finally {
    await nc.close();
  }
});
