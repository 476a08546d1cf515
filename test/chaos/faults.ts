// The fault plan of a chaos run and how each fault is done. The plan is drawn from the seed: the kinds
// (each about as often as the others, a full restart of everything more rarely), the targets, how long
// each fault holds and the quiet gap after it. Faults come one after another while the fleet posts;
// after each, every part is running again and every shard served before the gap starts.
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import { FAULT_KINDS, type ChaosParams, type FaultKind } from "./params.ts";
import { GATEWAYS, LEASE_TTL_MS, NODE_IDS, type ChaosSystem, type RoleName } from "./system.ts";

export interface PlannedFault {
  kind: FaultKind;
  /** Seeded numbers the fault draws its target and hold from. */
  pick: number;
  holdMs: number;
  gapMs: number;
}

export interface DoneFault {
  kind: FaultKind;
  what: string;
  /** From the fault until everything ran and every shard was served again (ms). */
  recoveredMs: number;
  skipped?: string;
}

const EXPENSIVE: FaultKind[] = ["restart-all"];

/** The seeded plan: `params.faults` faults, every kind at least once when there are enough. */
export function planFaults(params: ChaosParams): PlannedFault[] {
  const r = rng(params.seed ^ 0x5eed);
  const kinds: FaultKind[] = [];
  const perKind = Math.floor(params.faults / FAULT_KINDS.length);
  for (const k of FAULT_KINDS) for (let i = 0; i < (EXPENSIVE.includes(k) ? Math.min(perKind, 3) : perKind); i++) kinds.push(k);
  const cheap = shuffled(FAULT_KINDS.filter((k) => !EXPENSIVE.includes(k)), r);
  for (let i = 0; kinds.length < params.faults; i++) kinds.push(cheap[i % cheap.length]!);
  const [lo, hi] = params.gapMs;
  return shuffled(kinds, r).map((kind) => ({ kind, pick: r(), holdMs: Math.round(1000 + r() * 5000), gapMs: Math.round(lo + r() * (hi - lo)) }));
}

/** Fisher–Yates with the seeded generator. */
function shuffled<T>(items: readonly T[], r: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function choose<T>(items: readonly T[], pick: number): T {
  return items[Math.min(items.length - 1, Math.floor(pick * items.length))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // a fault's hold: how long it lasts, not synchronisation

/** Does one fault and waits until the system serves everything again. */
export async function inject(system: ChaosSystem, f: PlannedFault): Promise<DoneFault> {
  const started = Date.now();
  const done = (what: string, skipped?: string): DoneFault => ({ kind: f.kind, what, recoveredMs: Date.now() - started, ...(skipped ? { skipped } : {}) });
  let what: string;
  switch (f.kind) {
    case "kill-node":
    case "kill-gateway":
    case "kill-archive":
    case "kill-integrations": {
      const pool: readonly RoleName[] = f.kind === "kill-node" ? NODE_IDS : f.kind === "kill-gateway" ? GATEWAYS : [f.kind === "kill-archive" ? "archive" : "integrations"];
      const target = choose(pool, f.pick);
      await system.signal(target, "SIGKILL");
      await sleep(f.holdMs);
      what = `kill -9 ${target}, ${f.holdMs} ms down`;
      break;
    }
    case "kill-nats": {
      const member = choose(system.nats.servers, f.pick);
      await member.kill("SIGKILL");
      await sleep(f.holdMs);
      // caught up may take longer than the harness's 30 s on a loaded machine: waited for below, generously
      await member.restart({ ready: "listening" });
      await system.nats.waitForHealthy(180_000);
      what = `kill -9 NATS ${member.name}, ${f.holdMs} ms down`;
      break;
    }
    case "pause-node": {
      const target = choose(NODE_IDS, f.pick);
      await system.signal(target, "SIGSTOP");
      // frozen past its lease: until the others serve its shards (or a generous bound when it held none)
      const frozen = Date.now();
      await waitFor(
        async () => {
          const c = await system.cluster();
          return c.shards.every((s) => s.owner !== null && s.owner !== target) && Date.now() - frozen > LEASE_TTL_MS;
        },
        { timeoutMs: 120_000, intervalMs: 250, message: `shards of the frozen ${target} served by others` },
      );
      const heldMs = Date.now() - frozen;
      await system.signal(target, "SIGCONT");
      what = `SIGSTOP ${target} for ${heldMs} ms (lease ${LEASE_TTL_MS} ms), then SIGCONT`;
      break;
    }
    case "postgres-down": {
      if (system.proxy === undefined) return done("Postgres unavailable", "no DATABASE_URL: the archive runs on embedded PGlite, which cannot be cut off");
      system.proxy.down();
      await sleep(f.holdMs + 2000);
      system.proxy.up();
      what = `Postgres unreachable for ${f.holdMs + 2000} ms`;
      break;
    }
    case "move-shard": {
      const c = await system.cluster();
      const r = rng(Math.floor(f.pick * 2 ** 32));
      const moves: string[] = [];
      const count = 1 + Math.floor(r() * 3);
      for (let i = 0; i < count; i++) {
        const shard = choose(c.shards, r());
        const others = c.nodes.filter((n) => n.live && !n.draining && n.nodeId !== shard.owner);
        if (others.length === 0) continue;
        const to = choose(others, r()).nodeId;
        const moved = await system.ops<Record<string, unknown>>("POST", `/v1/ops/shards/${shard.shard}/move`, { node: to });
        if (moved.status !== 200) throw new Error(`move of shard ${shard.shard} to ${to}: ${moved.status} ${JSON.stringify(moved.body)}`);
        moves.push(`${shard.shard} ${shard.owner ?? "-"}→${to}`);
      }
      // until the moved shards are held by their new owners
      await system.until("moved shards held by their new owners", (now) => now.shards.every((s) => s.owner !== null && (s.assigned === null || s.owner === s.assigned)), 120_000);
      what = `moved shards ${moves.join(", ")}`;
      break;
    }
    case "drain-node": {
      const target = choose(NODE_IDS, f.pick);
      const r = await system.ops<{ shards?: number[] }>("POST", `/v1/ops/nodes/${target}/drain`);
      if (r.status !== 200) throw new Error(`drain of ${target}: ${r.status} ${JSON.stringify(r.body)}`);
      await system.until(`${target} drained`, (c) => c.shards.every((s) => s.owner !== null && s.owner !== target), 120_000);
      // a drained node takes shards again once it starts anew (joining clears its drain)
      await system.signal(target, "SIGTERM");
      what = `drained ${target} (${r.body.shards?.length ?? "?"} shards), then restarted it`;
      break;
    }
    case "restart-all": {
      await Promise.all([...system.roles.keys()].map((role) => system.signal(role, "SIGKILL")));
      await Promise.all(system.nats.servers.map((m) => m.kill("SIGKILL")));
      await sleep(f.holdMs);
      await Promise.all(system.nats.servers.map((m) => m.restart({ ready: "listening" })));
      await system.nats.waitForHealthy(120_000);
      await system.nats.waitForMetaLeader(120_000);
      what = `kill -9 of every process and every NATS server, ${f.holdMs} ms down, all started again`;
      break;
    }
  }
  await system.restartMissing();
  await system.settled();
  return done(what);
}
