// Ownership on a connection of its own (StartNodeOptions.ownershipNc): nats-server answers what one
// connection sends in order, so while it is slow with the shards' requests (here: their connection
// stalled in a TCP proxy for three lease TTLs) renewals sent on that connection come too late and every
// shard is aborted; sent on their own connection they keep every lease, and the shards go on where they
// were once the stall ends.
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { RuntimeClient } from "../../../runtime/client.ts";
import { startNode } from "../../../runtime/node.ts";
import { stallProxy } from "../../harness/tcp-stall.ts";
import { waitFor } from "../../harness/wait-for.ts";
import { counterBehavior } from "../counter-behavior.ts";
import { counterState, natsForFile } from "../fixture.ts";

const nats = natsForFile();
const SHARDS = 2;

async function stallShardsConnection(prefix: string, ownConnection: boolean) {
  const url = new URL(nats.server.url);
  const proxy = await stallProxy(url.hostname, Number(url.port));
  const nc = await connect({ servers: proxy.hostPort, noAsyncTraces: true });
  const ownershipNc = ownConnection ? await nats.conn() : undefined;
  const aborted: string[] = [];
  const node = await startNode({
    nc,
    ...(ownershipNc === undefined ? {} : { ownershipNc }),
    nodeId: "n1",
    prefix,
    shards: SHARDS,
    streams: 1,
    replicas: 1,
    behaviors: [counterBehavior],
    defaultMetrics: false,
    log: (_level, msg, fields) => void (msg === "shard aborted" && aborted.push(String(fields?.reason))),
    ownership: { heartbeatMs: 200, nodeTtlMs: 1000, leaseTtlMs: 1000, rebalanceIntervalMs: 200 },
    runner: { commitIntervalMs: 50 },
  });
  const client = new RuntimeClient(await nats.conn(), { prefix, shards: SHARDS });
  try {
    await waitFor(() => node.ownership.held().length === SHARDS, { message: "n1 holds both shards" });
    await client.send("counter", "c1", "add", { v: 1 });
    await waitFor(async () => (await counterState(client, "c1")).n === 1, { message: "first add applied" });
    proxy.stall();
    await new Promise((r) => setTimeout(r, 3000));
    proxy.resume();
    await client.send("counter", "c1", "add", { v: 2 });
    await waitFor(async () => (await counterState(client, "c1")).n === 2, { timeoutMs: 15_000, message: "an add after the stall applied" });
    return { aborted, held: node.ownership.held().length };
  } finally {
    await node.close();
    await client.close();
    await nc.close();
    await proxy.close();
  }
}

describe("ownership's own connection", () => {
  it("on the shards' connection, a 3 s stall of it loses every lease (the reference)", { timeout: 60_000 }, async () => {
    const r = await stallShardsConnection("ownshared", false);
    expect(r.aborted.length).toBeGreaterThanOrEqual(SHARDS);
    expect(r.aborted.every((reason) => /lease not renewed in time/.test(reason))).toBe(true);
  });

  it("on a connection of its own, the same stall loses no lease and the shards go on", { timeout: 60_000 }, async () => {
    const r = await stallShardsConnection("ownsplit", true);
    expect(r.aborted).toEqual([]);
    expect(r.held).toBe(SHARDS);
  });
});
