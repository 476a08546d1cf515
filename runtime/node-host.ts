// The node's ShardHost: one ShardRunner per owned shard, one reader per input stream it holds shards of
// (stream-reader.ts), the node-wide duties that span shards (memory budget passivation, idle
// passivation, lag refresh, rates for balancing), and the runners of shards stopped here that still
// answer queries until their next owner serves (handoff.ts).
import { backoffMs, type Backoff } from "./backoff.ts";
import type { EntityBehavior } from "./entity.ts";
import type { HostLoad, ShardHost, ShardLease, StopReason } from "./shard-host.ts";
import { LegacyConsumers } from "./shard/consumer.ts";
import { ShardRunner, type ShardRunnerDeps } from "./shard/mod.ts";
import { FencedError } from "./snapshot-store.ts";
import { StreamReader } from "./stream-reader.ts";
import { shardsOfStream, streamOfShard } from "./subjects.ts";

export interface NodeHostOptions {
  shards: number;
  streams: number;
  /** Passivate least recently used entities while the heap and array buffers are above this (bytes). */
  memoryBudgetBytes: number;
  /** How often budgets, idle passivation and lag are checked (ms). Default 1000. */
  housekeepingMs?: number;
}

/**
 * The memory the budget counts: the heap and the array buffers — a compact entity's bytes and a device
 * twin's packed statistics live outside the heap.
 */
function twinMemory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Pauses before a shard whose runner failed on storage starts again (lease still held). */
const RESTART_BACKOFF: Backoff = { firstMs: 250, maxMs: 5000 };

export class NodeHost implements ShardHost {
  private readonly runners = new Map<number, ShardRunner>();
  /** Shards whose runner failed on storage and will start again (lease still held). */
  private readonly restarts = new Map<number, NodeJS.Timeout>();
  /** The lease ownership handed over for each shard it runs here (from `start` until `stop` or `abort`). */
  private readonly leases = new Map<number, ShardLease>();
  /** Stopped runners still answering queries for their shard's next owner. */
  private readonly lingering = new Set<ShardRunner>();
  /** The reader of each input stream, made when a first shard of it starts here. */
  private readonly readers = new Map<number, StreamReader>();
  /** The consumers of older versions left on each input stream, listed once per node (shard/consumer.ts). */
  private readonly legacyConsumers = new Map<number, LegacyConsumers>();
  private readonly deps: Omit<ShardRunnerDeps, "inputStream" | "reader" | "legacyConsumers" | "onFailure">;
  private readonly options: NodeHostOptions;
  private readonly housekeeping: NodeJS.Timeout;
  private lastRates = Date.now();
  /** The units counter at the last housekeeping round, for {@link load}'s rate. */
  private lastUnits = { total: 0, at: Date.now() };
  private unitsPerSec = 0;
  /** Called when a runner gave its shard up by itself (fenced, storage failed). */
  onShardFailed: (shard: number, err: Error) => void = () => undefined;

  constructor(deps: Omit<ShardRunnerDeps, "inputStream" | "reader" | "legacyConsumers" | "onFailure">, options: NodeHostOptions) {
    this.deps = deps;
    this.options = options;
    this.housekeeping = setInterval(() => void this.housekeep(), options.housekeepingMs ?? 1000);
    this.housekeeping.unref();
    void this.endLingeringOnDisconnect();
  }

  get behaviors(): ReadonlyMap<string, EntityBehavior> {
    return this.deps.behaviors;
  }

  async start(lease: ShardLease): Promise<void> {
    this.cancelRestart(lease.shard);
    this.leases.set(lease.shard, lease);
    return this.startRunner(lease, 0);
  }

  /** True while `lease` is the one ownership has us run (not stopped, aborted or superseded since). */
  private holds(lease: ShardLease): boolean {
    return this.leases.get(lease.shard)?.epoch === lease.epoch;
  }

