// The registry view's devices, packed (issue #16 §2: a gateway holds every registered device, a million
// of them or more). A Map from device id to a slot number, and each slot's fields in typed-array columns
// allocated in chunks: the token digest's 32 bytes, the last verified token's characters, createdAt,
// the KV revision, the owner (an index into interned owner ids) and the disabled flag. ~170 bytes a
// device instead of ~710 as objects (the decoded record with its hex digest string, a Buffer of the
// digest, the verified token string with the request header it was sliced from, the key string again
// in a revisions Map): bench/gateway-memory.ts. A removed device's slot is wiped (its verified token is
// a secret) and reused.
import type { DeviceInfo, DeviceRecord } from "./records.ts";
import { sameSecret, secretMatches } from "./secrets.ts";

/** Slots a chunk holds: the columns grow by this much, never copied. */
const CHUNK_SLOTS = 4096;
const CHUNK_SHIFT = 12;
const DIGEST_BYTES = 32;
/**
 * Longest token kept as verified: a device token (43 characters, secrets.ts). A longer one, or one with a
 * character past U+00FF, is still accepted but hashed on every request (it is not what the registry issues).
 */
const VERIFIED_MAX = 43;
const DISABLED = 1;

/** A chunk of the columns (CHUNK_SLOTS slots). */
interface Chunk {
  digests: Uint8Array;
  /** The verified token's characters (latin-1), VERIFIED_MAX a slot; its length in verifiedLength (0: none). */
  verified: Uint8Array;
  verifiedLength: Uint8Array;
  createdAt: Float64Array;
  revision: Float64Array;
  owner: Uint32Array;
  flags: Uint8Array;
}

const newChunk = (): Chunk => ({
  digests: new Uint8Array(CHUNK_SLOTS * DIGEST_BYTES),
  verified: new Uint8Array(CHUNK_SLOTS * VERIFIED_MAX),
  verifiedLength: new Uint8Array(CHUNK_SLOTS),
  createdAt: new Float64Array(CHUNK_SLOTS),
  revision: new Float64Array(CHUNK_SLOTS),
  owner: new Uint32Array(CHUNK_SLOTS),
  flags: new Uint8Array(CHUNK_SLOTS),
});

/**
 * A string that holds no other: V8 keeps a substring of 13 characters or more as a slice of its parent
 * (here the whole KV key, or a request body), which the Map key would keep alive.
 */
const ownString = (s: string): string => (s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string));

export class DeviceTable {
  private readonly slots = new Map<string, number>();
  private readonly chunks: Chunk[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private readonly ownerIds: string[] = [];
  private readonly ownerIndex = new Map<string, number>();
  /** Revisions of devices removed (deleted, or a malformed entry): an older entry does not bring them back. */
  private readonly removedRevisions = new Map<string, number>();
  /** The digest of the device being verified, copied out of its chunk for timingSafeEqual. */
  private readonly digest = Buffer.alloc(DIGEST_BYTES);

  /** Registered devices. */
  get size(): number {
    return this.slots.size;
  }

  has(deviceId: string): boolean {
    return this.slots.has(deviceId);
  }

  /** The highest KV revision known of the device's key (registered or removed), 0 if none. */
  revision(deviceId: string): number {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return this.removedRevisions.get(deviceId) ?? 0;
    return this.chunk(slot).revision[slot & (CHUNK_SLOTS - 1)]!;
  }

  /** Stores the device's record under `revision`; a record replaced starts without a verified token. */
  put(deviceId: string, revision: number, record: DeviceRecord): void {
    let slot = this.slots.get(deviceId);
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? this.nextSlot++;
      if (slot >> CHUNK_SHIFT === this.chunks.length) this.chunks.push(newChunk());
      this.slots.set(ownString(deviceId), slot);
      this.removedRevisions.delete(deviceId);
    }
    const c = this.chunk(slot);
    const i = slot & (CHUNK_SLOTS - 1);
    c.digests.set(Buffer.from(record.tokenSha256, "hex"), i * DIGEST_BYTES);
    this.forgetVerified(c, i);
    c.createdAt[i] = record.createdAt;
    c.revision[i] = revision;
    c.owner[i] = this.intern(record.ownerId);
    c.flags[i] = record.disabled ? DISABLED : 0;
  }

