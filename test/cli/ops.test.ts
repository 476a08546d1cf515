// `airtwin ops` as an operator meets it, against real nats-servers and a real `airtwin node`: it finds
// the running dev cluster through the data dir, names the server it talks to (password masked), creates
// nothing on a server without an airtwin cluster, refuses bad and unregistered device ids, and sums
// the cluster up for a human unless --json.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getFreePort, startNatsServer, waitFor, type TestNatsServer } from "../harness/mod.ts";
import { AirtwinProcess, FAST_ENV, runAirtwin } from "../e2e/processes.ts";

const PREFIX = "opscli";
let ns: TestNatsServer;
let bare: TestNatsServer;
let node: AirtwinProcess;
let dataDir: string;
let env: Record<string, string | undefined>;

async function streamNames(url: string): Promise<string[]> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const out: string[] = [];
    for await (const s of jsm.streams.list()) out.push(s.config.name);
    return out.sort();
  } finally {
    await nc.close();
  }
}

beforeAll(async () => {
  [ns, bare] = await Promise.all([startNatsServer(), startNatsServer()]);
  dataDir = mkdtempSync(join(tmpdir(), "airtwin-ops-"));
  // what `airtwin dev` leaves for ops: the URL of its nats-server, whose port changes on every start
  writeFileSync(join(dataDir, "nats.url"), `${ns.url}\n`);
  env = { NATS_URL: undefined, AIRTWIN_DATA_DIR: dataDir, AIRTWIN_PREFIX: PREFIX, AIRTWIN_SHARDS: "4", AIRTWIN_LOG_LEVEL: "warn", ...FAST_ENV };
  node = new AirtwinProcess("n1", ["node"], { ...env, NATS_URL: ns.url, AIRTWIN_NODE_ID: "ops-n1" });
  await waitFor(() => node.output().includes('"node ready"') || (!node.running && Promise.reject(new Error(node.output()))), {
    timeoutMs: 60_000,
    message: "node ready",
  });
  // every shard owned before the summary is checked
  await waitFor(async () => {
    const r = await runAirtwin(["ops", "cluster", "--json"], env);
    return r.code === 0 && (JSON.parse(r.stdout) as { shards: Array<{ owner: string | null }> }).shards.every((s) => s.owner === "ops-n1");
  }, { timeoutMs: 60_000, message: "the node owns every shard" });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await Promise.all([ns?.stop(), bare?.stop()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("airtwin ops", () => {
  it("finds the dev cluster through the data dir and sums the cluster up (JSON with --json)", { timeout: 60_000 }, async () => {
    const r = await runAirtwin(["ops", "cluster"], env);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`airtwin ops: NATS at ${ns.url} (${join(dataDir, "nats.url")}, written by airtwin dev)`);
    expect(r.stdout).toMatch(/^coordinator\s+ops-n1 \(epoch \d+\)$/m);
    expect(r.stdout).toMatch(/^ops-n1\s+live\s+4\s+\d+\s+0-3$/m);
    expect(r.stdout).toMatch(/^unowned\s+none$/m);
    expect(r.stdout.split("\n").length).toBeLessThan(12);
    const json = await runAirtwin(["ops", "cluster", "--json"], env);
    const view = JSON.parse(json.stdout) as { nodes: Array<{ nodeId: string }>; shards: unknown[] };
    expect(view.nodes.map((n) => n.nodeId)).toEqual(["ops-n1"]);
    expect(view.shards).toHaveLength(4);
  });

  it("refuses a server without an airtwin cluster and creates nothing there", { timeout: 60_000 }, async () => {
    for (const args of [["cluster"], ["device", "list"], ["twin", "get", "dev-1"], ["user", "create", "alice"]]) {
      const r = await runAirtwin(["ops", ...args], { ...env, NATS_URL: bare.url });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(`airtwin ops: NATS at ${bare.url} (NATS_URL)`);
      expect(r.out).toContain("AIRTWIN_ERR_OPS_NO_CLUSTER");
      expect(r.stdout).toBe("");
    }
    expect(await streamNames(bare.url)).toEqual([]);
  });

  it("masks the password of the server it names", { timeout: 60_000 }, async () => {
    const port = await getFreePort();
    const r = await runAirtwin(["ops", "cluster"], { ...env, NATS_URL: `nats://ops:s3cret@127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.out).toContain(`NATS at nats://ops:***@127.0.0.1:${port} (NATS_URL)`);
    expect(r.out).not.toContain("s3cret");
  });

  it("lists no devices of a cluster without a registry, without creating the registry", { timeout: 60_000 }, async () => {
    const r = await runAirtwin(["ops", "device", "list"], env);
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ devices: [] });
    const missing = await runAirtwin(["ops", "twin", "get", "dev-1"], env);
    expect(missing.code).toBe(1);
    expect(missing.out).toContain("AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND");
    expect(await streamNames(ns.url)).not.toContain(`KV_${PREFIX}-registry`);
  });

  it("refuses invalid device ids and unregistered devices, and shows a registered one's twin", { timeout: 60_000 }, async () => {
    for (const id of ["", ">", "bad/id", "a.b"]) {
      const r = await runAirtwin(["ops", "twin", "get", id], env);
      expect(r.code, `${JSON.stringify(id)}: ${r.out}`).toBe(1);
      expect(r.out).toContain("AIRTWIN_ERR_DEVICE_ID_INVALID");
      expect(r.stdout).toBe("");
    }
    expect((await runAirtwin(["ops", "user", "create", "alice"], env)).code).toBe(0);
    expect((await runAirtwin(["ops", "device", "create", "dev-1", "--owner", "alice"], env)).code).toBe(0);
    const nosuch = await runAirtwin(["ops", "twin", "get", "nosuch"], env);
    expect(nosuch.code).toBe(1);
    expect(nosuch.out).toContain("AIRTWIN_ERR_REGISTRY_DEVICE_NOT_FOUND");
    expect(nosuch.out).toContain('no device "nosuch" is registered');
    expect(nosuch.stdout).toBe("");
    const twin = await runAirtwin(["ops", "twin", "get", "dev-1"], env);
    expect(twin.code, twin.out).toBe(0);
    expect(JSON.parse(twin.stdout)).toMatchObject({ readings: 0 });
  });

  it("imports a device file: refused whole for a bad line, then one token per device, registered ones reported", { timeout: 60_000 }, async () => {
    expect((await runAirtwin(["ops", "user", "create", "importer"], env)).code).toBe(0);
    const file = join(dataDir, "devices.csv");
    writeFileSync(file, "deviceId,ownerId\nimp-1\nimp-2,importer\nbad.id\n");
    const refused = await runAirtwin(["ops", "device", "import", file, "--owner", "importer"], env);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("AIRTWIN_ERR_REGISTRY_IMPORT_INVALID");
    expect((await runAirtwin(["ops", "device", "list", "--owner", "importer"], env)).stdout).not.toContain("imp-1");
    writeFileSync(file, 'deviceId,ownerId\nimp-1\nimp-2,importer\n{"deviceId":"imp-3"}\n');
    const first = await runAirtwin(["ops", "device", "import", file, "--owner", "importer"], env);
    expect(first.code, first.out).toBe(0);
    const lines = first.stdout.trim().split("\n").map((l) => JSON.parse(l) as { deviceId: string; token?: string });
    expect(lines.map((l) => l.deviceId)).toEqual(["imp-1", "imp-2", "imp-3"]);
    expect(lines.every((l) => typeof l.token === "string" && l.token.length === 43)).toBe(true);
    const again = await runAirtwin(["ops", "device", "import", file, "--owner", "importer"], env);
    expect(again.code, again.out).toBe(0);
    expect(again.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { code: string }).code)).toEqual(Array(3).fill("AIRTWIN_ERR_REGISTRY_DEVICE_EXISTS"));
    const listed = JSON.parse((await runAirtwin(["ops", "device", "list", "--owner", "importer"], env)).stdout) as { devices: Array<{ deviceId: string }> };
    expect(listed.devices.map((d) => d.deviceId)).toEqual(["imp-1", "imp-2", "imp-3"]);
  });
});
