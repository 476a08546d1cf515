// What one chaos run does: the short seeded run inside `npm test`, or the full one of `npm run
// test:chaos` (scripts/chaos.js sets AIRTWIN_CHAOS_PROFILE=full and passes `--seed N` on as
// AIRTWIN_CHAOS_SEED). The seed decides the fleet (the simulator's), the fault plan (kinds, targets,
// moments, durations) and which devices carry the webhook subscription; rerunning with it replays them.

/** Every kind of fault the run injects. */
export const FAULT_KINDS = [
  "kill-node",
  "kill-gateway",
  "kill-archive",
  "kill-integrations",
  "kill-nats",
  "pause-node",
  "postgres-down",
  "move-shard",
  "drain-node",
  "restart-all",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosParams {
  profile: "short" | "full";
  seed: number;
  /** Simulated devices (sim/ fleet), posting through both gateways. */
  devices: number;
  /** Devices with a user rule and a webhook subscription. */
  webhookDevices: number;
  /** Faults injected, one after another, under load. */
  faults: number;
  /** Seeded pause between two faults (ms): the load runs undisturbed meanwhile. */
  gapMs: [number, number];
  shards: number;
  /** Event time runs this much faster than the wall clock (samples every 5 min of event time). */
  speed: number;
  /** A device posts at most once per this (ms); what is due meanwhile joins its next request. */
  minRequestGapMs: number;
  /** Most requests awaiting an answer. */
  maxInFlight: number;
}

function intEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

/** The run's parameters from AIRTWIN_CHAOS_PROFILE, AIRTWIN_CHAOS_SEED, AIRTWIN_CHAOS_DEVICES, AIRTWIN_CHAOS_FAULTS. */
export function chaosParams(env: NodeJS.ProcessEnv = process.env): ChaosParams {
  const profile = env.AIRTWIN_CHAOS_PROFILE === "full" ? "full" : "short";
  // the short run always replays the same seed (a CI failure reproduces as is); the full run draws one
  const seed = intEnv(env, "AIRTWIN_CHAOS_SEED") ?? (profile === "short" ? 15 : Math.floor(Math.random() * 1_000_000));
  const base: ChaosParams =
    profile === "short"
      ? { profile, seed, devices: 120, webhookDevices: 12, faults: 8, gapMs: [1000, 3000], shards: 12, speed: 300, minRequestGapMs: 2000, maxInFlight: 48 }
      : { profile, seed, devices: 1000, webhookDevices: 50, faults: 54, gapMs: [2000, 8000], shards: 24, speed: 150, minRequestGapMs: 8000, maxInFlight: 96 };
  return {
    ...base,
    devices: intEnv(env, "AIRTWIN_CHAOS_DEVICES") ?? base.devices,
    faults: intEnv(env, "AIRTWIN_CHAOS_FAULTS") ?? base.faults,
  };
}
