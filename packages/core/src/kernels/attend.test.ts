import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { attentionBias, MASKED } from "../model/attention.js";
import { ATTEND, attend, attendChain, attendKernel, attendShared, attendTakesShared, joinShared, kernelPays } from "./attend.js";
import { nativeKernels } from "./native.js";
import { wasmAttend } from "./simd-attend.js";
import type { WasmBackendLike } from "./wasm-heap.js";

/** Bias kinds: causal (1, 1, T, S); per batch row with 0–2 left-padded keys; that plus a fully masked query row. */
type BiasKind = "causal" | "padded" | "masked row";

interface Case {
  B: number;
  nh: number;
  nkv: number;
  T: number;
  S: number;
  hs: number;
  bias: BiasKind;
}

const name = (c: Case): string => `B ${c.B}, nh ${c.nh}, nkv ${c.nkv}, T ${c.T}, S ${c.S}, hs ${c.hs}, ${c.bias} bias`;

function biasOf(c: Case): tf.Tensor4D {
  return tf.tidy(() => {
    if (c.bias === "causal") {
      return attentionBias(c.T, c.S);
    }
    const mask = tf.tensor2d(Array.from({ length: c.B * c.S }, (_, i) => (i % c.S < Math.floor(i / c.S) % 3 ? 0 : 1)), [c.B, c.S], "int32");
    const bias = attentionBias(c.T, c.S, mask);
    if (c.bias === "padded") {
      return bias;
    }
    const values = bias.dataSync().slice();
    const row = (c.B - 1) * c.T * c.S + (c.T - 1) * c.S; // the last batch row's last query sees nothing
    values.fill(MASKED, row, row + c.S);
    return tf.tensor4d(values, bias.shape);
  });
}

function inputs(c: Case, seed: number, onesV = false): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D; bias: tf.Tensor4D } {
  const q = tf.randomNormal([c.B, c.nh, c.T, c.hs], 0, 1.5, "float32", seed) as tf.Tensor4D;
  const k = tf.randomNormal([c.B, c.nkv, c.S, c.hs], 0, 1.5, "float32", seed + 1) as tf.Tensor4D;
  const v = onesV ? tf.ones([c.B, c.nkv, c.S, c.hs]) as tf.Tensor4D : (tf.randomNormal([c.B, c.nkv, c.S, c.hs], 0, 2, "float32", seed + 2) as tf.Tensor4D);
  return { q, k, v, bias: biasOf(c) };
}

/** The grid: every hs, head layout and T, with S = T … T + 40 in every residue mod 4 (S ≥ 4), B and bias kind cycling. */
function grid(): Case[] {
  const cases: Case[] = [];
  const kinds: BiasKind[] = ["causal", "padded", "masked row"];
  let i = 0;
  for (const hs of [4, 8, 64]) {
    for (const [nh, nkv] of [[2, 2], [4, 2], [8, 4]] as const) {
      for (const T of [1, 3, 16]) {
        const first = Math.max(4, T);
        const Ss = [...new Set([first, first + 1, first + 2, first + 3, T + 21, T + 40])];
        for (const S of Ss) {
          cases.push({ B: i % 2 === 0 ? 3 : 1, nh, nkv, T, S, hs, bias: kinds[i % 3] as BiasKind });
          i++;
        }
      }
    }
  }
  return cases;
}

/** max over elements of |a − b| / max(1, |b|) */
function maxRelError(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)) / Math.max(1, Math.abs(b[i] as number)));
  }
  return worst;
}

