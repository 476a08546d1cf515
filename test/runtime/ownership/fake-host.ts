// A ShardHost for ownership tests: records every start/stop/abort in one shared log and checks that no
// shard ever has two running holders. The host is ownership's interface boundary, so faking it is fair;
// NATS itself is always real.
import type { ShardHost, ShardLease, StopReason } from "../../../runtime/shard-host.ts";

export interface HostEvent {
  readonly seq: number;
  readonly node: string;
  readonly kind: "start" | "stop" | "abort";
  readonly shard: number;
  readonly epoch?: number;
  readonly reason?: string;
}

/** Who runs which shard, across all fake hosts of a test. */
export class HolderRegistry {
  readonly log: HostEvent[] = [];
  readonly violations: string[] = [];
  readonly holders = new Map<number, { node: string; epoch: number }>();
  /** Nodes whose process is "paused": their holdings do not run, so they do not count as holders. */
  readonly paused = new Set<string>();
  #seq = 0;

  record(e: Omit<HostEvent, "seq">): HostEvent {
    const ev = { ...e, seq: ++this.#seq };
    this.log.push(ev);
    return ev;
  }

  begin(node: string, lease: ShardLease): void {
    const cur = this.holders.get(lease.shard);
    if (cur !== undefined && cur.node !== node && !this.paused.has(cur.node)) {
      this.violations.push(`shard ${lease.shard}: ${node} started epoch ${lease.epoch} while ${cur.node} runs epoch ${cur.epoch}`);
    }
    if (cur !== undefined && cur.epoch >= lease.epoch) {
      this.violations.push(`shard ${lease.shard}: epoch ${lease.epoch} by ${node} not above ${cur.epoch} of ${cur.node}`);
    }
    this.holders.set(lease.shard, { node, epoch: lease.epoch });
  }

  end(node: string, shard: number): void {
    if (this.holders.get(shard)?.node === node) this.holders.delete(shard);
  }

  /** Shards each node runs now. */
  byNode(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const [shard, { node }] of this.holders) out.set(node, [...(out.get(node) ?? []), shard].sort((a, b) => a - b));
    return out;
  }

  eventsOf(shard: number): HostEvent[] {
    return this.log.filter((e) => e.shard === shard);
  }
}

export class FakeHost implements ShardHost {
  readonly running = new Map<number, ShardLease>();
  /** Extra time start/stop take (ms), to widen the windows in which things can overlap. */
  delayMs = 5;
  /** Messages per second of each shard, reported for the shards this host runs (shared across hosts). */
  shardRates: ReadonlyMap<number, number> | undefined;
  /** While set, every start fails with this message (a node that cannot serve shards, yet heartbeats). */
  failStarts: string | undefined;
  /** Every start attempt (failed ones too), with when it began (performance.now()). */
  readonly attempts: Array<{ shard: number; at: number }> = [];
  /** Starts in progress now, and the most there ever were at once. */
  starting = 0;
  mostStartingAtOnce = 0;

  constructor(
    readonly node: string,
    readonly registry: HolderRegistry,
  ) {}

  async start(lease: ShardLease): Promise<void> {
    this.attempts.push({ shard: lease.shard, at: performance.now() });
    this.mostStartingAtOnce = Math.max(this.mostStartingAtOnce, ++this.starting);
    try {
      if (this.failStarts !== undefined) {
        await new Promise((r) => setTimeout(r, this.delayMs));
        throw new Error(this.failStarts);
      }
      if (this.running.has(lease.shard)) this.registry.violations.push(`${this.node}: start of running shard ${lease.shard}`);
      this.registry.record({ node: this.node, kind: "start", shard: lease.shard, epoch: lease.epoch });
      this.registry.begin(this.node, lease);
      this.running.set(lease.shard, lease);
      await new Promise((r) => setTimeout(r, this.delayMs));
    } finally {
      this.starting--;
    }
  }

  async stop(shard: number, reason: StopReason): Promise<void> {
    if (!this.running.has(shard)) this.registry.violations.push(`${this.node}: stop of shard ${shard} it does not run`);
    // recorded as it begins: a real host's stop commits at once, whatever comes during its delay
    this.registry.record({ node: this.node, kind: "stop", shard, epoch: this.running.get(shard)?.epoch, reason });
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.running.delete(shard);
    this.registry.end(this.node, shard);
  }

  rates(): ReadonlyMap<number, number> {
    const out = new Map<number, number>();
    for (const s of this.running.keys()) out.set(s, this.shardRates?.get(s) ?? 0);
    return out;
  }

  abort(shard: number, reason: string): void {
    this.registry.record({ node: this.node, kind: "abort", shard, epoch: this.running.get(shard)?.epoch, reason });
    this.running.delete(shard);
    this.registry.end(this.node, shard);
  }
}