  private startRunner(lease: ShardLease, attempt: number): Promise<void> {
    const existing = this.runners.get(lease.shard);
    if (existing !== undefined) {
      this.deps.log("warn", "shard runner superseded", { shard: lease.shard, epoch: existing.epoch, by: lease.epoch });
      existing.abort();
    }
    const k = streamOfShard(lease.shard, this.options.shards, this.options.streams);
    const runner = new ShardRunner(
      {
        ...this.deps,
        inputStream: this.deps.names.inputStream(k),
        reader: this.reader(k),
        legacyConsumers: this.legacyConsumersOf(k),
        onFailure: (shard, err) => {
          if (this.runners.get(shard) !== runner) return;
          this.runners.delete(shard);
          this.deps.metrics.shardsOwned.set(this.runners.size);
          this.onShardFailed(shard, err);
          // Storage trouble (NATS unreachable, a timeout) with the lease still ours: start again from the
          // last commit. A fenced shard is not restarted; ownership sees the lost lease.
          if (!(err instanceof FencedError)) this.restartLater(lease, attempt);
        },
      },
      lease,
    );
    this.runners.set(lease.shard, runner);
    this.deps.metrics.shardsOwned.set(this.runners.size);
    return runner.start().catch((err: unknown) => {
      runner.abort();
      if (this.runners.get(lease.shard) === runner) this.runners.delete(lease.shard);
      this.deps.metrics.shardsOwned.set(this.runners.size);
      throw err;
    });
  }

  /** The node's reader of input stream `k`. */
  private reader(k: number): StreamReader {
    let reader = this.readers.get(k);
    if (reader === undefined) {
      const { nc, js, jsm, names, options, metrics, log, deadLetters } = this.deps;
      const { shards, streams } = this.options;
      reader = new StreamReader({ nc, js, jsm, stream: names.inputStream(k), shards, streamShards: new Set(shardsOfStream(k, shards, streams)), options, metrics, log, deadLetters });
      this.readers.set(k, reader);
    }
    return reader;
  }

  /** The consumers of older versions left on input stream `k`, listed at the first start of a shard of it here. */
  private legacyConsumersOf(k: number): LegacyConsumers {
    let legacy = this.legacyConsumers.get(k);
    if (legacy === undefined) {
      legacy = new LegacyConsumers(this.deps.jsm, this.deps.names.inputStream(k));
      this.legacyConsumers.set(k, legacy);
    }
    return legacy;
  }

  /**
   * Starts the shard again after a pause, for as long as ownership still has us run this very lease.
   * A restart of a lease lost meanwhile (NATS unreachable long enough for it to run out) must not happen:
   * started after ownership took the shard again under a newer epoch, it aborted that epoch's runner as
   * "superseded", was refused by its fence and left the shard served by nobody while its newer lease was
   * renewed for good (the wedge the chaos run found after a NATS server loss).
   */
  private restartLater(lease: ShardLease, attempt: number): void {
    if (!this.holds(lease)) return;
    this.cancelRestart(lease.shard);
    const delayMs = backoffMs(RESTART_BACKOFF, attempt);
    const timer = setTimeout(() => {
      this.restarts.delete(lease.shard);
      if (!this.holds(lease) || this.runners.has(lease.shard)) return;
      this.startRunner(lease, attempt + 1).catch((err: unknown) => {
        this.deps.log("warn", "shard restart failed", { shard: lease.shard, epoch: lease.epoch, error: (err as Error).message });
        if (!(err instanceof FencedError) && !this.runners.has(lease.shard)) this.restartLater(lease, attempt + 1);
      });
    }, delayMs);
    this.restarts.set(lease.shard, timer);
  }

  private cancelRestart(shard: number): void {
    const t = this.restarts.get(shard);
    if (t !== undefined) clearTimeout(t);
    this.restarts.delete(shard);
  }

  async stop(shard: number, _reason: StopReason): Promise<void> {
    this.cancelRestart(shard);
    this.leases.delete(shard);
    const runner = this.runners.get(shard);
    if (runner === undefined) return;
    try {
      await runner.stop();
    } finally {
      if (this.runners.get(shard) === runner) this.runners.delete(shard);
      this.deps.metrics.shardsOwned.set(this.runners.size);
    }
    for (const r of this.lingering) if (!r.isLingering) this.lingering.delete(r);
    if (runner.isLingering) this.lingering.add(runner);
  }