describe("attend on wasm", () => {
  expectNoLeakedTensors("wasm");

  test("the fused kernel runs for hs mod 4 = 0, S ≥ 4", async () => {
    expect(tf.getKernel(ATTEND, "wasm")).toBeDefined();
    const c: Case = { B: 2, nh: 4, nkv: 2, T: 3, S: 7, hs: 8, bias: "padded" };
    const x = inputs(c, 1);
    const info = await tf.profile(() => attend(x.q, x.k, x.v, x.bias, 0.3));
    expect(info.kernelNames).toEqual([ATTEND]);
    info.result && (info.result as tf.Tensor).dispose();
    tf.dispose(Object.values(x));
  });

  test("the kernel equals the op chain within float32 rounding over the shape grid", () => {
    let worst = 0;
    for (const [n, c] of grid().entries()) {
      const [ours, chain, shape] = tf.tidy(() => {
        const x = inputs(c, 10 + n);
        const scale = 1 / Math.sqrt(c.hs);
        const y = attendKernel(x.q, x.k, x.v, x.bias, scale); // the kernel even where attend() would pick the chain (kernelPays)
        return [y.dataSync() as Float32Array, attendChain(x.q, x.k, x.v, x.bias, scale).dataSync() as Float32Array, y.shape];
      });
      expect(shape, name(c)).toEqual([c.B, c.T, c.nh * c.hs]);
      const err = maxRelError(ours, chain);
      expect(err, name(c)).toBeLessThanOrEqual(1e-5);
      worst = Math.max(worst, err);
    }
    console.log(`attend vs chain over ${grid().length} shapes: max |Δ| / max(1, |y|) = ${worst.toExponential(2)}`);
  });

  test("probabilities sum to 1 (v = 1 gives y = 1), masked rows included", () => {
    for (const c of grid().filter((_, i) => i % 5 === 0)) {
      const ours = tf.tidy(() => {
        const x = inputs(c, 3, true);
        return attendKernel(x.q, x.k, x.v, x.bias, 1 / Math.sqrt(c.hs)).dataSync() as Float32Array;
      });
      expect(maxRelError(ours, new Float32Array(ours.length).fill(1)), name(c)).toBeLessThanOrEqual(1e-6);
    }
  });

  test("masked keys get no weight: y of a left-padded row equals y of the row without its padding", () => {
    const c: Case = { B: 3, nh: 4, nkv: 2, T: 5, S: 9, hs: 8, bias: "padded" }; // batch row 2 has 2 padded keys
    const [padded, alone] = tf.tidy(() => {
      const x = inputs(c, 7);
      const y = attend(x.q, x.k, x.v, x.bias, 0.35);
      const row = (t: tf.Tensor4D): tf.Tensor4D => tf.slice(t, [2, 0, 0, 0], [1, -1, -1, -1]);
      const kr = tf.slice(row(x.k), [0, 0, 2, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      const vr = tf.slice(row(x.v), [0, 0, 2, 0], [1, -1, -1, -1]) as tf.Tensor4D;
      const yAlone = attend(row(x.q), kr, vr, tf.slice(x.bias, [2, 0, 0, 2], [1, 1, 5, 7]) as tf.Tensor4D, 0.35);
      return [tf.slice(y, [2, 0, 0], [1, -1, -1]).dataSync() as Float32Array, yAlone.dataSync() as Float32Array];
    });
    expect(maxRelError(padded, alone)).toBeLessThanOrEqual(1e-6);
  });

  test.skipIf(!nativeKernels())("the native attend8 (AVX2) gives the wasm kernel's bits: hs 8, both score paths (≤ 8 and > 8 query rows per kv head)", () => {
    const cases = [
      ...grid().filter((c) => c.hs === 8),
      { B: 4, nh: 8, nkv: 4, T: 16, S: 53, hs: 8, bias: "padded" },
      { B: 2, nh: 8, nkv: 4, T: 17, S: 300, hs: 8, bias: "masked row" },
      { B: 3, nh: 8, nkv: 2, T: 5, S: 9, hs: 8, bias: "causal" },
    ] as Case[];
    const b = tf.backend() as unknown as WasmBackendLike;
    for (const [n, c] of cases.entries()) {
      const [native, wasm] = tf.tidy(() => {
        const x = inputs(c, 40 + n);
        const run = (useNative: boolean): Float32Array => {
          const y = tf.engine().makeTensorFromTensorInfo(wasmAttend(b, x.q, x.k, x.v, x.bias, 0.35, useNative));
          return y.dataSync() as Float32Array;
        };
        return [run(true), run(false)];
      });
      expect(new Uint32Array(native.buffer), name(c)).toEqual(new Uint32Array(wasm.buffer));
    }
  });

  test.skipIf(!nativeKernels())("a shared prefix read in place gives the bits of the same keys joined into every row", () => {
    // 3 prefixes (the last all zeros: rows without one) of P = 6 keys, B = 5 rows, each with its own L keys after it
    for (const [T, L, nh] of [[4, 4, 8], [1, 9, 8], [16, 16, 8], [3, 5, 2]] as const) {
      const [B, nkv, P, hs] = [5, 2, 6, 8];
      const [inPlace, joined] = tf.tidy(() => {
        const q = tf.randomNormal([B, nh, T, hs], 0, 1.5, "float32", 1) as tf.Tensor4D;
        const k = tf.randomNormal([B, nkv, L, hs], 0, 1.5, "float32", 2) as tf.Tensor4D;
        const v = tf.randomNormal([B, nkv, L, hs], 0, 2, "float32", 3) as tf.Tensor4D;
        const shared = {
          k: tf.concat([tf.randomNormal([2, nkv, P, hs], 0, 1.5, "float32", 4), tf.zeros([1, nkv, P, hs])]) as tf.Tensor4D,
          v: tf.concat([tf.randomNormal([2, nkv, P, hs], 0, 2, "float32", 5), tf.zeros([1, nkv, P, hs])]) as tf.Tensor4D,
          rows: tf.tensor1d([0, 2, 1, 0, 1], "int32"),
        };
        // row 1 has no prefix: its P columns are masked, like left padding
        const mask = tf.tensor2d(Array.from({ length: B * (P + L) }, (_, i) => (Math.floor(i / (P + L)) === 1 && i % (P + L) < P ? 0 : 1)), [B, P + L], "int32");
        const bias = attentionBias(T, P + L, mask);
        expect(attendTakesShared(q, k, v, bias, shared)).toBe(true);
        const full = joinShared(k, v, shared);
        return [attendShared(q, k, v, bias, 0.35, shared).dataSync() as Float32Array, attend(q, full.k, full.v, bias, 0.35).dataSync() as Float32Array];
      });
      expect(new Uint32Array(inPlace.buffer), `T ${T}, L ${L}, nh ${nh}`).toEqual(new Uint32Array(joined.buffer));
    }
  });

  test("a large head with many query rows per kv head takes the chain (faster there): equal bit for bit", () => {
    const c: Case = { B: 1, nh: 4, nkv: 2, T: 20, S: 24, hs: 64, bias: "causal" }; // nrep·T = 40
    expect(kernelPays(64, 40)).toBe(false);
    expect(kernelPays(8, 40)).toBe(true);
    const [ours, chain] = tf.tidy(() => {
      const x = inputs(c, 4);
      return [attend(x.q, x.k, x.v, x.bias, 0.125).dataSync(), attendChain(x.q, x.k, x.v, x.bias, 0.125).dataSync()];
    });
    expect(Array.from(ours)).toEqual(Array.from(chain));
  });

  test.each([
    ["hs 6", { B: 2, nh: 4, nkv: 2, T: 3, S: 7, hs: 6, bias: "padded" }],
    ["S < 4", { B: 2, nh: 4, nkv: 2, T: 3, S: 3, hs: 8, bias: "causal" }],
    ["S 1", { B: 3, nh: 2, nkv: 1, T: 1, S: 1, hs: 4, bias: "padded" }],
  ] as [string, Case][])("falls back to the op chain (%s): equal bit for bit", (_, c) => {
    const [ours, chain] = tf.tidy(() => {
      const x = inputs(c, 5);
      return [attend(x.q, x.k, x.v, x.bias, 0.4).dataSync(), attendChain(x.q, x.k, x.v, x.bias, 0.4).dataSync()];
    });
    expect(Array.from(ours)).toEqual(Array.from(chain));
  });
});

describe("attend on cpu", () => {
  expectNoLeakedTensors("cpu");

  test("runs the op chain: equal bit for bit", () => {
    for (const c of [
      { B: 3, nh: 8, nkv: 4, T: 3, S: 10, hs: 8, bias: "masked row" },
      { B: 1, nh: 2, nkv: 2, T: 1, S: 5, hs: 4, bias: "causal" },
    ] as Case[]) {
      const [ours, chain] = tf.tidy(() => {
        const x = inputs(c, 9);
        return [attend(x.q, x.k, x.v, x.bias, 0.5).dataSync(), attendChain(x.q, x.k, x.v, x.bias, 0.5).dataSync()];
      });
      expect(Array.from(ours), name(c)).toEqual(Array.from(chain));
    }
  });
});
