// An input stream is read by one archive process at a time, from the position its last batch wrote.
// With a durable consumer shared by every archive process, each message needed an acknowledgement of
// its own — a message through nats-server a reading, as costly there as storing it (docs/BENCHMARKS.md,
// "The archive's acknowledgements"). Instead the position is kept in the database, moved in the very
// transaction that writes the batch: exactly what was written is what the next reader skips, and the
// reader pulls with a consumer of its own, acknowledged once a batch to bound what it is sent ahead.
//
// One reader: a process takes the stream's lock (Database.tryLock: a Postgres advisory lock on a session
// of its own, freed the moment the process dies) and raises the stream's epoch. Every batch moves the
// position only while that epoch is still the row's, so a reader that lost its lock without noticing
// (its lock's connection dropped, another process took over) has its next batch refused and stops —
// nothing is written twice by two readers, and nothing skipped. Other processes wait their turn.
import type { Database, HeldLock, Queryable } from "./db/mod.ts";

/** Where a reader starts: the stream generation of the stored position and the last sequence written. */
export interface SourcePosition {
  readonly gen: number;
  readonly lastSeq: number;
}

/** A batch read under an epoch another reader has since replaced: nothing of it was written. */
export class SourceFencedError extends Error {
  override readonly name = "SourceFencedError";
}

export class SourceLease {
  private lock: HeldLock | undefined;
  private epoch = 0;

  constructor(
    private readonly db: Database,
    /** The stream (its row in `sources`). */
    readonly stream: string,
  ) {}

  /** True while this process holds the stream's lock (as far as it knows: the epoch check is the proof). */
  get held(): boolean {
    return this.lock !== undefined && !this.lock.gone;
  }

  /** Settles when the held lock is lost; never when none is held. */
  get lost(): Promise<void> {
    return this.lock?.lost ?? new Promise<void>(() => undefined);
  }

  /**
   * Takes the stream's turn: the lock (unless held already) and a new epoch, which fences any batch read
   * under an earlier one. Undefined while another process holds the lock.
   */
  async claim(): Promise<SourcePosition | undefined> {
    if (!this.held) {
      await this.release();
      this.lock = await this.db.tryLock(`airtwin.archive.${this.stream}`);
      if (this.lock === undefined) return undefined;
    }
    try {
      const row = await this.db.transaction(async (tx) => {
        await tx.query("insert into sources (stream, gen, last_seq, updated_at) values ($1, 0, 0, $2) on conflict (stream) do nothing", [this.stream, Date.now()]);
        const r = await tx.query<{ epoch: number; gen: number; last_seq: number }>("update sources set epoch = epoch + 1 where stream = $1 returning epoch, gen, last_seq", [this.stream]);
        return r.rows[0]!;
      });
      this.epoch = row.epoch;
      return { gen: row.gen, lastSeq: row.last_seq };
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  /**
   * Moves the position to `lastSeq` of generation `gen` inside the batch's transaction; throws
   * {@link SourceFencedError} (rolling the batch back) when another reader has taken the stream over.
   */
  async advance(tx: Queryable, gen: number, lastSeq: number): Promise<void> {
    const r = await tx.query(
      `update sources set last_seq = case when gen = $2 then greatest(last_seq, $3) else $3 end, gen = $2, updated_at = $4
       where stream = $1 and epoch = $5`,
      [this.stream, gen, lastSeq, Date.now(), this.epoch],
    );
    if (r.rowCount === 0) throw this.fenced();
  }

  /**
   * Sets the position back to `lastSeq` of generation `gen` (never forward): where a reader of an earlier
   * version's shared consumer had surely written up to. Fenced like {@link advance}.
   */
  async rewind(gen: number, lastSeq: number): Promise<void> {
    const r = await this.db.query("update sources set gen = $2, last_seq = case when gen = $2 then least(last_seq, $3) else $3 end, updated_at = $4 where stream = $1 and epoch = $5", [
      this.stream,
      gen,
      lastSeq,
      Date.now(),
      this.epoch,
    ]);
    if (r.rowCount === 0) throw this.fenced();
  }

  /** {@link advance} in a transaction of its own (past a message given up, so it is not read again). */
  advanceAlone(gen: number, lastSeq: number): Promise<void> {
    return this.db.transaction((tx) => this.advance(tx, gen, lastSeq));
  }

  private fenced(): SourceFencedError {
    return new SourceFencedError(`${this.stream}: another archive process reads the stream now (epoch ${this.epoch} replaced)`);
  }

  /** The stored position, whoever reads the stream (lag for ops, from any archive process). */
  async position(): Promise<SourcePosition | undefined> {
    const r = await this.db.query<{ gen: number; last_seq: number }>("select gen, last_seq from sources where stream = $1", [this.stream]);
    const row = r.rows[0];
    return row === undefined ? undefined : { gen: row.gen, lastSeq: row.last_seq };
  }

  /** Gives the turn up (the lock's session ends; the epoch stays until the next reader raises it). */
  async release(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    await lock?.release();
  }
}
