#!/usr/bin/env node
// Issue 9 ("use both cores"): epochs of oml-finetune's training loop (trainModel) on the ~20M
// Llama of bench/lib/llama-20m.mjs, the main thread alone against the main thread + worker
// threads (TrainConfig.workers, as `oml-finetune --workers`), from the same weights and rows.
// Prints wall and CPU time per epoch (CPU of the whole process: every thread) and the epoch
// losses of each side, which agree to float32 rounding. Not part of CI.
//
//   npx pnpm build && node bench/train-workers.mjs [--workers 0,1] [--epochs 3] [--rows 64]
//     [--batch 8] [--seq 64] [--accumulation 1] [--backend wasm]
//
// Rows are seq tokens of random ids with the loss on the second half (an SFT-like row; a
// fingerprint row is shorter). --accumulation 1 steps AdamW after every micro-batch (the
// --sft-data default); pass the micro-batch count for one full-batch step an epoch (the
// fingerprinting default). Sides run in turn, the first epoch of each is the warm-up.
import os from "node:os";
import { parseArgs } from "node:util";
import { dist, lcg, llama20m, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    workers: { type: "string", default: "0,1" },
    epochs: { type: "string", default: "3" },
    rows: { type: "string", default: "64" },
    batch: { type: "string", default: "8" },
    seq: { type: "string", default: "64" },
    accumulation: { type: "string", default: "1" },
    backend: { type: "string", default: "wasm" },
  },
});
const [epochs, nRows, batch, seq, accumulation] = ["epochs", "rows", "batch", "seq", "accumulation"].map((k) => Number(args[k]));

const { initBackend } = await dist("backend.js");
const { trainModel } = await dist("finetune/train-model.js");
const { IGNORE_INDEX } = await dist("train/loss.js");

await initBackend(args.backend);
const m = await llama20m();
const rnd = lcg(7);
const rows = Array.from({ length: nRows }, () => {
  const inputIds = Array.from({ length: seq }, () => 3 + Math.floor(rnd() * (m.config.vocabSize - 3)));
  return { inputIds, labels: inputIds.map((id, t) => (t < seq / 2 ? IGNORE_INDEX : id)) };
});
const task = { size: rows.length, row: (i) => rows[i] };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results = [];
for (const workers of args.workers.split(",").map(Number)) {
  const vars = new Map([...m.tensors].map(([name, t]) => [name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, `bench-w${workers}/${name}`))]));
  const model = { config: m.config, weights: vars, dir: "", generationConfig: null };
  const epochsSeen = [];
  let mark = { t: performance.now(), cpu: process.cpuUsage() };
  const cfg = {
    epochs, learningRate: 1e-4, weightDecay: 0.01, batchSize: batch, gradientAccumulation: accumulation, schedule: "constant", warmupSteps: 0,
    maxGradNorm: 1, lambda: 0, averagingInterval: "epoch", earlyStopLoss: 0, stopAtSuccess: 100, seed: 1, padId: 0, workers,
  };
  await trainModel(model, vars, null, task, cfg, null, {
    onEvent: (e) => {
      if (e.type === "epoch-start") {
        mark = { t: performance.now(), cpu: process.cpuUsage() };
      } else if (e.type === "epoch-end") {
        const c = process.cpuUsage(mark.cpu);
        epochsSeen.push({ loss: e.loss, wall: (performance.now() - mark.t) / 1000, cpu: (c.user + c.system) / 1e6 });
        process.stderr.write(`workers ${workers}, epoch ${e.epoch}: loss ${e.loss.toFixed(6)}, ${epochsSeen.at(-1).wall.toFixed(2)} s wall, ${epochsSeen.at(-1).cpu.toFixed(2)} s CPU\n`);
      }
    },
  });
  tf.dispose([...vars.values()]);
  results.push({ workers, epochs: epochsSeen });
}

const load = os.loadavg().map((x) => x.toFixed(1)).join(" ");
console.log(`${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, ${args.backend}, load average ${load}; ${m.params} parameters, ${nRows} rows of ${seq} tokens, batch ${batch}, ${Math.ceil(nRows / batch / accumulation)} AdamW steps an epoch`);
console.log("| threads | epochs timed | median s/epoch wall | median s/epoch CPU | epoch losses |");
console.log("|---|---:|---:|---:|---|");
for (const r of results) {
  const timed = r.epochs.slice(1); // the first epoch warms up (kernels, heaps, worker start)
  const label = r.workers === 0 ? "main thread" : `main thread + ${r.workers} worker${r.workers > 1 ? "s" : ""}`;
  console.log(`| ${label} | ${timed.length} | ${median(timed.map((e) => e.wall)).toFixed(2)} | ${median(timed.map((e) => e.cpu)).toFixed(2)} | ${r.epochs.map((e) => e.loss.toFixed(6)).join(", ")} |`);
}
