// Test harness: a JetStream cluster of real nats-servers (default 3) on 127.0.0.1, one temp dir each,
// for replication and failure tests. Members can be stopped, killed and restarted on the same ports.
//
//   await using cluster = await startNatsCluster({ size: 3 });
//   const nc = await connect({ servers: cluster.urls });
//   await cluster.servers[0]!.kill();

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLocal, NatsServerStartError, resolveNatsServerBinary } from "../../deploy/local-nats.ts";
import { getFreePorts } from "./free-port.ts";
import { ManagedNatsServer } from "./nats-server.ts";
import { waitFor } from "./wait-for.ts";

/** Options of {@link startNatsCluster}. */
export interface NatsClusterOptions {
  /** Number of servers. Default 3. */
  size?: number;
  /** Cluster name. Default "airtwin-test". */
  name?: string;
  /** Keep the temp directory after stop(). Default: AIRTWIN_TEST_KEEP=1. */
  keep?: boolean;
  /** Environment for finding the binary (AIRTWIN_NATS_SERVER, PATH). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Deadline for the whole cluster to become ready (all healthy, a meta leader), in ms. Default 30 000. */
  readyTimeoutMs?: number;
}

/** One server of a {@link TestNatsCluster}. */
export interface ClusterMember {
  /** server_name: n1, n2, … */
  readonly name: string;
  /** Client URL (stable across restart). */
  readonly url: string;
  readonly port: number;
  /** Route port (stable across restart). */
  readonly clusterPort: number;
  readonly storeDir: string;
  /** Its temp dir: config, nats-server.log, store. */
  readonly dir: string;
  readonly monitorUrl: string;
  readonly pid: number;
  readonly running: boolean;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s); the store is kept so restart() can rejoin. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit; the store is kept. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts again on the same ports and store; by default waits until it is healthy (caught up). */
  restart(opts?: { ready?: "listening" | "healthy" }): Promise<void>;
  logTail(lines?: number): string;
}

/** A running cluster. */
export interface TestNatsCluster extends AsyncDisposable {
  readonly servers: readonly ClusterMember[];
  /** Client URLs of all members, for `connect({ servers: urls })`. */
  readonly urls: string[];
  readonly dir: string;
  /** Waits until a running member is the JetStream meta leader; returns its name. */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Waits until every running member answers /healthz 200. */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every member and removes the temp dir (unless kept). */
  stop(): Promise<void>;
}

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number };
}

async function metaLeaderSeenBy(member: ClusterMember): Promise<string | undefined> {
  const r = await getLocal(`${member.monitorUrl}/jsz`, 1000);
  if (r.status !== 200) return undefined;
  const leader = (JSON.parse(r.body) as Jsz).meta_cluster?.leader;
  // only the leader itself is authoritative; followers may still name a dead one
  return leader === member.name ? leader : undefined;
}

async function healthy(member: ClusterMember): Promise<boolean> {
  return (await getLocal(`${member.monitorUrl}/healthz`, 1000)).status === 200;
}

function member(name: string, server: ManagedNatsServer, clusterPort: number, storeDir: string): ClusterMember {
  return {
    name,
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    clusterPort,
    storeDir,
    dir: server.dir,
    get monitorUrl() {
      return server.monitorUrl;
    },
    get pid() {
      return server.pid;
    },
    get running() {
      return server.running;
    },
    stop: () => server.stopProcess(),
    kill: (signal) => server.kill(signal),
    restart: (opts) => server.restart(opts),
    logTail: (lines) => server.logTail(lines),
  };
}

async function spawnMembers(
  dir: string,
  size: number,
  name: string,
  binary: string,
  readyTimeoutMs: number,
): Promise<{ servers: ManagedNatsServer[]; members: ClusterMember[] }> {
  // route ports must be known up front (2.9 refuses a JetStream cluster without configured routes)
  const ports = await getFreePorts(size * 2);
  const clientPorts = ports.slice(0, size);
  const routePorts = ports.slice(size);
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`);
  const settled = await Promise.allSettled(
    clientPorts.map((port, i) => {
      const serverName = `n${i + 1}`;
      const memberDir = join(dir, serverName);
      return ManagedNatsServer.start(
        {
          serverName,
          port,
          jetstream: { storeDir: join(memberDir, "store") },
          cluster: { name, port: routePorts[i]!, routes },
        },
        memberDir,
        // members need each other to become healthy, so each waits only for its listener here
        { binary, ready: "listening", readyTimeoutMs },
      );
    }),
  );
  const servers = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) {
    await Promise.all(servers.map((s) => s.kill()));
    throw failed.reason;
  }
  const members = servers.map((s, i) => member(`n${i + 1}`, s, routePorts[i]!, join(dir, `n${i + 1}`, "store")));
  return { servers, members };
}

/**
 * Starts a JetStream cluster of `size` servers and resolves once every member is healthy and a meta
 * leader is elected (so R3 streams and KV buckets can be created at once).
 * @throws NatsServerMissingError when the binary is missing.
 */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<TestNatsCluster> {
  const size = opts.size ?? 3;
  const name = opts.name ?? "airtwin-test";
  const keep = opts.keep ?? process.env.AIRTWIN_TEST_KEEP === "1";
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const binary = resolveNatsServerBinary(opts.env);
  const dir = mkdtempSync(join(tmpdir(), "airtwin-cluster-"));

  let spawned: { servers: ManagedNatsServer[]; members: ClusterMember[] } | undefined;
  try {
    // a port picked free can be taken by someone else before nats-server binds it: retry with new ones
    for (let attempt = 1; !spawned; attempt++) {
      try {
        spawned = await spawnMembers(dir, size, name, binary, readyTimeoutMs);
      } catch (err) {
        if (!(err instanceof NatsServerStartError) || attempt >= 3) throw err;
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } catch (err) {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { servers, members } = spawned;

  const running = () => members.filter((m) => m.running);
  const waitForHealthy = async (timeoutMs = readyTimeoutMs): Promise<void> => {
    await waitFor(async () => (await Promise.all(running().map(healthy))).every(Boolean), {
      timeoutMs,
      intervalMs: 50,
      message: "every running cluster member healthy",
    });
  };
  const waitForMetaLeader = (timeoutMs = readyTimeoutMs): Promise<string> =>
    waitFor(
      async () => {
        for (const m of running()) {
          const leader = await metaLeaderSeenBy(m).catch(() => undefined);
          if (leader) return leader;
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 50, message: "a JetStream meta leader" },
    );

  const stop = async (): Promise<void> => {
    for (const s of servers) s.markStoppedForGood();
    await Promise.all(servers.map((s) => s.stopProcess()));
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForHealthy();
    await waitForMetaLeader();
  } catch (err) {
    const logs = members.map((m) => `--- ${m.name} ---\n${m.logTail(15)}`).join("\n");
    await stop();
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  }

  return {
    servers: members,
    urls: members.map((m) => m.url),
    dir,
    waitForMetaLeader,
    waitForHealthy,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
