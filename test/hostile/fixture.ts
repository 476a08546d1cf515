// A real nats-server, a gateway's parts (HTTP app and NATS services) and nodes of the device twin whose
// log lines are kept, for the tests that throw garbage at what the system consumes.
import { deviceTwinBehavior } from "../../actors/device-twin/behavior.ts";
import { startNode, type RunningNode } from "../../runtime/mod.ts";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { GatewayFixture } from "../gateway/fixture.ts";

export interface LogLine {
  node: string;
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export class HostileCluster implements AsyncDisposable {
  readonly logs: LogLine[] = [];

  private constructor(
    readonly server: TestNatsServer,
    readonly f: GatewayFixture,
    readonly shards: number,
  ) {}

  static async start(shards = 4): Promise<HostileCluster> {
    const server = await startNatsServer();
    const f = await GatewayFixture.start(server, { shards, node: false });
    const c = new HostileCluster(server, f, shards);
    await c.node("n1");
    await f.ready();
    f.parts.serve();
    return c;
  }

  /** Starts a node whose log lines land in `logs`. */
  async node(nodeId: string): Promise<RunningNode> {
    const node = await startNode({
      nc: await this.f.connect(),
      nodeId,
      prefix: this.f.prefix,
      shards: this.shards,
      streams: 1,
      replicas: 1,
      behaviors: [deviceTwinBehavior()],
      defaultMetrics: false,
      log: (level, msg, fields) => void this.logs.push({ node: nodeId, level, msg, ...(fields === undefined ? {} : { fields }) }),
      runner: { commitIntervalMs: 100, wakeIntervalMs: 50 },
      ownership: { heartbeatMs: 200, nodeTtlMs: 1000, leaseTtlMs: 1000, rebalanceIntervalMs: 200 },
    });
    this.f.nodes.push(node);
    return node;
  }

  errors(): LogLine[] {
    return this.logs.filter((l) => l.level === "error");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.f[Symbol.asyncDispose]();
    await this.server.stop();
  }
}
