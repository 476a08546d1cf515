// Garbage on every other subject and bucket the system consumes, against a real nats-server, nodes and
// a gateway: the NATS API (`<prefix>.api.get|cmd.<id>`), the shards' query subjects, the ops subjects,
// hand-off announcements, the output stream (read back by the alerts and events routes and the live
// feed), the registry and cluster buckets, and a shard's snapshot bucket. Each answers with an error or
// skips it; no process crashes, no shard is left without an owner, and valid work goes on.
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { STATUS_HEADER } from "../../gateways/api/nats-service.ts";
import { decode, encode, msgpackHeaders, OpsClient, shardOf } from "../../runtime/mod.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer } from "../gateway/fixture.ts";
import { HostileCluster } from "./fixture.ts";

const SHARDS = 4;
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const random = rng(42);

let c: HostileCluster;
let nc: NatsConnection;
const tokens: Record<string, string> = {};

/** Payloads no well-behaved client sends. */
const GARBAGE: Uint8Array[] = [
  new Uint8Array(),
  Uint8Array.from({ length: 48 }, () => Math.floor(random() * 256)),
  encode(42),
  encode(null),
  encode({ type: 7, rule: "x", q: [1, 2, 3] }),
  encode([1, 2, [3, [4, [5]]]]),
  encode({ v: 99, epoch: "soon", deviceIds: "all" }),
  encode("x".repeat(500_000)),
  encode({ a: 1 }).subarray(0, 2),
];

beforeAll(async () => {
  c = await HostileCluster.start(SHARDS);
  nc = await c.f.connect();
  await c.f.user("owner");
  for (const id of ["sub-1", "sub-2", "sub-3"]) tokens[id] = (await c.f.device(id, "owner")).token;
});

afterAll(async () => {
  await c?.[Symbol.asyncDispose]();
});

async function post(id: string, readings: Array<{ t: number; pm: number }>): Promise<void> {
  const r = await c.f.app.inject({ method: "POST", url: `/v1/devices/${id}/readings`, headers: bearer(tokens[id]!), payload: { readings } });
  expect(r.statusCode, r.body).toBe(202);
}

async function twin(id: string): Promise<TwinView> {
  const r = await c.f.app.inject({ method: "GET", url: `/v1/devices/${id}`, headers: admin });
  expect(r.statusCode, r.body).toBe(200);
  return r.json<TwinView>();
}

/** Valid work still goes through: readings posted now are applied. */
async function stillServing(id: string, t: number): Promise<void> {
  const before = (await twin(id)).readings;
  await post(id, [{ t, pm: 5 }]);
  await waitFor(async () => (await twin(id)).readings === before + 1, { timeoutMs: 20_000, message: `${id} applies new readings` });
}

