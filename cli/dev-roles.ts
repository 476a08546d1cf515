// The processes `airtwin dev` runs besides nats-server: one entry per role, in start order, each with
// the stage at which it stops. Adding a role (the archive, the integrations, …) is one entry here.
//
// Stop order, lowest stage first, a stage's processes together: the simulated fleet (nothing new
// arrives), the gateway (it finishes its requests and their publishes), the nodes (they hand their
// shards off and commit, publishing their last outputs), then the readers of those outputs (archive,
// integrations), which drain what is left. nats-server stops after all of them.

/** What a role's entry may use. */
export interface DevRoleContext {
  /** Environment every child gets: NATS_URL, AIRTWIN_ADMIN_TOKEN, AIRTWIN_DATA_DIR and the caller's. */
  env: NodeJS.ProcessEnv;
  /** Worker nodes to run (`--nodes`). */
  nodes: number;
  /** The gateway's host and port. */
  httpHost: string;
  httpPort: number;
  /** The gateway's base URL. */
  gatewayUrl: string;
  /** `--simulate N`: devices of the demo fleet (0: none). */
  simulate: number;
  /** The demo fleet's state file (demo user, device tokens, simulated clock). */
  fleetFile: string;
}

/** One child process of `airtwin dev`. */
export interface DevRole {
  /** Name in messages and of the log file (`<dataDir>/logs/<name>.log`). */
  name: string;
  /** Arguments of `airtwin` (the role's subcommand first). */
  args: string[];
  /** The child's environment. */
  env: NodeJS.ProcessEnv;
  /** Lower stages stop first (see the file header). */
  stopStage: number;
  /** How long the role may take to stop after SIGTERM before it is killed (ms). */
  stopGraceMs: number;
}

/** Stop stages, in order. */
export const StopStage = { fleet: 0, gateway: 1, nodes: 2, outputReaders: 3 } as const;

/** The roles of `airtwin dev`, in start order. */
export function devRoles(c: DevRoleContext): DevRole[] {
  const roles: DevRole[] = [];
  for (let i = 1; i <= c.nodes; i++) {
    const nodeId = `dev-node-${i}`;
    roles.push({ name: nodeId, args: ["node"], env: { ...c.env, AIRTWIN_NODE_ID: nodeId, AIRTWIN_METRICS_PORT: "" }, stopStage: StopStage.nodes, stopGraceMs: 30_000 });
  }
  roles.push({
    name: "gateway",
    args: ["gateway"],
    env: { ...c.env, AIRTWIN_HTTP_PORT: String(c.httpPort), AIRTWIN_HTTP_HOST: c.httpHost },
    stopStage: StopStage.gateway,
    stopGraceMs: 15_000,
  });
  // Postgres from DATABASE_URL, else embedded PGlite under the data dir (<dataDir>/pglite/archive)
  roles.push({ name: "archive", args: ["archive"], env: { ...c.env, AIRTWIN_METRICS_PORT: "" }, stopStage: StopStage.outputReaders, stopGraceMs: 15_000 });
  // every built-in whose settings are present (webhook and push always); test receivers are local
  roles.push({
    name: "integrations",
    args: ["integrations"],
    env: { AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1", ...c.env, AIRTWIN_METRICS_PORT: "" },
    stopStage: StopStage.outputReaders,
    stopGraceMs: 15_000,
  });
  return roles;
}

/** The roles started once the gateway answers (they need it): the demo fleet. */
export function devRolesAfterGateway(c: DevRoleContext): DevRole[] {
  if (c.simulate === 0) return [];
  return [
    {
      name: "simulate",
      args: ["simulate", "--demo", "--fleet-file", c.fleetFile, "--gateway", c.gatewayUrl],
      env: c.env,
      stopStage: StopStage.fleet,
      stopGraceMs: 10_000,
    },
  ];
}

/** Groups roles by stop stage, lowest first. */
export function stopOrder<T extends { stopStage: number }>(roles: readonly T[]): T[][] {
  const stages = [...new Set(roles.map((r) => r.stopStage))].sort((a, b) => a - b);
  return stages.map((s) => roles.filter((r) => r.stopStage === s));
}