  /** Removes the device (its slot wiped), remembering `revision`. */
  remove(deviceId: string, revision: number): void {
    this.removedRevisions.set(deviceId, revision);
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return;
    this.slots.delete(deviceId);
    const c = this.chunk(slot);
    const i = slot & (CHUNK_SLOTS - 1);
    c.digests.fill(0, i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES);
    this.forgetVerified(c, i);
    this.freeSlots.push(slot);
  }

  /** What the API shows of a registered device, or undefined. */
  info(deviceId: string): DeviceInfo | undefined {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? undefined : this.infoAt(deviceId, slot);
  }

  /** Registered devices, of one owner if given (in no particular order). */
  list(ownerId?: string): DeviceInfo[] {
    const out: DeviceInfo[] = [];
    const owner = ownerId === undefined ? undefined : this.ownerIndex.get(ownerId);
    if (ownerId !== undefined && owner === undefined) return out;
    for (const [deviceId, slot] of this.slots) {
      if (owner === undefined || this.chunk(slot).owner[slot & (CHUNK_SLOTS - 1)] === owner) out.push(this.infoAt(deviceId, slot));
    }
    return out;
  }

  /**
   * True when `token` is the token of an enabled device `deviceId`. Unknown, disabled and wrong-token
   * cases cost the same and answer the same: the token last verified is compared character by character
   * (every character, whatever differs), and anything else is hashed and compared with
   * crypto.timingSafeEqual — a refusal always costs the hash.
   */
  verify(deviceId: string, token: string): boolean {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return secretMatches(token, undefined);
    const c = this.chunk(slot);
    const i = slot & (CHUNK_SLOTS - 1);
    const enabled = (c.flags[i]! & DISABLED) === 0;
    const verifiedLength = c.verifiedLength[i]!;
    if (verifiedLength !== 0 && sameSecret(token, c.verified, i * VERIFIED_MAX, verifiedLength)) return enabled;
    const at = i * DIGEST_BYTES;
    for (let k = 0; k < DIGEST_BYTES; k++) this.digest[k] = c.digests[at + k]!;
    if (!secretMatches(token, this.digest)) return false;
    this.rememberVerified(c, i, token);
    return enabled;
  }

  private chunk(slot: number): Chunk {
    return this.chunks[slot >> CHUNK_SHIFT]!;
  }

  private infoAt(deviceId: string, slot: number): DeviceInfo {
    const c = this.chunk(slot);
    const i = slot & (CHUNK_SLOTS - 1);
    return { deviceId, ownerId: this.ownerIds[c.owner[i]!]!, createdAt: c.createdAt[i]!, disabled: (c.flags[i]! & DISABLED) !== 0 };
  }

  /** The owner id's index; owner ids are few (registered users), each kept once. */
  private intern(ownerId: string): number {
    let index = this.ownerIndex.get(ownerId);
    if (index === undefined) {
      index = this.ownerIds.push(ownString(ownerId)) - 1;
      this.ownerIndex.set(this.ownerIds[index]!, index);
    }
    return index;
  }

  private rememberVerified(c: Chunk, i: number, token: string): void {
    if (token.length === 0 || token.length > VERIFIED_MAX) return;
    const at = i * VERIFIED_MAX;
    for (let k = 0; k < token.length; k++) {
      const code = token.charCodeAt(k);
      if (code > 0xff) return this.forgetVerified(c, i);
      c.verified[at + k] = code;
    }
    c.verifiedLength[i] = token.length;
  }

  private forgetVerified(c: Chunk, i: number): void {
    c.verifiedLength[i] = 0;
    c.verified.fill(0, i * VERIFIED_MAX, (i + 1) * VERIFIED_MAX);
  }
}
