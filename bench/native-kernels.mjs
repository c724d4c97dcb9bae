#!/usr/bin/env node
// Our native AVX2 + FMA kernels (packages/core/native/*.c) against the WebAssembly
// SIMD kernels they replace, on the same inputs in the tfjs wasm heap, interleaved call by
// call (this machine's speed drifts by ±25% within minutes, so only same-moment pairs
// compare). Both give the same bits (native.test.ts, attend.test.ts, swiglu.test.ts).
// Not part of CI.
//
//   npx pnpm build && node bench/native-kernels.mjs [reps=40]
import { createRequire } from "node:module";
import os from "node:os";
import { pathToFileURL } from "node:url";

const core = new URL("../packages/core/", import.meta.url);
const require = createRequire(new URL("package.json", core));
const tf = await import(pathToFileURL(require.resolve("@tensorflow/tfjs-core")).href);
const dist = (p) => import(new URL(`dist/${p}`, core).href);
const { initBackend } = await dist("index.js");
const { nativeKernels, nativeStatus } = await dist("kernels/native.js");
const { simdGemm, packPanels, GEMM_BLOCKS } = await dist("kernels/simd-gemm.js");
const { wasmAttend } = await dist("kernels/simd-attend.js");
const { wasmSwiglu, wasmSwigluGrad } = await dist("kernels/simd-swiglu.js");
const { attentionBias } = await dist("model/attention.js");

const reps = Number(process.argv[2] ?? 40);
await initBackend("wasm");
const native = nativeKernels();
if (!native) {
  console.error(`native kernels unavailable: ${nativeStatus()}`);
  process.exit(1);
}
const b = tf.backend();
const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

/** min and median ms of a and b, called alternately `reps` times; `after` frees what a call made. */
function pair(a, bFn, after = () => {}) {
  const ta = [];
  const tb = [];
  for (let r = 0; r < reps + 3; r++) {
    let t = performance.now();
    after(a());
    const da = performance.now() - t;
    t = performance.now();
    after(bFn());
    const db = performance.now() - t;
    if (r >= 3) {
      ta.push(da);
      tb.push(db);
    }
  }
  return { wasm: { min: Math.min(...ta), med: median(ta) }, native: { min: Math.min(...tb), med: median(tb) } };
}

const rows = [];
const row = (what, r, flops) => {
  const gf = (ms) => (flops ? ` (${(flops / ms / 1e6).toFixed(0)})` : "");
  rows.push(`| ${what} | ${r.wasm.min.toFixed(3)}${gf(r.wasm.min)} | ${r.wasm.med.toFixed(3)} | ${r.native.min.toFixed(3)}${gf(r.native.min)} | ${r.native.med.toFixed(3)} | ${(r.wasm.min / r.native.min).toFixed(2)}× |`);
};

// GEMM: one product through the blocked loops' kernel call (MC rows a call, as runGemm), B packed once.
const memory = b.wasm.asm.memory;
for (const [M, N, K, what] of [
  [4352, 172, 64, "check gate/up (4352, 64)·(172, 64)ᵀ"],
  [4352, 64, 172, "check down (4352, 172)·(64, 172)ᵀ"],
  [4352, 64, 64, "check q/o (4352, 64)·(64, 64)ᵀ"],
  [512, 704, 256, "20M Llama gate/up (512, 256)·(704, 256)ᵀ"],
  [512, 2048, 256, "20M Llama lm_head block (512, 256)·(2048, 256)ᵀ"],
]) {
  const floats = M * K + K * N + Math.ceil(N / 8) * 8 * K + 2 * M * N;
  const base = b.wasm._malloc(floats * 4 + 256) >>> 0;
  const A = base;
  const Bm = A + M * K * 4;
  const P = Bm + K * N * 4;
  const C = P + Math.ceil(N / 8) * 8 * K * 4;
  let heap = b.wasm.HEAPF32;
  for (let i = 0; i < M * K + K * N; i++) {
    heap[(A >>> 2) + i] = Math.random() - 0.5;
  }
  packPanels(heap, Bm >>> 2, 1, K, 0, K, 0, N, P >>> 2); // B stored (N, K): a linear layer's weight
  const { gemm } = simdGemm(memory);
  const MC = GEMM_BLOCKS.MC;
  const run = (f) => () => {
    heap = b.wasm.HEAPF32;
    for (let ic = 0; ic < M; ic += MC) {
      f(A + ic * K * 4, P, C + ic * N * 4, Math.min(MC, M - ic), N, K, K * 4, 4, N * 4, 0);
    }
  };
  row(what, pair(run(gemm), run((...args) => native.gemm(heap, ...args))), 2 * M * N * K);
  b.wasm._free(base);
}

// Fused attention (head size 8): the check's prefill with the template's shared prefix, without one, a decode step.
for (const [B, nh, nkv, T, L, P, what] of [
  [256, 8, 4, 16, 16, 37, "check prefill, 53 keys (template prefix 37 + 16) (256, 8 heads, T 16)"],
  [256, 8, 4, 17, 17, 0, "check prefill, 17 keys (256, 8 heads, T 17)"],
  [64, 8, 4, 1, 200, 0, "decode step, 200 keys (64, 8 heads, T 1)"],
]) {
  const q = tf.randomNormal([B, nh, T, 8]);
  const k = tf.randomNormal([B, nkv, P + L, 8]);
  const v = tf.randomNormal([B, nkv, P + L, 8]);
  const bias = tf.tile(attentionBias(T, P + L), [B, 1, 1, 1]);
  const free = (o) => b.disposeData(o.dataId);
  row(`attention: ${what}`, pair(() => wasmAttend(b, q, k, v, bias, 0.35, false), () => wasmAttend(b, q, k, v, bias, 0.35, true), free));
  tf.dispose([q, k, v, bias]);
}

// SwiGLU forward and backward.
for (const shape of [[256, 17, 172], [8, 64, 704]]) {
  const [g, u, dy] = [tf.randomNormal(shape, 0, 3), tf.randomNormal(shape), tf.randomNormal(shape)];
  const free = (o) => [o].flat().forEach((t) => b.disposeData(t.dataId));
  row(`SwiGLU forward (${shape.join(", ")})`, pair(() => wasmSwiglu(b, g, u, shape, false), () => wasmSwiglu(b, g, u, shape, true), free));
  row(`SwiGLU backward (${shape.join(", ")})`, pair(() => wasmSwigluGrad(b, dy, g, u, false), () => wasmSwigluGrad(b, dy, g, u, true), free));
  tf.dispose([g, u, dy]);
}

console.log(`${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, Node ${process.version}, load ${os.loadavg()[0].toFixed(1)}; native: ${nativeStatus()}; ${reps} interleaved calls each`);
console.log("| kernel | wasm min ms (GFLOP/s) | wasm median | native min ms (GFLOP/s) | native median | wasm ÷ native (min) |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
console.log(rows.join("\n"));
