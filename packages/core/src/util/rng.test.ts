import { describe, expect, test } from "vitest";
import { createRng } from "./rng.js";

describe("createRng", () => {
  test("same seed, same stream; different seeds differ", () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(sa);
  });

  test("xorshift32 step matches the textbook recurrence", () => {
    // Marsaglia (2003): x ^= x << 13; x ^= x >> 17; x ^= x << 5 (32-bit). From x = 1:
    // 1 → 270369 → 67634689 → 2647435461 (worked out by hand with the three shifts).
    let x = 1;
    const step = (): number => {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x;
    };
    expect([step(), step(), step()]).toEqual([270369, 67634689, 2647435461]);
  });

  test("int(n) is in range and roughly uniform", () => {
    const r = createRng(7);
    const counts = new Array(10).fill(0) as number[];
    for (let i = 0; i < 100_000; i++) {
      const k = r.int(10);
      counts[k] = (counts[k] as number) + 1;
    }
    for (const c of counts) {
      expect(Math.abs(c - 10_000)).toBeLessThan(500); // > 5 sigma
    }
  });

  test("nextFloat in [0,1), normal has mean 0 and variance 1", () => {
    const r = createRng(1);
    let s = 0;
    let s2 = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const f = r.nextFloat();
      expect(f >= 0 && f < 1).toBe(true);
      const z = r.normal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
  });

  test("rejects bad arguments", () => {
    expect(() => createRng(1.5)).toThrow(RangeError);
    expect(() => createRng(1).int(0)).toThrow(RangeError);
  });
});
