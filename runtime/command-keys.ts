// Idempotency keys of commands: what a valid key is, and the small per-entity record of the keyed
// commands an entity applied last (key → the reply it gave, and the input sequence it was applied at).
// The shard runner keeps one record per entity that ever received a keyed command and persists it with
// the entity's snapshot (snapshot-store.ts), so a caller's retry is answered from the record instead of
// being applied again — across passivation, restarts, replays after a crash and shard moves. Each entry
// also keeps the command's fingerprint (command-fingerprint.ts), so a key reused for a different command
// is refused rather than answered with another command's reply.

/** Most keyed commands an entity remembers; the oldest is forgotten first (a retry of it applies again). */
export const COMMAND_KEYS_PER_ENTITY = 32;

/**
 * Most bytes (keys + packed replies) an entity's record holds; beyond it the oldest entries are
 * forgotten even below {@link COMMAND_KEYS_PER_ENTITY} (the newest is always kept). Bounds what the
 * record adds to a snapshot when replies are large (a twin's subscription may carry a 2 KB target).
 */
export const COMMAND_KEYS_MAX_BYTES = 16 * 1024;

/** Longest idempotency key (characters). */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 128;

// printable ASCII (0x20–0x7E), no space at either end: HTTP trims header values, so such a key could not
// arrive unchanged over HTTP and would silently differ from the same key sent over NATS
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Why `key` is not a valid idempotency key (1–128 printable ASCII characters, no space at either end),
 * or undefined when it is.
 */
export function idempotencyKeyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "must be a string";
  if (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX_LENGTH) return `must be 1–${IDEMPOTENCY_KEY_MAX_LENGTH} characters`;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) return "must be printable ASCII (0x20–0x7E), not beginning or ending with a space";
  return undefined;
}

/**
 * One keyed command an entity applied: its key, the input sequence it was applied at, its reply and
 * the fingerprint of the command.
 */
export interface AppliedCommand {
  readonly key: string;
  readonly seq: number;
  /**
   * The reply as MessagePack, packed when the command was applied: later changes to objects the
   * behaviour shares between reply and state cannot alter it, and it costs no object graph in memory.
   */
  readonly reply: Uint8Array;
  /**
   * The fingerprint of the command's kind and payload (command-fingerprint.ts); absent in entries
   * recorded before fingerprints existed, which are then answered without comparing.
   */
  readonly fingerprint?: Uint8Array;
}

/**
 * The keyed commands an entity applied last, oldest first, at most `limit` entries and `maxBytes`. A
 * linear search: 32 short strings are compared faster than a Map is built, and only keyed commands
 * ever search.
 */
export class CommandKeys {
  private readonly entries: AppliedCommand[] = [];
  private bytes = 0;

  constructor(
    entries: readonly AppliedCommand[] = [],
    private readonly limit = COMMAND_KEYS_PER_ENTITY,
    private readonly maxBytes = COMMAND_KEYS_MAX_BYTES,
  ) {
    for (const e of entries) this.add(e);
  }

  /** The command applied under `key`, if it is still remembered. */
  find(key: string): AppliedCommand | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.key === key) return this.entries[i];
    return undefined;
  }

  /** Remembers a command just applied; forgets the oldest beyond the limits. */
  add(entry: AppliedCommand): void {
    this.entries.push(entry);
    this.bytes += sizeOf(entry);
    while (this.entries.length > this.limit || (this.bytes > this.maxBytes && this.entries.length > 1)) {
      this.bytes -= sizeOf(this.entries.shift()!);
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Oldest first (the order the snapshot record keeps). */
  list(): readonly AppliedCommand[] {
    return this.entries;
  }
}

function sizeOf(e: AppliedCommand): number {
  return e.key.length + e.reply.length + (e.fingerprint?.length ?? 0);
}

/**
 * The snapshot record's form: `[[key, seq, reply, fingerprint?], …]`, oldest first. An entry without a
 * fingerprint keeps the old three elements; an older runner reads the fourth as nothing.
 */
export function encodeCommandKeys(entries: readonly AppliedCommand[]): unknown[] {
  return entries.map((e) => (e.fingerprint === undefined ? [e.key, e.seq, e.reply] : [e.key, e.seq, e.reply, e.fingerprint]));
}

/** Reads the snapshot record's form back (entries of three elements: no fingerprint); throws a TypeError when it is malformed. */
export function decodeCommandKeys(raw: unknown): AppliedCommand[] {
  if (!Array.isArray(raw)) throw new TypeError("malformed command keys in snapshot record");
  return raw.map((e: unknown) => {
    if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "number" || !(e[2] instanceof Uint8Array)) {
      throw new TypeError("malformed command key in snapshot record");
    }
    if (e.length < 4) return { key: e[0], seq: e[1], reply: e[2] };
    if (!(e[3] instanceof Uint8Array)) throw new TypeError("malformed command fingerprint in snapshot record");
    return { key: e[0], seq: e[1], reply: e[2], fingerprint: e[3] };
  });
}
