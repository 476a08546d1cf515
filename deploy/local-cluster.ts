// A production-shaped cluster on one machine, without containers: 3 nats-servers in a JetStream cluster
// (replicas 3, 3 input streams), 3 `airtwin node`s, 2 `airtwin gateway`s and the archive, each a child
// process logging to <dir>/logs. For trying failover (kill a NATS server or a node and watch the
// dashboard) and for the tests of what only a cluster shows.
//
//   npm run cluster -- [--dir .airtwin-cluster]
//
// Gateways on AIRTWIN_HTTP_PORT (8080) and the next port, or free ports when those are taken. Admin
// token: AIRTWIN_ADMIN_TOKEN, else one kept in <dir>/admin-token. The archive uses DATABASE_URL, else
// PGlite under <dir>. Ctrl-C / SIGTERM stops the gateways, the nodes (they hand their shards off), the
// archive, then the NATS servers; starting again keeps every stream, twin and the registry.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { adminToken, freePort, getStatus, portFree } from "../cli/dev.ts";
import { Child } from "../cli/dev-child.ts";
import type { DevRole } from "../cli/dev-roles.ts";
import { spawnNatsServer, type NatsServerProcess } from "./local-nats.ts";

const usage = `usage: npm run cluster -- [--dir DIR]   (or: node --import tsx deploy/local-cluster.ts [--dir DIR])

A 3-server NATS JetStream cluster (replicas 3), 3 airtwin nodes, 2 gateways and the archive on this
machine. State in DIR (default $AIRTWIN_DATA_DIR or .airtwin-cluster); Ctrl-C stops everything.
`;

const HOST = "127.0.0.1";
const SERVERS = 3;
const NODES = 3;
const GATEWAYS = 2;

/** Two free-or-given HTTP ports for the gateways: `base` and `base + 1` when free, else any free ones. */
async function gatewayPorts(base: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < GATEWAYS; i++) ports.push((await portFree(base + i, HOST)) ? base + i : await freePort(HOST));
  return ports;
}

