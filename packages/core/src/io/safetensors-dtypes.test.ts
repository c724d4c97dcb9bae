import { describe, expect, it } from "vitest";
import {
  bf16ToF32Into,
  f16BitsToF32Bits,
  f16ToF32Into,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16Into,
  f32ToF16Into,
} from "./safetensors-dtypes.js";

const bitsOf = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0] as number;
const floatOf = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0] as number;

// Expected bits worked out by hand from the IEEE layouts (half: 1-5-10, bfloat16: top 16 bits
// of float32 rounded to nearest even), e.g. 0.1f = 0x3dcccccd: bf16 keeps 0x3dcc, the dropped
// 0xcccd > 0x8000 rounds up to 0x3dcd = 0.10009765625; half 0.1 = 0x2e66 = 1638/16384.
const HAND: { x: number; f16: number; f16Value: number; bf16: number; bf16Value: number }[] = [
  { x: 1.0, f16: 0x3c00, f16Value: 1, bf16: 0x3f80, bf16Value: 1 },
  { x: 0.1, f16: 0x2e66, f16Value: 0.0999755859375, bf16: 0x3dcd, bf16Value: 0.10009765625 },
  // 65504 is the largest half; in bf16 its dropped bits 0xe000 round up to 2^16.
  { x: 65504, f16: 0x7bff, f16Value: 65504, bf16: 0x4780, bf16Value: 65536 },
  // 65520 is exactly halfway between 65504 (odd mantissa) and 2^16: ties to even = inf.
  { x: 65520, f16: 0x7c00, f16Value: Infinity, bf16: 0x4780, bf16Value: 65536 },
  // 1e-8 < 2^-25 (half of the smallest half subnormal): 0. bf16 0x322bcc77 -> 0x322c = 1.34375 * 2^-27.
  { x: 1e-8, f16: 0x0000, f16Value: 0, bf16: 0x322c, bf16Value: 1.0011717677116394e-8 },
  { x: -0, f16: 0x8000, f16Value: -0, bf16: 0x8000, bf16Value: -0 },
  { x: Infinity, f16: 0x7c00, f16Value: Infinity, bf16: 0x7f80, bf16Value: Infinity },
  { x: -Infinity, f16: 0xfc00, f16Value: -Infinity, bf16: 0xff80, bf16Value: -Infinity },
  // Subnormal halves: 2^-24 is 0x0001; 2^-25 ties to even (0); 3 * 2^-26 rounds up to 2^-24.
  { x: 2 ** -24, f16: 0x0001, f16Value: 2 ** -24, bf16: 0x3380, bf16Value: 2 ** -24 },
  { x: 2 ** -25, f16: 0x0000, f16Value: 0, bf16: 0x3300, bf16Value: 2 ** -25 },
  { x: 3 * 2 ** -26, f16: 0x0001, f16Value: 2 ** -24, bf16: 0x3340, bf16Value: 3 * 2 ** -26 },
  // 1e-5 is subnormal in half: round(1e-5 * 2^24) = 168 = 0xa8.
  { x: 1e-5, f16: 0x00a8, f16Value: 168 * 2 ** -24, bf16: 0x3728, bf16Value: 1.0013580322265625e-5 },
  // Mantissa ties: 1 + 2^-11 -> 1 (even); 1 + 3 * 2^-11 -> 1 + 2^-9 (even).
  { x: 1 + 2 ** -11, f16: 0x3c00, f16Value: 1, bf16: 0x3f80, bf16Value: 1 },
  { x: 1 + 3 * 2 ** -11, f16: 0x3c02, f16Value: 1 + 2 ** -9, bf16: 0x3f80, bf16Value: 1 },
  { x: -2.5, f16: 0xc100, f16Value: -2.5, bf16: 0xc020, bf16Value: -2.5 },
];

