// Seeded randomness for the simulator: a stream generator (mulberry32) for sensor noise, and a
// counter-based seed (a hash of seed, device and day) for plans, so a day's plan is the same whichever
// moment a run starts from — a resumed fleet cooks dinner at the same time it would have.

/** A deterministic source of randomness. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** An integer in [0, n). */
  int(n: number): number;
}

/** A generator of numbers in [0, 1) determined by `seed` (mulberry32). */
export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  let spare: number | undefined;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    between: (min, max) => min + (max - min) * next(),
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    chance: (p) => next() < p,
    int: (n) => Math.floor(next() * n),
  };
}

/** A 32-bit seed derived from several integers (murmur3's finaliser over a running mix). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h ^= Math.imul((p | 0) ^ Math.floor(p / 4294967296), 0x85ebca6b);
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
