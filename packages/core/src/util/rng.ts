/**
 * A small seeded PRNG of our own (no Math.random anywhere in core): xorshift32 seeded
 * through splitmix32, like llama2.c's `random_u32`. Same seed → same stream on every
 * platform and backend, which makes generated fingerprints byte-identical.
 */
export interface Rng {
  /** A uniform 32-bit unsigned integer. */
  nextU32(): number;
  /** A uniform float in [0, 1) with 24 bits of precision (as llama2.c's random_f32). */
  nextFloat(): number;
  /** A uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number;
  /** A standard normal sample (Box–Muller). */
  normal(): number;
}

/** splitmix32: spreads a small integer seed over all 32 bits. */
function splitmix32(seed: number): number {
  let z = (seed + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return z >>> 0 || 0x6d2b79f5; // xorshift must not start at 0
}

export function createRng(seed: number): Rng {
  if (!Number.isInteger(seed)) {
    throw new RangeError(`seed must be an integer, got ${seed}`);
  }
  let state = splitmix32(seed >>> 0) ^ splitmix32(Math.floor(seed / 2 ** 32));
  state = state >>> 0 || 0x6d2b79f5;
  const nextU32 = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const nextFloat = (): number => (nextU32() >>> 8) / 16777216;
  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) {
      throw new RangeError(`int(n) needs an integer 1 ≤ n ≤ 2^32, got ${n}`);
    }
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = nextU32();
    while (x >= limit) {
      x = nextU32();
    }
    return x % n;
  };
  const normal = (): number => {
    let u = nextFloat();
    while (u === 0) {
      u = nextFloat();
    }
    const v = nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return { nextU32, nextFloat, int, normal };
}
