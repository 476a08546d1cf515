// The cluster harness starts three JetStream servers that elect a meta leader; an R3 KV bucket keeps
// serving reads and writes when one server is killed, the server rejoins on restart, and stop() cleans up.

import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { isPortFree } from "./free-port.ts";
import { startNatsCluster, type TestNatsCluster } from "./nats-cluster.ts";
import { waitFor } from "./wait-for.ts";

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startNatsCluster", () => {
  let cluster: TestNatsCluster;
  let nc: NatsConnection;

  beforeAll(async () => {
    cluster = await startNatsCluster({ size: 3 });
    nc = await connect({ servers: cluster.urls, noAsyncTraces: true, reconnectTimeWait: 50 });
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it("runs three named servers on distinct ports with a meta leader", async () => {
    expect(cluster.servers.map((s) => s.name)).toEqual(["n1", "n2", "n3"]);
    expect(new Set(cluster.urls).size).toBe(3);
    const leader = await cluster.waitForMetaLeader();
    expect(["n1", "n2", "n3"]).toContain(leader);
    const info = await (await jetstreamManager(nc)).getAccountInfo();
    expect(info.api.errors).toBe(0);
  });

  it("keeps an R3 KV bucket readable and writable with its stream leader killed, and the node rejoins", async () => {
    // short API timeouts: a request in flight to the killed server is lost and retried by waitFor
    const kv = await new Kvm(jetstream(nc, { timeout: 1000 })).create("harness_r3", { replicas: 3 });
    await kv.put("k", "v1");
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    const si = await jsm.streams.info("KV_harness_r3");
    expect(si.config.num_replicas).toBe(3);
    expect(si.cluster?.replicas).toHaveLength(2);
    const victim = cluster.servers.find((s) => s.name === si.cluster?.leader);
    expect(victim).toBeDefined();

    await victim!.kill("SIGKILL");
    expect(processExists(victim!.pid)).toBe(false);

    const e = await waitFor(() => kv.get("k"), { timeoutMs: 20_000, message: "KV read after leader loss" });
    expect(e.string()).toBe("v1");
    await waitFor(() => kv.put("k", "v2"), { timeoutMs: 20_000, message: "KV write after leader loss" });
    const newLeader = (await jsm.streams.info("KV_harness_r3")).cluster?.leader;
    expect(newLeader).toBeDefined();
    expect(newLeader).not.toBe(victim!.name);

    await victim!.restart();
    expect(victim!.running).toBe(true);
    // the restarted server catches up: its replica becomes current again
    await waitFor(
      async () => {
        const info = await jsm.streams.info("KV_harness_r3");
        const all = [{ name: info.cluster?.leader, current: true }, ...(info.cluster?.replicas ?? [])];
        return all.length === 3 && all.every((r) => r.current);
      },
      { timeoutMs: 20_000, message: "all three replicas current after restart" },
    );
    expect((await kv.get("k"))?.string()).toBe("v2");
  });
});

describe("cluster stop", () => {
  it("ends every process, frees every port and removes the temp dir", async () => {
    const cluster = await startNatsCluster({ size: 3 });
    const pids = cluster.servers.map((s) => s.pid);
    const ports = cluster.servers.flatMap((s) => [s.port, s.clusterPort]);
    // a member stopped on purpose stays stopped, and stop() still cleans up
    await cluster.servers[1]!.stop();
    expect(cluster.servers[1]!.running).toBe(false);
    await cluster.waitForMetaLeader();
    await cluster.stop();
    for (const pid of pids) expect(processExists(pid)).toBe(false);
    for (const port of ports) expect(await isPortFree(port)).toBe(true);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});
