#!/usr/bin/env node
// Engine throughput per tfjs backend (issue 3's benchmark table): forward tokens/s and
// generation on stories260K, forward tokens/s and one training step on the ~20M-parameter
// Llama, with the peak RSS of each backend's run (one child process per backend).
//
//   npx tsc -b packages/core && node bench/engine.mjs [--backends wasm,cpu] [--reps 3] [--cpu-train]
//
// Times are medians of --reps runs after a warm-up, in wall seconds (since 2026-11-29: the
// wasm GEMM pool puts a second thread on big products; OML_GEMM_THREADS=0 for one thread; run
// it on an idle machine). The cpu backend's 20M training step takes minutes: it runs only
// with --cpu-train.
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { dist, llama20m, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    backends: { type: "string", default: "wasm,cpu" },
    backend: { type: "string" }, // child mode
    reps: { type: "string", default: "3" },
    "cpu-train": { type: "boolean", default: false },
  },
});
const STORIES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../shared/models/stories260K");

if (!args.backend) {
  const rows = [];
  for (const backend of args.backends.split(",")) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--backend", backend, "--reps", args.reps, ...(args["cpu-train"] ? ["--cpu-train"] : [])], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    rows.push(JSON.parse(out.trim().split("\n").pop()));
  }
  const names = Object.keys(rows[0].results);
  console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)} (median wall time of ${args.reps}; GEMM pool ${process.env.OML_GEMM_THREADS === "0" ? "off" : "on"})`);
  console.log(`| measure | ${rows.map((r) => r.backend).join(" | ")} |`);
  console.log(`|---|${rows.map(() => "---:").join("|")}|`);
  for (const name of names) {
    console.log(`| ${name} | ${rows.map((r) => r.results[name] ?? "—").join(" | ")} |`);
  }
  console.log(`| peak RSS MB | ${rows.map((r) => r.peakRssMb).join(" | ")} |`);
  process.exit(0);
}

// child: one backend
const backend = args.backend;
const reps = Number(args.reps);
const { initBackend } = await dist("backend.js");
const { loadModel, disposeModel } = await dist("model/load-model.js");
const { forward } = await dist("model/forward.js");
const { generate } = await dist("model/generate.js");
const { maskedCrossEntropy } = await dist("train/loss.js");
const { AdamW } = await dist("train/adamw.js");
const { trainStep } = await dist("train/train-step.js");
await initBackend(backend);

/**
 * Median seconds of fn() over reps runs after one warm-up: wall time, since the wasm GEMM pool
 * (kernels/gemm-pool.ts) puts a second thread on big products (CPU time counts both; compare
 * with OML_GEMM_THREADS=0 for one thread). Run it on an idle machine.
 */
async function cpuSeconds(fn, n = reps) {
  await fn();
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  return t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
}
const results = {};
/** Read a result back (as a caller would) and free it. */
const readAndDispose = (t) => {
  t.dataSync();
  t.dispose();
};
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

// stories260K forward (prefill, logits of the last position) and generation
const stories = await loadModel(STORIES);
for (const [B, T] of [[1, 20], [256, 20]]) {
  const ids = tf.tensor2d(Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => 1 + ((b * 31 + t * 7) % 500))), [B, T], "int32");
  const s = await cpuSeconds(() => readAndDispose(forward(stories, ids, { lastOnly: true })));
  results[`stories260K forward, batch ${B} × ${T}: tokens/s`] = fmt((B * T) / s);
  ids.dispose();
}
{
  const prompts = Array.from({ length: 64 }, (_, b) => [1, ...Array.from({ length: 8 }, (_, t) => 3 + ((b * 13 + t * 5) % 500))]);
  const s = await cpuSeconds(() => generate(stories, prompts, { maxNewTokens: 32, eosIds: [] }));
  results["stories260K greedy generation, 64 prompts × 32 new tokens: tokens/s"] = fmt((64 * 32) / s);
}
disposeModel(stories);

// 20M Llama: forward and one training step (batch 8 × 64, AdamW)
const m = await llama20m();
const params = new Map();
for (const [name, t] of m.tensors) {
  params.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, name)));
}
const model = { config: m.config, weights: params, dir: "", generationConfig: null };
const ids = tf.tensor2d(m.ids, [m.ids.length, m.ids[0].length], "int32");
{
  const s = await cpuSeconds(() => readAndDispose(forward(model, ids)), backend === "cpu" ? 1 : reps);
  results["20M Llama forward, batch 8 × 64: tokens/s"] = fmt(512 / s);
}
if (backend !== "cpu" || args["cpu-train"]) {
  const optimizer = new AdamW({ weightDecay: 0.01 });
  const s = await cpuSeconds(() => trainStep({ lossFn: () => maskedCrossEntropy(forward(model, ids, { weights: params }), ids), params, optimizer, lr: 1e-4 }), backend === "cpu" ? 1 : reps);
  results["20M Llama training step (AdamW), batch 8 × 64: ms"] = fmt(s * 1000);
  optimizer.dispose();
}
tf.dispose([...params.values(), ids]);
if (tf.memory().numTensors !== 0) {
  throw new Error(`bench/engine.mjs leaked ${tf.memory().numTensors} tensors on ${backend}`);
}
console.log(JSON.stringify({ backend, results, peakRssMb: Math.round((process.resourceUsage().maxRSS * 1024) / 1e6) }));