async function startNats(dir: string): Promise<NatsServerProcess[]> {
  const routePorts = await Promise.all(Array.from({ length: SERVERS }, () => freePort(HOST)));
  const routes = routePorts.map((p) => `nats://${HOST}:${p}`);
  // all at once: a JetStream cluster becomes healthy only once its servers elect a meta leader
  const started = await Promise.allSettled(
    routePorts.map((port, i) =>
      spawnNatsServer({
        config: {
          serverName: `local-n${i + 1}`,
          host: HOST,
          jetstream: { storeDir: join(dir, "nats", `n${i + 1}`) },
          cluster: { name: "airtwin-local", port, routes },
        },
        workDir: join(dir, "nats", `n${i + 1}`),
        detached: true,
        readyTimeoutMs: 60_000,
      }),
    ),
  );
  const servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(servers.map((s) => s.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return servers;
}

export async function runLocalCluster(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (args.includes("--help")) {
    process.stdout.write(usage);
    return;
  }
  const dirFlag = args.indexOf("--dir");
  const dir = resolve(dirFlag >= 0 && args[dirFlag + 1] ? args[dirFlag + 1]! : (env.AIRTWIN_DATA_DIR ?? ".airtwin-cluster"));
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const admin = adminToken(env, dir);
  const httpPorts = await gatewayPorts(Number(env.AIRTWIN_HTTP_PORT ?? 8080) || 8080);

  out(`local cluster: starting ${SERVERS} nats-servers (JetStream cluster) in ${join(dir, "nats")}`);
  const servers = await startNats(dir);
  const natsUrl = servers.map((s) => s.url).join(",");
  const common: NodeJS.ProcessEnv = {
    ...env,
    NATS_URL: natsUrl,
    AIRTWIN_REPLICAS: "3",
    AIRTWIN_STREAMS: env.AIRTWIN_STREAMS ?? "3",
    AIRTWIN_DATA_DIR: dir,
    AIRTWIN_ADMIN_TOKEN: admin.token,
    AIRTWIN_METRICS_PORT: "",
  };
  const roles: DevRole[] = [
    ...Array.from({ length: NODES }, (_, i) => ({ name: `node-${i + 1}`, args: ["node"], env: { ...common, AIRTWIN_NODE_ID: `local-node-${i + 1}` }, stopStage: 1, stopGraceMs: 30_000 })),
    ...httpPorts.map((port, i) => ({
      name: `gateway-${i + 1}`,
      args: ["gateway"],
      env: { ...common, AIRTWIN_HTTP_PORT: String(port), AIRTWIN_HTTP_HOST: HOST },
      stopStage: 0,
      stopGraceMs: 15_000,
    })),
    { name: "archive", args: ["archive"], env: common, stopStage: 2, stopGraceMs: 15_000 },
  ];
  out(`local cluster: starting ${roles.map((r) => r.name).join(", ")}; logs in ${logs}`);
  const children = roles.map((r) => new Child(r, join(logs, `${r.name}.log`)));

  const stop = async () => {
    for (const stage of [0, 1, 2]) await Promise.all(children.filter((c) => c.stopStage === stage).map((c) => c.stop(c.stopGraceMs)));
    await Promise.all(servers.map((s) => s.stop(10_000)));
  };
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const signalled = new Promise<NodeJS.Signals>((resolveSignal) => {
    process.once("SIGINT", () => resolveSignal("SIGINT"));
    process.once("SIGTERM", () => resolveSignal("SIGTERM"));
  });

  const gatewayUrls = httpPorts.map((p) => `http://${HOST}:${p}`);
  const up = await waitUntilUp(gatewayUrls, admin.token, children, signalled);
  if (up) {
    out("");
    out("airtwin local cluster is up:");
    out(`  dashboards ${gatewayUrls.map((u) => `${u}/`).join("  ")}`);
    out(`  admin      ${admin.token}   (${admin.source})`);
    out(`  NATS       ${natsUrl}   (replicas 3)`);
    out(`  nodes      ${roles.filter((r) => r.args[0] === "node").map((r) => r.env.AIRTWIN_NODE_ID).join(", ")}`);
    out(`GATEWAY_URLS=${gatewayUrls.join(",")}`);
    out(`NATS_URL=${natsUrl}`);
    out(`AIRTWIN_ADMIN_TOKEN=${admin.token}`);
    out("Ctrl-C stops everything; starting again keeps all state.");
    const exited = Promise.race(children.map((c) => c.exited.then(() => c)));
    const first = await Promise.race([signalled, exited]);
    if (first instanceof Child) {
      process.stderr.write(`local cluster: ${first.name} exited unexpectedly; its log:\n${first.logTail()}\n`);
      process.exitCode = 1;
    }
  } else {
    process.exitCode = 1;
  }
  clearInterval(keepAlive);
  await stop();
  out("local cluster: stopped");
}

/** Until every gateway is ready and every shard has an owner among the nodes (false: a child died or a signal came). */
async function waitUntilUp(urls: string[], token: string, children: Child[], signalled: Promise<unknown>): Promise<boolean> {
  let interrupted = false;
  void signalled.then(() => (interrupted = true));
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline && !interrupted) {
    const dead = children.find((c) => !c.running);
    if (dead !== undefined) {
      process.stderr.write(`local cluster: ${dead.name} exited while starting; its log:\n${dead.logTail()}\n`);
      return false;
    }
    const ready = await Promise.all(urls.map((u) => getStatus(`${u}/readyz`).then((r) => r.status === 200, () => false)));
    if (ready.every(Boolean)) {
      const cluster = await getStatus(`${urls[0]}/v1/ops/cluster`, { authorization: `Bearer ${token}` }).catch(() => undefined);
      if (cluster?.status === 200) {
        const view = JSON.parse(cluster.body) as { nodes: Array<{ live: boolean }>; shards: Array<{ owner: string | null }> };
        if (view.nodes.filter((n) => n.live).length === NODES && view.shards.every((s) => s.owner !== null)) return true;
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!interrupted) process.stderr.write("local cluster: not up within 180 s; see the logs\n");
  return false;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  runLocalCluster(process.argv.slice(2)).catch((err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`local cluster: ${e.code ? `${e.code}: ` : ""}${e.message ?? String(err)}\n`);
    process.exit(1);
  });
}
