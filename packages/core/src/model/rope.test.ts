import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { applyRope, ropeCosSin, ropeInvFreq, type RopeParams } from "./rope.js";

const base: RopeParams = { rotaryDim: 8, ropeTheta: 500000, ropeScaling: null, maxPositions: 131072 };

describe("ropeInvFreq", () => {
  test("default: θ_i = base^(−2i/d)", () => {
    // 500000^0 = 1, 500000^-0.25 = 1/26.5915 = 0.0376060, 500000^-0.5 = 1/707.107 = 0.00141421,
    // 500000^-0.75 = 1/18803.0 = 5.31830e-5
    const f = ropeInvFreq(base);
    expect([...f].map((x) => +x.toPrecision(6))).toEqual([1, 0.037606, 0.00141421, 5.3183e-5]);
  });

  test("llama3 scaling keeps high, divides low and interpolates the middle band", () => {
    // factor 8, low_freq_factor 1, high_freq_factor 4, original 8192:
    //   low-frequency wavelength limit 8192/1 = 8192, high-frequency limit 8192/4 = 2048.
    // wavelengths 2π/θ: 6.283, 167.08 (< 2048: unchanged), 4442.88 (between: smoothed),
    //   118142.8 (> 8192: θ/8 = 5.31830e-5/8 = 6.64787e-6).
    // middle: smooth = (8192/4442.88 − 1)/(4 − 1) = (1.843846 − 1)/3 = 0.281282;
    //   θ' = (1 − smooth)·θ/8 + smooth·θ = 0.00141421 · (0.0898397 + 0.281282) = 0.000524846.
    // (numpy float32 on transformers' formula: [1.0, 0.037606031, 0.00052484602, 6.6478697e-06])
    const f = ropeInvFreq({ ...base, ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } });
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(0.037606031, 8);
    expect(f[2]).toBeCloseTo(0.00052484602, 9); // within 1 float32 ulp (5.8e-11)
    expect(f[3]).toBeCloseTo(6.6478697e-6, 11);
  });

  test("linear scaling divides every frequency by the factor", () => {
    const f = ropeInvFreq({ ...base, ropeScaling: { type: "linear", factor: 4 } });
    expect(f[1]).toBeCloseTo(0.037606031 / 4, 9);
  });

  test("dynamic scaling changes nothing up to maxPositions, then grows the base", () => {
    const p: RopeParams = { rotaryDim: 8, ropeTheta: 10000, ropeScaling: { type: "dynamic", factor: 2 }, maxPositions: 100 };
    expect([...ropeInvFreq(p, 100)]).toEqual([...ropeInvFreq({ ...p, ropeScaling: null })]);
    // seq 200: base' = 10000 · (2·200/100 − 1)^(8/6) = 10000 · 3^(4/3) = 43267.5; θ_1 = base'^(−1/4) = 0.0693361
    expect(ropeInvFreq(p, 200)[1]).toBeCloseTo(0.0693361, 6);
  });
});

describe("applyRope", () => {
  beforeAll(async () => {
    await initBackend("cpu");
  });

  test("rotates dims (i, i + d/2) by pos·θ_i; partial rotary leaves the tail", () => {
    const n = tf.memory().numTensors;
    // rd = 4 of hs = 6, θ = [1, 0.01] (base 10000, d 4), position 2: angles [2, 0.02].
    const invFreq = ropeInvFreq({ rotaryDim: 4, ropeTheta: 10000, ropeScaling: null, maxPositions: 16 });
    const pos = tf.tensor2d([[2]], [1, 1], "int32");
    const { cos, sin } = ropeCosSin(invFreq, pos);
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 1, 1, 6]);
    const y = applyRope(x, cos, sin);
    // pairs (x0, x2) = (1, 3) by 2 rad, (x1, x3) = (2, 4) by 0.02 rad:
    //   y0 = 1·cos2 − 3·sin2, y2 = 3·cos2 + 1·sin2, y1 = 2·cos.02 − 4·sin.02, y3 = 4·cos.02 + 2·sin.02
    const c2 = Math.cos(2), s2 = Math.sin(2), c = Math.cos(0.02), s = Math.sin(0.02);
    const want = [1 * c2 - 3 * s2, 2 * c - 4 * s, 3 * c2 + 1 * s2, 4 * c + 2 * s, 5, 6];
    const got = Array.from(y.dataSync());
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i] as number, 5));
    tf.dispose([pos, cos, sin, x, y]);
    expect(tf.memory().numTensors).toBe(n);
  });

  test.each(["cpu", "wasm"] as const)("a table of numPositions gathered by id = cos/sin of every id, bit for bit (%s)", async (backend) => {
    await initBackend(backend);
    const n = tf.memory().numTensors;
    const invFreq = ropeInvFreq({ rotaryDim: 8, ropeTheta: 10000, ropeScaling: null, maxPositions: 64 });
    const pos = tf.tensor2d([[1, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [40, 41, 42, 43, 44, 45]], [3, 6], "float32"); // positionIdsFromMask's dtype
    for (const scale of [1, 1.19]) {
      const each = ropeCosSin(invFreq, pos, scale);
      const table = ropeCosSin(invFreq, pos, scale, 46);
      expect(table.cos.shape).toEqual([3, 1, 6, 8]);
      expect(Array.from(table.cos.dataSync())).toEqual(Array.from(each.cos.dataSync()));
      expect(Array.from(table.sin.dataSync())).toEqual(Array.from(each.sin.dataSync()));
      tf.dispose([each.cos, each.sin, table.cos, table.sin]);
    }
    pos.dispose();
    expect(tf.memory().numTensors).toBe(n);
  });
});
