// deploy/local-cluster.ts as an operator runs it: 3 nats-servers in a JetStream cluster, 3 nodes,
// 2 gateways and the archive come up; every stream is replicated 3 times and the input is split into 3
// streams; a device registered through one gateway posts to the other at once, its reading in the twin
// read from the first and in the archive;
// SIGTERM stops every process (ports free, NATS servers gone).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { connectNats } from "../../runtime/mod.ts";
import { getFreePort, isPortFree } from "../harness/free-port.ts";
import { processSchemaEnv } from "../harness/process-schema.ts";
import { waitFor } from "../harness/wait-for.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "airtwin-local-cluster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("deploy/local-cluster.ts", () => {
  it("runs a replicated cluster that serves across gateways and stops whole on SIGTERM", { timeout: 300_000 }, async () => {
    const base = await getFreePort();
    const env: NodeJS.ProcessEnv = { ...process.env, ...processSchemaEnv(dir), AIRTWIN_HTTP_PORT: String(base) };
    delete env.NATS_URL;
    delete env.AIRTWIN_ADMIN_TOKEN;
    delete env.AIRTWIN_DATA_DIR;
    const child = spawn(process.execPath, ["--import", "tsx", "deploy/local-cluster.ts", "--dir", dir], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      // an exit ends the wait at once (a throw inside waitFor would only be retried until its deadline)
      await waitFor(() => child.exitCode !== null || output.includes("Ctrl-C stops everything"), { timeoutMs: 200_000, intervalMs: 250, message: "the local cluster is up" });
      if (child.exitCode !== null) throw new Error(`local cluster exited:\n${output}`);
      const gateways = /^GATEWAY_URLS=(\S+)$/m.exec(output)![1]!.split(",");
      const natsUrl = /^NATS_URL=(\S+)$/m.exec(output)![1]!;
      const token = /^AIRTWIN_ADMIN_TOKEN=(\S+)$/m.exec(output)![1]!;
      expect(gateways).toHaveLength(2);
      expect(natsUrl.split(",")).toHaveLength(3);
      expect(readFileSync(join(dir, "admin-token"), "utf8").trim()).toBe(token);

      // replicated streams: 3 input streams, every airtwin stream on 3 servers
      const nc = await connectNats({ servers: natsUrl.split(","), name: "local cluster test" });
      try {
        const jsm = await jetstreamManager(nc);
        const streams = await jsm.streams.list().next();
        const ours = streams.filter((s) => s.config.name.startsWith("AIRTWIN_") || s.config.name.startsWith("KV_airtwin"));
        expect(ours.filter((s) => /^AIRTWIN_IN/.test(s.config.name))).toHaveLength(3);
        for (const s of ours) expect(s.config.num_replicas, s.config.name).toBe(3);
      } finally {
        await nc.close();
      }

      const call = async (url: string, method: string, path: string, body?: unknown, key = token) => {
        const r = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: r.status, body: (await r.json().catch(() => null)) as Record<string, unknown> };
      };
      const cluster = await call(gateways[0]!, "GET", "/v1/ops/cluster");
      expect((cluster.body.nodes as Array<{ nodeId: string }>).map((n) => n.nodeId).sort()).toEqual(["local-node-1", "local-node-2", "local-node-3"]);
      expect((await call(gateways[0]!, "POST", "/v1/users", { userId: "alice" })).status).toBe(201);
      const device = await call(gateways[0]!, "POST", "/v1/devices", { deviceId: "lab", ownerId: "alice" });
      expect(device.status).toBe(201);
      const t = Date.now() - 60_000;
      // at once on the other gateway, the first request: a device its registry watch has not brought yet
      // is looked up in the bucket before the answer (docs/gateway.md, Registry)
      const posted = await call(gateways[1]!, "POST", "/v1/devices/lab/readings", { readings: [{ t, co2: 612 }, { t: t + 1000, co2: 640 }] }, device.body.token as string);
      expect(posted.status, JSON.stringify(posted.body)).toBe(202);
      const twin = await waitFor(async () => {
        const r = await call(gateways[0]!, "GET", "/v1/devices/lab");
        return r.body?.readings === 2 ? r.body : undefined;
      }, { timeoutMs: 30_000, message: "the twin read through the other gateway" });
      expect((twin.channels as { co2: { last: number } }).co2.last).toBe(640);
      await waitFor(async () => ((await call(gateways[1]!, "GET", "/v1/devices/lab/readings")).body?.readings as unknown[] | undefined)?.length === 2, {
        timeoutMs: 120_000,
        intervalMs: 500,
        message: "the readings in the archive",
      });

      const natsPids = readdirSync(join(dir, "nats")).map((n) => readdirSync(join(dir, "nats", n)).find((f) => f.endsWith(".ports")));
      expect(natsPids.filter(Boolean)).toHaveLength(3);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(output).toContain("local cluster: stopped");
      for (const g of gateways) expect(await isPortFree(Number(new URL(g).port))).toBe(true);
      for (const url of natsUrl.split(",")) expect(await isPortFree(Number(new URL(url).port))).toBe(true);
    } finally {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    }
  });
});
