#!/usr/bin/env node
// Peak memory of full fine-tuning on the ~20M-parameter Llama (batch 8 × 64 per micro-batch),
// with the pieces train-model.ts holds: weights as variables, a gradient accumulator over
// micro-batches, global-norm clipping, AdamW (moments outside the heap), the averaging anchor
// w0 (outside the heap) and, optionally, a best-weights snapshot kept in memory.
//
//   npx tsc -b packages/core && node --expose-gc bench/train-memory.mjs [--backend wasm]
//     [--steps 3] [--accumulation 2] [--best memory|reuse|none] [--lean]
//
// Default: what train-model.ts does today (acc.grads, clipByGlobalNorm's scaled copies, a new
// best snapshot each step). --lean: the accumulator's factor and the clipping coefficient
// go to AdamW as gradScale (no gradient copies); --best reuse overwrites one snapshot.
//
// Reports peak RSS (getrusage maxRSS) after each phase, the wasm heap size, tfjs's live
// tensor bytes and JS ArrayBuffer bytes, and bytes per parameter. Run it in a fresh process.
import os from "node:os";
import { parseArgs } from "node:util";
import { dist, llama20m, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    backend: { type: "string", default: "wasm" },
    steps: { type: "string", default: "3" },
    accumulation: { type: "string", default: "2" },
    best: { type: "string", default: "memory" },
    lean: { type: "boolean", default: false },
  },
});
const MB = 1e6;
const { initBackend } = await dist("backend.js");
const { forward } = await dist("model/forward.js");
const { maskedCrossEntropy } = await dist("train/loss.js");
const { AdamW } = await dist("train/adamw.js");
const { GradAccumulator, clipByGlobalNorm, clipCoefficient, globalNorm } = await dist("train/grad-utils.js");
const { averageInto, snapshotWeights } = await dist("train/averaging.js");

await initBackend(args.backend);
const rows = [];
const heapBytes = () => tf.backend().wasm?.HEAPU8.length ?? 0;
function record(phase) {
  const mem = process.memoryUsage();
  rows.push({ phase, maxRss: process.resourceUsage().maxRSS * 1024, rss: mem.rss, heap: heapBytes(), tfBytes: tf.memory().numBytes, arrayBuffers: mem.arrayBuffers });
}
record("backend started");

let m = await llama20m();
const P = m.params;
const vars = new Map();
for (const [name, t] of m.tensors) {
  vars.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, name)));
}
const config = m.config;
const ids = tf.tensor2d(m.ids, [m.ids.length, m.ids[0].length], "int32");
m = undefined; // the loader's Float32Arrays: garbage from here on, as after loadModel
globalThis.gc?.();
record("weights loaded (variables)");

const anchor = snapshotWeights(vars);
record("anchor w0 copied out of the heap");

const model = { config, weights: new Map(vars), dir: "", generationConfig: null };
const optimizer = new AdamW({ weightDecay: 0.01 });
const acc = new GradAccumulator();
let best = null;
const accumulation = Number(args.accumulation);
for (let step = 1; step <= Number(args.steps); step++) {
  for (let mb = 0; mb < accumulation; mb++) {
    const { value, grads } = tf.tidy(() => tf.variableGrads(() => maskedCrossEntropy(forward(model, ids, { weights: model.weights }), ids), [...vars.values()]));
    const named = new Map([...vars].map(([name, v]) => [name, grads[v.name]]));
    acc.add(named, 1 / accumulation);
    tf.dispose(Object.values(grads));
    value.dispose();
    if (step === 1 && mb === 0) record("first forward + backward");
  }
  if (args.lean) {
    const { grads, factor } = acc.scaled;
    const norm = globalNorm(grads) * Math.abs(factor);
    optimizer.step(vars, grads, 1e-4, { gradScale: factor * clipCoefficient(norm, 1) });
  } else {
    const { grads } = clipByGlobalNorm(acc.grads, 1);
    optimizer.step(vars, grads, 1e-4);
    tf.dispose([...grads.values()]);
  }
  acc.reset();
  averageInto(vars, anchor, 0.01);
  if (args.best === "memory") {
    best = snapshotWeights(vars);
  } else if (args.best === "reuse") {
    best = snapshotWeights(vars, best ?? undefined);
  }
  record(`step ${step} done`);
}
void best;
const last = rows[rows.length - 1];
const first = rows[0];
console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, ${args.backend}; ${P} parameters, ${accumulation} micro-batches of 8 × 64 per step, ${args.lean ? "lean (gradScale, no gradient copies)" : "as train-model.ts"}, best snapshot: ${args.best}`);
console.log("| after | peak RSS MB | RSS MB | wasm heap MB | live tensors MB | JS ArrayBuffers MB |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.phase} | ${(r.maxRss / MB).toFixed(0)} | ${(r.rss / MB).toFixed(0)} | ${(r.heap / MB).toFixed(0)} | ${(r.tfBytes / MB).toFixed(0)} | ${(r.arrayBuffers / MB).toFixed(0)} |`);
}
const perParam = (last.maxRss - first.maxRss) / P;
const heapMax = Math.max(...rows.map((r) => r.heap));
const state = { "weights (heap)": 4, "gradients (heap)": 4, "AdamW m, v": 8, "anchor w0": 4, ...(args.best !== "none" ? { "best snapshot": 4 } : {}) };
const stateBytes = Object.values(state).reduce((a, b) => a + b, 0) * P;
console.log(`\nPeak RSS above the started backend: ${((last.maxRss - first.maxRss) / MB).toFixed(0)} MB = ${perParam.toFixed(1)} bytes/parameter, activations included.`);
console.log(`Parameter state: ${Object.entries(state).map(([k, b]) => `${k} ${b}`).join(" + ")} = ${stateBytes / P} bytes/parameter = ${(stateBytes / MB).toFixed(0)} MB;`);
console.log(`wasm heap high-water ${(heapMax / MB).toFixed(0)} MB, of which ${((heapMax - 8 * P) / MB).toFixed(0)} MB activations, transients and fragmentation (the heap never shrinks).`);
optimizer.dispose();
acc.dispose();
tf.dispose([...vars.values(), ids]);
