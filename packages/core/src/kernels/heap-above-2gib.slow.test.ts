/**
 * The wasm heap grows to 4 GiB: tensors placed past 2 GiB have byte addresses ≥ 2³¹, where a
 * signed shift (`addr >> 2`) turns negative. A 2.1 GB placeholder pushes the next tensors up
 * there; our GEMM (plain, transposed, broadcast batch) and AdamW kernels must still give the
 * cpu backend's results. (Slow: it allocates 2+ GB.)
 */
import * as tf from "@tensorflow/tfjs-core";
import { expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { AdamW } from "../train/adamw.js";
import { heapAddress, isWasmBackend } from "./wasm-heap.js";

function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
}

async function run(backend: "wasm" | "cpu", placeholder: boolean): Promise<{ mm: Float32Array[]; w: Float32Array; addr: number }> {
  await initBackend(backend);
  const big = placeholder ? tf.zeros([540_000_000]) : null; // 2.16 GB
  const a = tf.tensor3d(values(2 * 33 * 70, 1), [2, 33, 70]);
  const b = tf.tensor2d(values(70 * 45, 2), [70, 45]);
  const mm = [tf.matMul(a, tf.broadcastTo(b, [2, 70, 45])), tf.matMul(tf.transpose(a, [0, 2, 1]), tf.broadcastTo(b, [2, 70, 45]), true, false), tf.matMul(a, tf.transpose(b), false, true)];
  const out = await Promise.all(mm.map(async (t) => (await t.data()) as Float32Array));
  const backendImpl = tf.backend();
  const addr = isWasmBackend(backendImpl) ? heapAddress(backendImpl, a as unknown as tf.TensorInfo) : 0;
  const vars = new Map([["w", tf.variable(tf.tensor1d(values(5000, 3)))]]);
  const grads = new Map([["w", tf.tensor1d(values(5000, 4))]]);
  const opt = new AdamW({ weightDecay: 0.1 });
  for (let i = 0; i < 3; i++) {
    opt.step(vars, grads, 1e-2, { gradScale: 0.5 });
  }
  const w = (await (vars.get("w") as tf.Variable).data()) as Float32Array;
  opt.dispose();
  tf.dispose([a, b, ...mm, big, ...vars.values(), ...grads.values()].filter((t): t is tf.Tensor => t !== null));
  return { mm: out, w, addr };
}

test("GEMM and AdamW on tensors past 2 GiB of the wasm heap equal cpu", async () => {
  const high = await run("wasm", true);
  expect(high.addr).toBeGreaterThanOrEqual(2 ** 31);
  const ref = await run("cpu", false);
  for (let i = 0; i < ref.mm.length; i++) {
    const got = high.mm[i] as Float32Array;
    const want = ref.mm[i] as Float32Array;
    expect(got.every((x) => Number.isFinite(x))).toBe(true);
    const err = Math.max(...Array.from(got, (x, j) => Math.abs(x - (want[j] as number))));
    expect(err, `matMul ${i}`).toBeLessThan(1e-4);
  }
  const errW = Math.max(...Array.from(high.w, (x, j) => Math.abs(x - (ref.w[j] as number))));
  expect(errW).toBeLessThan(1e-6);
}, 300_000);
