// The integrations test kit (the package's `airtwin/testing` entry): a real nats-server with JetStream in a
// temporary directory, one real node running device twins, and helpers to subscribe, send readings,
// publish integration messages and read dead letters — so an integration's author tests it exactly the
// way airtwin's own integration tests do. Needs `nats-server` on PATH (or AIRTWIN_NATS_SERVER).
//
//   await using bed = await startIntegrationTestbed();
//   await using running = await bed.run(myIntegration);
//   await bed.subscribe("dev-1", { id: "s1", provider: "my-partner", match: {}, target: "room-1" });
//   await bed.sendReadings("dev-1", readings);            // the twin raises alerts, the integration delivers
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deviceTwinBehavior, TWIN_TYPE, TwinInputKinds, type IntegrationMessage } from "../../actors/device-twin/behavior.ts";
import type { Reading, Subscription } from "../../actors/device-twin/domain/mod.ts";
import { spawnNatsServer, type NatsServerProcess } from "../../deploy/local-nats.ts";
import { connectNats, decode, encode, ensureClusterForClients, msgpackHeaders, names, RuntimeClient, startNode, type RunningNode } from "../../runtime/mod.ts";
import type { IntegrationDefinition } from "./define.ts";
import { IntegrationMetrics } from "./metrics.ts";
import { deadLetterStream, runIntegration, type DeadLetter, type RunIntegrationOptions, type RunningIntegration } from "./runner.ts";

export type { DeadLetter } from "./runner.ts";

/** Options of {@link startIntegrationTestbed}. */
export interface IntegrationTestbedOptions {
  /** Shards of the test cluster. Default 4. */
  shards?: number;
  /** Subject prefix. Default a unique one. */
  prefix?: string;
  /** An existing NATS server to use instead of starting one (its JetStream must be enabled). */
  natsUrl?: string;
  /** Start a node with device twins. Default true (false: only publish integration messages yourself). */
  node?: boolean;
}

let beds = 0;

export class IntegrationTestbed implements AsyncDisposable {
  readonly metrics = new IntegrationMetrics();
  private readonly running: RunningIntegration[] = [];
  private constructor(
    readonly natsUrl: string,
    readonly prefix: string,
    readonly shards: number,
    readonly nc: NatsConnection,
    readonly client: RuntimeClient,
    private readonly node: RunningNode | undefined,
    private readonly nodeNc: NatsConnection | undefined,
    private readonly server: NatsServerProcess | undefined,
    private readonly workDir: string | undefined,
  ) {}

  static async start(o: IntegrationTestbedOptions = {}): Promise<IntegrationTestbed> {
    let server: NatsServerProcess | undefined;
    let workDir: string | undefined;
    let natsUrl = o.natsUrl;
    if (natsUrl === undefined) {
      workDir = mkdtempSync(join(tmpdir(), "airtwin-testbed-"));
      server = await spawnNatsServer({ config: { port: -1, jetstream: { storeDir: workDir } }, workDir });
      natsUrl = server.url;
    }
    const prefix = o.prefix ?? `tb${process.pid}x${++beds}`;
    const shards = o.shards ?? 4;
    const nc = await connectNats({ servers: natsUrl, name: "integration testbed" });
    await ensureClusterForClients(nc, names(prefix), { shards, streams: 1, replicas: 1 });
    const client = new RuntimeClient(nc, { prefix, shards });
    const nodeNc = o.node === false ? undefined : await connectNats({ servers: natsUrl, name: "testbed node" });
    const node = nodeNc === undefined
      ? undefined
      : await startNode({
          nc: nodeNc,
          nodeId: "testbed-node",
          prefix, shards, streams: 1, replicas: 1,
          behaviors: [deviceTwinBehavior()],
          defaultMetrics: false,
          log: () => undefined,
          runner: { commitIntervalMs: 100, wakeIntervalMs: 50 },
          ownership: { heartbeatMs: 200, nodeTtlMs: 2000, leaseTtlMs: 2000, rebalanceIntervalMs: 200 },
        });
    const bed = new IntegrationTestbed(natsUrl, prefix, shards, nc, client, node, nodeNc, server, workDir);
    if (node !== undefined) await bed.untilTwinsAnswer();
    return bed;
  }

  /** Waits until every shard's twins answer queries (the node took its shards). */
  private async untilTwinsAnswer(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.shards * 4; ) {
      const r = await this.client.get(TWIN_TYPE, `probe-${i}`, null, { timeoutMs: 500 }).catch(() => undefined);
      if (r?.ok === true) i++;
      else if (Date.now() > deadline) throw new Error("testbed: the node did not take its shards in time");
      else await new Promise((res) => setTimeout(res, 50));
    }
  }

  /** Runs an integration against the testbed (stopped with the testbed). */
  async run(def: IntegrationDefinition, options: Partial<Omit<RunIntegrationOptions, "nc" | "prefix">> = {}): Promise<RunningIntegration> {
    const running = await runIntegration(def, { nc: this.nc, prefix: this.prefix, twins: this.client, metrics: this.metrics, drainMs: 2000, ...options });
    this.running.push(running);
    return running;
  }

  /** Applies a command to a device's twin; throws with the twin's error when it is refused. */
  async command(deviceId: string, command: Record<string, unknown>): Promise<unknown> {
    const reply = await this.client.command(TWIN_TYPE, deviceId, TwinInputKinds.command, command);
    if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    return reply.value;
  }

  subscribe(deviceId: string, subscription: Subscription): Promise<unknown> {
    return this.command(deviceId, { type: "subscribe", subscription });
  }

  unsubscribe(deviceId: string, subscriptionId: string): Promise<unknown> {
    return this.command(deviceId, { type: "unsubscribe", subscriptionId });
  }

  /** Sends readings to a device's twin (sorted by t); resolves once they are stored in the input log. */
  async sendReadings(deviceId: string, readings: readonly Reading[]): Promise<void> {
    await this.client.send(TWIN_TYPE, deviceId, TwinInputKinds.readings, [...readings].sort((a, b) => a.t - b.t));
  }

  /** Publishes an integration message as a twin would (with `id` as its Nats-Msg-Id). */
  async publish(provider: string, deviceId: string, id: string, message: IntegrationMessage): Promise<void> {
    await jetstream(this.nc).publish(`${this.prefix}.out.integration.${provider}.${deviceId}`, encode(message), { msgID: id, headers: msgpackHeaders() });
  }

  /** The dead letters of a provider stored so far, oldest first. */
  async deadLetters(provider: string): Promise<DeadLetter[]> {
    const jsm = await jetstreamManager(this.nc);
    const stream = deadLetterStream(this.prefix);
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info === undefined) return [];
    const out: DeadLetter[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
      if (m && m.subject === `${this.prefix}.dlq.integration.${provider}`) out.push(decode<DeadLetter>(m.data));
    }
    return out;
  }

  async close(): Promise<void> {
    for (const r of this.running.splice(0)) await r.close().catch(() => undefined);
    await this.node?.close().catch(() => undefined);
    await this.nodeNc?.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
    await this.nc.close().catch(() => undefined);
    await this.server?.stop(5000).catch(() => undefined);
    if (this.workDir !== undefined) rmSync(this.workDir, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts a testbed: see {@link IntegrationTestbed}. */
export function startIntegrationTestbed(o: IntegrationTestbedOptions = {}): Promise<IntegrationTestbed> {
  return IntegrationTestbed.start(o);
}