describe("garbage on subjects", () => {
  it("the NATS API answers every garbage request with a 4xx in the error shape", async () => {
    for (const verb of ["get", "cmd"]) {
      for (const data of GARBAGE) {
        const m = await nc.request(`${c.f.prefix}.api.${verb}.sub-1`, data, { timeout: 5000 });
        const status = Number(m.headers?.get(STATUS_HEADER));
        // an empty or ignored body on get is a valid read
        if (verb === "get" && status === 200) continue;
        expect(status, `${verb} ${Buffer.from(data.subarray(0, 16)).toString("hex")}`).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        expect(decode<{ code: string }>(m.data).code).toMatch(/^AIRTWIN_ERR_/);
      }
    }
    await stillServing("sub-1", T0);
  });

  it("shard query subjects, ops subjects and hand-off announcements answer or ignore garbage; the shards stay served", async () => {
    for (let shard = 0; shard < SHARDS; shard++) {
      for (const data of GARBAGE) {
        const m = await nc.request(`${c.f.prefix}.rpc.${shard}`, data, { timeout: 5000 });
        expect(decode<{ ok: boolean }>(m.data).ok).toBe(false);
        nc.publish(`${c.f.prefix}.handoff.${shard}`, data, { headers: msgpackHeaders() });
      }
    }
    for (const verb of ["cluster", "move", "drain", "rebalance", "nonsense"]) {
      for (const data of GARBAGE) {
        const m = await nc.request(`${c.f.prefix}.ops.${verb}`, data, { timeout: 5000 }).catch(() => undefined);
        // the coordinator answers; a garbage move or drain must not have done anything
        if (m !== undefined && verb !== "cluster" && verb !== "rebalance") expect(decode<{ ok: boolean }>(m.data).ok, verb).toBe(false);
      }
    }
    const cluster = await new OpsClient(nc, c.f.parts.names).cluster();
    expect(cluster.shards.filter((s) => s.owner === "n1")).toHaveLength(SHARDS);
    await stillServing("sub-1", T0 + 1000);
  });

  it("garbage on the output stream is skipped by the alerts and events routes and the live feed", async () => {
    const js = jetstream(nc);
    for (const data of GARBAGE) await js.publish(`${c.f.prefix}.out.alert.sub-2.pm.event.start`, data, { headers: msgpackHeaders() });
    // a valid alert too, so the routes have something to show
    await c.f.app.inject({
      method: "POST",
      url: "/v1/devices/sub-2/commands",
      headers: admin,
      payload: { type: "putRule", rule: { id: "now", channel: "pm", direction: "above", enter: 50, exit: 40, minDurationMs: 0, clearDurationMs: 0 } },
    });
    await post("sub-2", [{ t: T0, pm: 80 }]);
    const from = T0 - 60_000;
    const alerts = await waitFor(async () => {
      const r = await c.f.app.inject({ method: "GET", url: `/v1/devices/sub-2/alerts?from=${from}`, headers: admin });
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json<{ alerts: Array<{ ruleId?: string }> }>();
      return body.alerts.length > 0 ? body.alerts : undefined;
    });
    expect(alerts.map((a) => a.ruleId)).toEqual(["now"]);
    const events = await c.f.app.inject({ method: "GET", url: `/v1/devices/sub-2/events?from=${from}`, headers: admin });
    expect(events.statusCode, events.body).toBe(200);
    expect(events.json<{ recent: unknown[] }>().recent).toHaveLength(1);
  });

  it("garbage in the registry and cluster buckets neither admits anyone nor stops a shard for long", async () => {
    const kvm = new Kvm(nc);
    const registry = await kvm.open(`${c.f.prefix}-registry`);
    for (const [i, data] of GARBAGE.entries()) {
      await registry.put(`devices.ghost-${i}`, data);
      await registry.put(`users.ghost-${i}`, data);
    }
    await registry.put("devices.sub-3", GARBAGE[2]!);
    const ghost = await c.f.app.inject({ method: "POST", url: "/v1/devices/ghost-1/readings", headers: bearer("anything"), payload: { readings: [{ t: T0, pm: 1 }] } });
    expect(ghost.statusCode).toBe(401);
    // a device whose record became garbage is unknown now: its token no longer opens anything
    await waitFor(async () => (await c.f.app.inject({ method: "POST", url: "/v1/devices/sub-3/readings", headers: bearer(tokens["sub-3"]!), payload: { readings: [{ t: T0, pm: 1 }] } })).statusCode === 401);

    const cluster = await kvm.open(`${c.f.prefix}-cluster`);
    const shard = shardOf("sub-1", SHARDS);
    for (const key of [`lease.${shard}`, `assign.${shard}`, "nodes.ghost", "drain.n1", "coordinator"]) await cluster.put(key, GARBAGE[1]!);
    // the owner loses the lease it can no longer read, takes it back, and the shard is served again
    await stillServing("sub-1", T0 + 2000);
    expect((await twin("sub-1")).readings).toBe(3);
    expect(c.logs.filter((l) => l.level === "error" && !/shard stopped/.test(l.msg))).toEqual([]);
  });

  it("an undecodable snapshot or checkpoint is dead-lettered and its entity starts afresh; the shard starts and keeps its other twins", async () => {
    // sub-1 and a twin on the same shard with state to keep
    const shard = shardOf("sub-1", SHARDS);
    let other = "";
    for (let i = 0; other === ""; i++) if (shardOf(`keep-${i}`, SHARDS) === shard) other = `keep-${i}`;
    tokens[other] = (await c.f.device(other, "owner")).token;
    await post(other, [{ t: T0, pm: 10 }, { t: T0 + 1000, pm: 20 }]);
    await waitFor(async () => (await twin(other)).readings === 2);
    const before = await twin("sub-1");
    // n1 hands every shard off (committed), the garbage goes where only an owner writes, and n2's start reads it
    await c.f.nodes[0]!.close();
    const snap = await new Kvm(nc).open(`${c.f.prefix}-snap-${shard}`);
    await snap.put("twin.sub-1", GARBAGE[1]!);
    await snap.put("_checkpoint", GARBAGE[4]!);
    const n2 = await c.node("n2");
    const ops = new OpsClient(nc, c.f.parts.names);
    await waitFor(async () => (await ops.cluster()).shards[shard]?.owner === "n2", { timeoutMs: 20_000, message: "n2 owns the shard" });
    await waitFor(async () => (await twin(other)).readings === 2, { timeoutMs: 20_000, message: "the other twin served by n2" });
    await stillServing(other, T0 + 5000);
    expect((await twin(other)).readings).toBe(3);
    // sub-1's snapshot was garbage: a fresh twin (it had readings before), served and applying
    expect(before.readings).toBeGreaterThan(0);
    await post("sub-1", [{ t: T0 + 9000, pm: 7 }]);
    await waitFor(async () => (await twin("sub-1")).readings >= 1);
    const metrics = await n2.runtime.metrics.registry.metrics();
    expect(metrics).toMatch(/airtwin_dead_letters_total\{source="snapshot",reason="undecodable"\} [12]/);
    expect(c.logs.some((l) => l.node === "n2" && l.msg === "snapshot dead-lettered")).toBe(true);
    expect(c.errors().filter((l) => l.node === "n2")).toEqual([]);
  });
});
