// Shard ids: an entity id hashes to a shard with 32-bit FNV-1a over its UTF-8 bytes, modulo the shard
// count. This is exactly nats-server's {{partition(n, …)}} subject mapping for a one-token key, so
// clients and server-side mappings agree on where an entity lives.

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** 32-bit FNV-1a of `str`'s UTF-8 bytes, as an unsigned integer. */
export function fnv1a32(str: string): number {
  let h = FNV_OFFSET_BASIS;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c >= 0x80) return fnv1a32Bytes(utf8.encode(str)); // rare: ids are ASCII
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

/** 32-bit FNV-1a of raw bytes. */
export function fnv1a32Bytes(bytes: Uint8Array): number {
  let h = FNV_OFFSET_BASIS;
  for (const b of bytes) h = Math.imul(h ^ b, FNV_PRIME);
  return h >>> 0;
}

/**
 * The shard, 0..shards-1, of an entity id (same as nats-server's `{{partition(shards, …)}}`).
 * @param shards shard count, an integer 1..2^32-1.
 */
export function shardOf(entityId: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1 || shards > 0xffffffff) throw new RangeError(`shards must be a positive integer, got ${shards}`);
  return fnv1a32(entityId) % shards;
}
