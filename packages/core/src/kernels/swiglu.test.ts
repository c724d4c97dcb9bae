import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { maxScaledError } from "../train/gradient-check.js";
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { nativeKernels } from "./native.js";
import { wasmSwiglu, wasmSwigluGrad } from "./simd-swiglu.js";
import { splitSwiglu, swiglu, swigluChain, swigluValues } from "./swiglu.js";
import type { WasmBackendLike } from "./wasm-heap.js";

/** The gate's (and up's) shape, I last. */
const SHAPES: number[][] = [
  [5, 8],
  [2, 3, 64],
  [4, 256],
  [2, 17, 172], // stories260K's intermediate: 43 vectors a row, odd for the 2× unrolled loop
  [3, 2, 7], // I mod 4 ≠ 0: wasm runs the JS loop
  [1, 4],
];

test("swigluValues by hand: silu(0) = 0, silu(2)·3, the split layout", () => {
  const sig2 = 1 / (1 + Math.exp(-2));
  const out = new Float32Array(2);
  swigluValues(Float32Array.from([0, 2]), Float32Array.from([5, 3]), { rows: 1, I: 2, stride: 2, uOff: 0 }, out);
  expect(out[0]).toBe(0);
  expect(out[1]).toBeCloseTo(2 * sig2 * 3, 6);
  const gu = Float32Array.from([0, 2, 5, 3]); // one row [g | u]
  swigluValues(gu, gu, { rows: 1, I: 2, stride: 4, uOff: 2 }, out);
  expect(out[1]).toBeCloseTo(2 * sig2 * 3, 6);
});

for (const backend of ["wasm", "cpu"] as const) {
  describe(`swiglu on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    /** gate ~N(0, 3²) (past σ's saturation both ways), up and dy ~N(0, 1). */
    const inputs = (shape: number[], seed: number): tf.Tensor[] => [tf.randomNormal(shape, 0, 3, "float32", seed), tf.randomNormal(shape, 0, 1, "float32", seed + 1), tf.randomNormal(shape, 0, 1, "float32", seed + 2)];

    test.each(SHAPES.map((s) => [`[${s}]`, s] as const))("values as the op chain, two tensors and gate_up: %s", (_, shape) => {
      tf.tidy(() => {
        const [g, u] = inputs(shape, 1) as [tf.Tensor, tf.Tensor];
        const want = swigluChain(g, u).dataSync();
        const got = swiglu(g, u);
        expect(got.shape).toEqual(shape);
        expect(maxScaledError(got.dataSync(), want)).toBeLessThan(5e-7); // a float32 rounding or two
        const split = splitSwiglu(tf.concat([g, u], -1));
        expect(split.shape).toEqual(shape);
        expect(maxScaledError(split.dataSync(), want)).toBeLessThan(5e-7);
      });
    });

    test.each(SHAPES.map((s) => [`[${s}]`, s] as const))("gradients as the op chain's, two tensors and gate_up: %s", (_, shape) => {
      tf.tidy(() => {
        const [g, u, dy] = inputs(shape, 4) as [tf.Tensor, tf.Tensor, tf.Tensor];
        const loss = (f: typeof swiglu) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b), dy));
        const [dg, du] = tf.grads(loss(swiglu))([g, u]) as [tf.Tensor, tf.Tensor];
        const [cg, cu] = tf.grads(loss(swigluChain))([g, u]) as [tf.Tensor, tf.Tensor];
        expect(maxScaledError(dg.dataSync(), cg.dataSync())).toBeLessThan(1e-6);
        expect(maxScaledError(du.dataSync(), cu.dataSync())).toBeLessThan(1e-6);
        const dgu = tf.grad((gu: tf.Tensor) => tf.sum(tf.mul(splitSwiglu(gu), dy)))(tf.concat([g, u], -1));
        expect(dgu.shape).toEqual([...shape.slice(0, -1), 2 * (shape[shape.length - 1] as number)]);
        expect(maxScaledError(dgu.dataSync(), tf.concat([cg, cu], -1).dataSync())).toBeLessThan(1e-6);
      });
    });

    test("saturated gates: silu(±100)·u is ±100·u and 0, finite gradients", () => {
      tf.tidy(() => {
        const g = tf.tensor2d([[100, -100, 90, -90]]);
        const u = tf.tensor2d([[2, 2, 1, 1]]);
        const y = swiglu(g, u).dataSync();
        expect(Array.from(y, (v) => Math.round(v * 1e4) / 1e4 + 0)).toEqual([200, 0, 90, 0]);
        const [dg, du] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(swiglu(a, b)))([g, u]) as [tf.Tensor, tf.Tensor];
        expect(Array.from(dg.dataSync(), (v) => Math.round(v * 1e4) / 1e4 + 0)).toEqual([2, 0, 1, 0]);
        expect(Array.from(du.dataSync(), (v) => Math.round(v * 1e4) / 1e4 + 0)).toEqual([100, 0, 90, 0]);
      });
    });
  });
}

describe("native swiglu", () => {
  expectNoLeakedTensors("wasm");

  test.skipIf(!nativeKernels())("forward and backward give the wasm module's bits (two tensors and gate_up; I mod 8 = 0 and 4)", () => {
    const b = tf.backend() as unknown as WasmBackendLike;
    const bits = (infos: TensorInfo[]): Uint32Array[] =>
      infos.map((info) => {
        const t = tf.engine().makeTensorFromTensorInfo(info);
        const out = new Uint32Array((t.dataSync() as Float32Array).slice().buffer);
        t.dispose();
        return out;
      });
    for (const shape of [[2, 17, 172], [4, 256], [3, 12], [1, 4]]) {
      tf.tidy(() => {
        // gates past σ's clamp both ways, zeros of both signs, and a NaN
        const n = shape.reduce((a, c) => a * c, 1);
        const g = tf.reshape(tf.slice(tf.concat([tf.tensor1d([0, -0, NaN, 100, -100]), tf.reshape(tf.randomNormal(shape, 0, 40, "float32", 3), [-1])]), [0], [n]), shape);
        const u = tf.randomNormal(shape, 0, 1, "float32", 4);
        const dy = tf.randomNormal(shape, 0, 1, "float32", 5);
        const gu = tf.concat([g, u], -1);
        const run = (useNative: boolean): Uint32Array[] => [
          ...bits([wasmSwiglu(b, g, u, shape, useNative)]),
          ...bits([wasmSwiglu(b, gu, null, shape, useNative)]),
          ...bits(wasmSwigluGrad(b, dy, g, u, useNative)),
          ...bits(wasmSwigluGrad(b, dy, gu, null, useNative)),
        ];
        const [native, wasm] = [run(true), run(false)];
        // the same bits, but for NaN payloads (a NaN is a NaN)
        const nanOrBits = (a: Uint32Array): (number | string)[] => Array.from(new Float32Array(a.buffer), (x, j) => (Number.isNaN(x) ? "NaN" : (a[j] as number)));
        native.forEach((n, i) => {
          const [a, w] = [nanOrBits(n), nanOrBits(wasm[i] as Uint32Array)];
          const bad = a.findIndex((x, j) => x !== w[j]);
          if (bad >= 0) console.log(`[${shape}] ${i} at ${bad}: ${new Float32Array(n.buffer)[bad]} vs ${new Float32Array((wasm[i] as Uint32Array).buffer)[bad]}, g ${g.dataSync()[bad % n.length]}, ${a[bad]} ${w[bad]}`);
          expect(bad, `[${shape}] output ${i}`).toBe(-1);
        });
      });
    }
  });
});
