// A process started while its NATS cluster has no quorum waits for one instead of exiting: the cluster
// setup every process does first (cluster bucket, meta record, streams) and the gateway's registry ask
// again until JetStream answers. Found by the chaos run, where a gateway started beside a freshly
// created R3 registry bucket exited on "cannot read the registry bucket: timeout".
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "../../gateways/registry/registry.ts";
import { connectNats, ensureClusterForClients, names, RuntimeError } from "../../runtime/mod.ts";
import { startNatsCluster, type TestNatsCluster } from "../harness/nats-cluster.ts";

let cluster: TestNatsCluster;

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("a start on a 3-server cluster without quorum", () => {
  it("cluster setup (bucket, meta, streams) waits for the quorum, then finds what exists", { timeout: 120_000 }, async () => {
    const o = { shards: 8, streams: 2, replicas: 3 };
    const nc = await connectNats({ servers: cluster.urls.join(","), reconnectTimeWaitMs: 100 });
    try {
      await ensureClusterForClients(nc, names("quorum"), o);
    } finally {
      await nc.close();
    }
    const [survivor, ...lost] = cluster.servers;
    await Promise.all(lost.map((m) => m.kill()));
    const nc2 = await connectNats({ servers: survivor!.url, reconnectTimeWaitMs: 100 });
    try {
      let settled = false;
      const setup = ensureClusterForClients(nc2, names("quorum"), o).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 3000));
      expect(settled).toBe(false); // still asking, not failed
      await Promise.all(lost.map((m) => m.restart({ ready: "listening" })));
      await setup;
      // and a count the cluster was not created with is still refused, once it can be read
      await expect(ensureClusterForClients(nc2, names("quorum"), { ...o, shards: 16 })).rejects.toMatchObject({ code: "AIRTWIN_ERR_SHARDS_MISMATCH" });
    } finally {
      await nc2.close();
    }
    await cluster.waitForHealthy(30_000);
  });

  it("waits for the bucket while the cluster has no quorum, then loads every entry", { timeout: 120_000 }, async () => {
    const prefix = "regq";
    const nc = await connectNats({ servers: cluster.urls.join(","), reconnectTimeWaitMs: 100 });
    try {
      const first = await Registry.open(nc, { prefix, replicas: 3 });
      await first.createUser("u1");
      await first.createDevice("d1", "u1");
      await first.close();

      // two of three servers gone: no meta leader, no stream leader
      const [survivor, ...lost] = cluster.servers;
      await Promise.all(lost.map((m) => m.kill()));
      const nc2 = await connectNats({ servers: survivor!.url, reconnectTimeWaitMs: 100 });
      try {
        let settled = false;
        const opening = Registry.open(nc2, { prefix, replicas: 3, startWithinMs: 90_000 }).finally(() => (settled = true));
        await new Promise((r) => setTimeout(r, 3000));
        expect(settled).toBe(false); // still asking, not failed
        await Promise.all(lost.map((m) => m.restart({ ready: "listening" })));
        const second = await opening;
        expect(second.device("d1")).toMatchObject({ deviceId: "d1", ownerId: "u1", disabled: false });
        await second.close();
      } finally {
        await nc2.close();
      }
    } finally {
      await nc.close();
    }
  });

  it("gives up with a coded error when the cluster does not come back within startWithinMs", { timeout: 60_000 }, async () => {
    await cluster.waitForHealthy(30_000);
    const [survivor, ...lost] = cluster.servers;
    await Promise.all(lost.map((m) => m.kill()));
    const nc = await connectNats({ servers: survivor!.url, reconnectTimeWaitMs: 100 });
    try {
      const t0 = Date.now();
      const err = await Registry.open(nc, { prefix: "regq", replicas: 3, startWithinMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).code).toBe("AIRTWIN_ERR_NATS_UNAVAILABLE");
      // one attempt in flight when the time is up may wait out its own request timeout
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await nc.close();
      await Promise.all(lost.map((m) => m.restart()));
    }
  });
});