describe("float conversions against hand-computed values", () => {
  it.each(HAND)("$x", ({ x, f16, f16Value, bf16, bf16Value }) => {
    expect(f32BitsToF16Bits(bitsOf(x))).toBe(f16);
    expect(f32BitsToBf16Bits(bitsOf(x))).toBe(bf16);
    expect(Object.is(floatOf(f16BitsToF32Bits(f16)), f16Value)).toBe(true);
    expect(Object.is(floatOf(bf16 << 16), bf16Value)).toBe(true);
  });

  it("NaN becomes a quiet NaN in both, keeping the sign", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0x7fbfffff]) {
      const sign = bits >>> 31;
      const h = f32BitsToF16Bits(bits);
      expect(h).toBe(sign ? 0xfe00 : 0x7e00);
      const b = f32BitsToBf16Bits(bits);
      expect(Number.isNaN(floatOf(b << 16))).toBe(true);
      expect(b >>> 15).toBe(sign);
    }
  });

  it("decodes the special halves exactly", () => {
    expect(floatOf(f16BitsToF32Bits(0x03ff))).toBe(1023 * 2 ** -24); // largest subnormal
    expect(floatOf(f16BitsToF32Bits(0x0400))).toBe(2 ** -14); // smallest normal
    expect(floatOf(f16BitsToF32Bits(0x8001))).toBe(-(2 ** -24));
    expect(Number.isNaN(floatOf(f16BitsToF32Bits(0x7e00)))).toBe(true);
    expect(f16BitsToF32Bits(0x7c01)).toBe(0x7f802000); // NaN payload kept
  });
});

describe("exhaustive and randomised checks", () => {
  it("every half survives f16 -> f32 -> f16 (NaNs become the quiet NaN)", () => {
    const halves = new Uint16Array(65536).map((_, i) => i);
    const wide = new Uint32Array(65536);
    f16ToF32Into(halves, wide);
    const back = new Uint16Array(65536);
    f32ToF16Into(new Float32Array(wide.buffer), 0, back);
    const bad: string[] = []; // one expect at the end: 65,536 expect() calls take seconds
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (back[h] !== (isNaN ? (h & 0x8000) | 0x7e00 : h)) {
        bad.push(`round trip ${h.toString(16)} -> ${back[h]?.toString(16)}`);
      }
      // The value also matches the IEEE formula.
      if (!isNaN && (h & 0x7c00) !== 0x7c00) {
        const e = (h >> 10) & 0x1f;
        const m = h & 0x3ff;
        const v = (h & 0x8000 ? -1 : 1) * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
        if (!Object.is(floatOf(wide[h] as number), v)) {
          bad.push(`value ${h.toString(16)}: ${floatOf(wide[h] as number)} != ${v}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it("f32 -> f16 picks the nearest half (ties to even), by search over all halves", () => {
    // Sorted non-negative finite halves 0x0000..0x7bff, then inf (treat 2^16 as the next step).
    const values = new Float64Array(0x7c01);
    for (let h = 0; h <= 0x7bff; h++) {
      values[h] = floatOf(f16BitsToF32Bits(h));
    }
    values[0x7c00] = 65536; // rounding up from 65504 lands on inf
    const bad: string[] = [];
    let seed = 12345;
    const next = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    for (let k = 0; k < 20000; k++) {
      // Bias towards the half range: exponent 0x60..0x8f covers subnormals to overflow.
      const bits = k % 2 === 0 ? next() : ((next() & 0x807fffff) | ((0x60 + (next() % 0x30)) << 23)) >>> 0;
      const x = floatOf(bits);
      if (!Number.isFinite(x)) {
        continue;
      }
      const a = Math.abs(x);
      let lo = 0;
      let hi = 0x7c00;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if ((values[mid] as number) <= a) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      let want: number;
      if (a >= 65536) {
        want = 0x7c00;
      } else {
        const dLo = a - (values[lo] as number);
        const dHi = (values[hi] as number) - a;
        want = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
      }
      const sign = bits >>> 31 ? 0x8000 : 0;
      if (f32BitsToF16Bits(bits) !== (sign | want)) {
        bad.push(`${x}: got ${f32BitsToF16Bits(bits).toString(16)}, want ${(sign | want).toString(16)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("bf16 round trip of bf16-representable values is exact, and the array helpers agree", () => {
    const src = new Float32Array([1, -2.5, 0.1, 65504, 1e-8, -0, Infinity]);
    const narrow = new Uint16Array(src.length);
    f32ToBf16Into(src, 0, narrow);
    expect([...narrow]).toEqual([0x3f80, 0xc020, 0x3dcd, 0x4780, 0x322c, 0x8000, 0x7f80]);
    const wide = new Uint32Array(src.length);
    bf16ToF32Into(narrow, wide);
    const again = new Uint16Array(src.length);
    f32ToBf16Into(new Float32Array(wide.buffer), 0, again);
    expect([...again]).toEqual([...narrow]);
  });
});