  abort(shard: number, _reason: string): void {
    this.cancelRestart(shard);
    this.leases.delete(shard);
    const runner = this.runners.get(shard);
    if (runner === undefined) return;
    this.runners.delete(shard);
    runner.abort();
    this.deps.metrics.shardsOwned.set(this.runners.size);
  }

  rates(): ReadonlyMap<number, number> {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastRates) / 1000);
    this.lastRates = now;
    const out = new Map<number, number>();
    for (const [shard, r] of this.runners) out.set(shard, r.takeConsumed() / seconds);
    return out;
  }

  /** Shards served here. */
  owned(): number[] {
    return [...this.runners.keys()].sort((a, b) => a - b);
  }

  /** Resident and known entities, units/s and lag per shard, as of the last housekeeping round. */
  load(): HostLoad {
    let resident = 0;
    let entities = 0;
    const lag = new Map<number, number>();
    for (const [shard, r] of this.runners) {
      resident += r.residentCount;
      entities += r.entityCount;
      lag.set(shard, r.lag);
    }
    return { resident, entities, unitsPerSec: this.unitsPerSec, lag };
  }

  /** Lag (undelivered + unacknowledged messages) per owned shard, freshly read. */
  async lag(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    await Promise.all([...this.runners].map(async ([shard, r]) => out.set(shard, await r.refreshLag().catch(() => r.lag))));
    return out;
  }

  /** Compacts the decoded entities idle `idleMs` or longer on every shard now, all of them; returns how many (benchmarks). */
  compactIdle(idleMs: number): number {
    let n = 0;
    for (const r of this.runners.values()) n += r.compactIdle(idleMs, Number.MAX_SAFE_INTEGER);
    return n;
  }

  /** Commits every shard now (tests and benchmarks use it to wait for durability). */
  async commitAll(): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.commit()));
  }

  /** Stops every shard gracefully (commit), e.g. before exit when ownership is not running. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.runners.keys()].map((s) => this.stop(s, "shutdown")));
  }

  close(): void {
    clearInterval(this.housekeeping);
    for (const shard of [...this.restarts.keys()]) this.cancelRestart(shard);
    this.endLingering();
    for (const reader of this.readers.values()) reader.close();
  }

  private endLingering(): void {
    for (const r of this.lingering) r.endLinger();
    this.lingering.clear();
  }

  /**
   * A lingering runner must hear its next owner's announcement; while disconnected it may miss it and,
   * resubscribed after the reconnect, answer from a state the next owner has moved past. So it ends.
   */
  private async endLingeringOnDisconnect(): Promise<void> {
    for await (const s of this.deps.nc.status()) if (s.type === "disconnect") this.endLingering();
  }

  private async housekeep(): Promise<void> {
    for (const r of this.runners.values()) r.passivateIdle(this.deps.options.idlePassivateMs);
    let used = twinMemory();
    // Over budget: passivate least recently used entities (compact ones first), a slice of every shard per round.
    for (let round = 0; used > this.options.memoryBudgetBytes && round < 8; round++) {
      let dropped = 0;
      for (const r of this.runners.values()) dropped += r.passivateLeastRecent(Math.ceil((r.residentCount + r.compactCount) / 4));
      if (dropped === 0) break;
      used = twinMemory();
    }
    await this.measureUnits().catch(() => undefined);
    // the runners' own view of their lag, no request to the server (ops views ask afresh: `lag`)
    for (const r of this.runners.values()) r.estimateLag();
  }

  /** Units applied per second since the previous round, from the node's own counter. */
  private async measureUnits(): Promise<void> {
    const counted = await this.deps.metrics.unitsApplied.get();
    const total = counted.values.reduce((sum, v) => sum + v.value, 0);
    const at = Date.now();
    const seconds = (at - this.lastUnits.at) / 1000;
    if (seconds > 0) this.unitsPerSec = Math.round((Math.max(0, total - this.lastUnits.total) / seconds) * 10) / 10;
    this.lastUnits = { total, at };
  }
}
