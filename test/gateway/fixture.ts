// The gateway's parts against a real nats-server with one real in-process node (the device twin), so
// `app.inject()` tests exercise the real registry, client, twin and output stream. Each fixture uses its
// own subject prefix; failures are injected at the gateway's interfaces (backend, health, ops), never by
// mocking NATS.
import type { NatsConnection } from "@nats-io/nats-core";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { deviceTwinBehavior } from "../../actors/device-twin/behavior.ts";
import { TwinApi, type TwinApiDeps } from "../../gateways/api/twin-api.ts";
import { buildApp, type AppDeps, type HttpOptions } from "../../gateways/http/app.ts";
import { assembleGateway, type AssembleOptions, type GatewayParts } from "../../gateways/http/gateway.ts";
import { connectNats, startNode, type RunningNode } from "../../runtime/mod.ts";
import type { TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let counter = 0;

export interface FixtureOptions {
  shards?: number;
  http?: HttpOptions;
  backend?: AssembleOptions["backend"];
  /** Start a node (default true). */
  node?: boolean;
  /** The runtime client's gathering (assembleGateway's defaults otherwise). */
  gather?: Pick<AssembleOptions, "gatherMs" | "gatherReadings">;
}

export class GatewayFixture implements AsyncDisposable {
  readonly prefix: string;
  app!: FastifyInstance;
  parts!: GatewayParts;
  nc!: NatsConnection;
  node: RunningNode | undefined;
  readonly nodes: RunningNode[] = [];
  private readonly conns: NatsConnection[] = [];
  private readonly apps: FastifyInstance[] = [];

  private constructor(
    readonly server: TestNatsServer,
    readonly shards: number,
  ) {
    this.prefix = `gw${process.pid}x${++counter}`;
  }

  static async start(server: TestNatsServer, o: FixtureOptions = {}): Promise<GatewayFixture> {
    const f = new GatewayFixture(server, o.shards ?? 4);
    f.nc = await f.connect();
    if (o.node !== false) f.node = await f.startNode("n1");
    f.parts = await assembleGateway(f.nc, {
      prefix: f.prefix,
      shards: f.shards,
      streams: 1,
      replicas: 1,
      defaultMetrics: false,
      ackTimeoutMs: 2000,
      ...(o.backend === undefined ? {} : { backend: o.backend }),
      ...o.gather,
    });
    f.app = await f.buildApp({ ...(o.http === undefined ? {} : { options: o.http }) });
    return f;
  }

  async connect(): Promise<NatsConnection> {
    const nc = await connectNats({ servers: this.server.url, name: "gateway test" });
    this.conns.push(nc);
    return nc;
  }

  async startNode(nodeId: string): Promise<RunningNode> {
    const node = await startNode({
      nc: await this.connect(),
      nodeId,
      prefix: this.prefix,
      shards: this.shards,
      streams: 1,
      replicas: 1,
      behaviors: [deviceTwinBehavior()],
      defaultMetrics: false,
      log: () => undefined,
      runner: { commitIntervalMs: 100, wakeIntervalMs: 50 },
      ownership: { heartbeatMs: 200, nodeTtlMs: 1000, leaseTtlMs: 1000, rebalanceIntervalMs: 200 },
    });
    this.nodes.push(node);
    return node;
  }

  /** Another app on the same parts, with other options or dependencies. */
  async buildApp(over: Partial<AppDeps> = {}): Promise<FastifyInstance> {
    const app = await buildApp({ ...this.parts.deps, adminToken: ADMIN_TOKEN, ...over });
    this.apps.push(app);
    return app;
  }

  /** A TwinApi on the fixture's parts with some dependencies replaced (failure injection). */
  twinApi(over: Partial<TwinApiDeps>): TwinApi {
    return new TwinApi({ ...this.parts.twinDeps, ...over });
  }

  /** Waits until every shard has an owner answering live queries. */
  async ready(): Promise<void> {
    await waitFor(
      async () => {
        for (let i = 0; i < this.shards * 4; i++) {
          const r = await this.parts.client.get("twin", `probe-${i}`, null, { timeoutMs: 300 }).catch(() => undefined);
          if (r?.ok !== true) return false;
        }
        return true;
      },
      { timeoutMs: 20_000, message: "every shard owned" },
    );
  }

  async user(userId: string): Promise<{ userId: string; apiKey: string; headers: Record<string, string> }> {
    const r = await this.app.inject({ method: "POST", url: "/v1/users", headers: admin, payload: { userId } });
    if (r.statusCode !== 201) throw new Error(`create user: ${r.statusCode} ${r.body}`);
    const { apiKey } = r.json<{ apiKey: string }>();
    return { userId, apiKey, headers: bearer(apiKey) };
  }

  async device(deviceId: string, ownerId: string): Promise<{ deviceId: string; token: string; headers: Record<string, string> }> {
    const r = await this.app.inject({ method: "POST", url: "/v1/devices", headers: admin, payload: { deviceId, ownerId } });
    if (r.statusCode !== 201) throw new Error(`create device: ${r.statusCode} ${r.body}`);
    const { token } = r.json<{ token: string }>();
    return { deviceId, token, headers: bearer(token) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const app of this.apps) await app.close().catch(() => undefined);
    await this.parts?.close().catch(() => undefined);
    for (const n of this.nodes) await n.close().catch(() => undefined);
    for (const nc of this.conns) await nc.close().catch(() => undefined);
  }
}

/** The error body of a response, checked for the shape every error has. */
export function errorOf(r: LightMyRequestResponse): { statusCode: number; code: string; error: string; message: string; details?: unknown } {
  const body = r.json<{ statusCode: number; code: string; error: string; message: string; details?: unknown }>();
  if (body.statusCode !== r.statusCode || typeof body.code !== "string" || typeof body.error !== "string" || typeof body.message !== "string") {
    throw new Error(`not an error body: ${r.statusCode} ${r.body}`);
  }
  if (/\bat .*\(.*:\d+:\d+\)|node_modules|\.ts:\d+/.test(r.body)) throw new Error(`error body leaks internals: ${r.body}`);
  return body;
}

export { sse } from "../harness/sse.ts";

/** Listens on a free port of 127.0.0.1; the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  if (addr === null || typeof addr === "string") throw new Error("no address");
  return `http://127.0.0.1:${addr.port}`;
}
