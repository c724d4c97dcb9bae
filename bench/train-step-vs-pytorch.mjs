#!/usr/bin/env node
// One training step of the ~20M-parameter Llama (vocab 32000, hidden 256, 4 layers, 4 heads,
// intermediate 704, batch 8 × seq 64, AdamW), ours against plain PyTorch
// (bench/pytorch_llama_step.py, Debian python3-torch + libopenblas0-pthread), alternately in
// one run, from the same weights and tokens. Prints medians and the ratio. Not part of CI.
//
//   npx tsc -b packages/core && node bench/train-step-vs-pytorch.mjs
//     [--rounds 5] [--steps 2] [--backends wasm,cpu] [--cpu-rounds 1] [--threads 2,1]
//     [--profile] [--no-pytorch]
//
// Each round runs --steps steps of every side in turn: ours on each backend, then PyTorch
// with each thread count of --threads (one process each). Medians are over every timed step,
// after one warm-up step per side, whose losses are printed (same weights and tokens: they
// agree). Wall time is what the ratios compare; our CPU time is printed beside it, since
// other jobs on the machine slow the wall clock (PyTorch's 2 threads suffer most: each
// parallel op waits for both). --profile adds where one step of ours spends its CPU, by
// kernel. If `import torch` fails under /usr/bin/python3, the script installs python3-torch
// and libopenblas0-pthread with apt-get (it says so first).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { installKernelProfiler } from "./lib/kernel-profile.mjs";
import { dist, llama20m, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    steps: { type: "string", default: "2" },
    backends: { type: "string", default: "wasm,cpu" },
    "cpu-rounds": { type: "string", default: "1" },
    threads: { type: "string", default: "2,1" },
    workers: { type: "string", default: "1" },
    profile: { type: "boolean", default: false },
    "no-pytorch": { type: "boolean", default: false },
  },
});
const rounds = Number(args.rounds);
const stepsPerRound = Number(args.steps);
const PYTHON = "/usr/bin/python3"; // Debian's python, where python3-torch installs
const LR = 1e-4;
const WEIGHT_DECAY = 0.01;

/** Debian's torch importable, installing it with apt-get when it is not. */
function ensureTorch() {
  const probe = () => spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
  if (probe()) return true;
  console.error("PyTorch is missing: running `apt-get update` and `apt-get install -y python3-torch libopenblas0-pthread`");
  for (const cmd of [["apt-get", ["update"]], ["apt-get", ["install", "-y", "python3-torch", "libopenblas0-pthread"]]]) {
    const r = spawnSync(cmd[0], cmd[1], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    if (r.status !== 0) {
      console.error(`\`${cmd[0]} ${cmd[1].join(" ")}\` failed (exit ${r.status}); run it as root, or pass --no-pytorch`);
      return false;
    }
  }
  return probe();
}

/** The PyTorch side: a child process answering one JSON line per command. */
function startTorch(threads) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "pytorch_llama_step.py");
  const child = spawn(PYTHON, [script], { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) } });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async send(msg) {
      child.stdin.write(`${JSON.stringify(msg)}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error("the PyTorch process ended");
      const reply = JSON.parse(value);
      if (reply.error) throw new Error(`PyTorch: ${reply.error}`);
      return reply;
    },
    quit() {
      child.stdin.end(`${JSON.stringify({ cmd: "quit" })}\n`);
    },
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const { initBackend } = await dist("backend.js");
const { forward } = await dist("model/forward.js");
const { maskedCrossEntropy } = await dist("train/loss.js");
const { AdamW } = await dist("train/adamw.js");
const { trainStep } = await dist("train/train-step.js");
const { writeSafetensors } = await dist("io/safetensors-write.js");
const { createDataParallel, disposeDataParallel } = await dist("parallel/data-parallel.js");
const { splitBatch } = await dist("parallel/gradient-job.js");
const { globalNorm } = await dist("train/grad-utils.js");

const model20m = await llama20m();
const tmp = mkdtempSync(path.join(os.tmpdir(), "oml-bench-step-"));
try {
  const weightsFile = path.join(tmp, "model.safetensors");
  await writeSafetensors(weightsFile, model20m.tensors);

  /** A side of the comparison: a warm-up step (its loss is compared), then timed steps. */
  const sides = [];
  for (const backend of args.backends.split(",")) {
    sides.push({ label: `ours, tfjs ${backend}`, backend, rounds: backend === "cpu" ? Number(args["cpu-rounds"]) : rounds, ...(await oursSide(backend)) });
  }
  const workers = Number(args.workers);
  if (workers > 0 && args.backends.split(",").includes("wasm")) {
    sides.push({ label: `ours, tfjs wasm, main thread + ${workers} worker${workers > 1 ? "s" : ""}`, rounds, ...(await dataParallelSide("wasm", workers)) });
  }
  if (!args["no-pytorch"] && ensureTorch()) {
    for (const threads of args.threads.split(",").map(Number)) {
      sides.push({ label: `PyTorch, ${threads} thread${threads > 1 ? "s" : ""}`, rounds, ...(await torchSide(threads)) });
    }
  }

  /** Our step on one backend: variables from the same weights, one step = trainStep. */
  async function oursSide(backend) {
    let state;
    const setUp = async () => {
      await initBackend(backend);
      if (state) return;
      const params = new Map();
      for (const [name, t] of model20m.tensors) {
        params.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, `${backend}/${name}`)));
      }
      const model = { config: model20m.config, weights: params, dir: tmp, generationConfig: null };
      const ids = tf.tensor2d(model20m.ids, [model20m.ids.length, model20m.ids[0].length], "int32");
      const optimizer = new AdamW({ weightDecay: WEIGHT_DECAY });
      const lossFn = () => maskedCrossEntropy(forward(model, ids, { weights: params }), ids);
      state = { params, ids, optimizer, step: () => trainStep({ lossFn, params, optimizer, lr: LR }).loss };
    };
    return {
      async steps(n) {
        await setUp();
        const out = { ms: [], cpuMs: [], loss: [] };
        for (let i = 0; i < n; i++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          out.loss.push(state.step());
          const c = process.cpuUsage(c0);
          out.ms.push(performance.now() - t0);
          out.cpuMs.push((c.user + c.system) / 1000);
        }
        return out;
      },
      async profile() {
        await setUp();
        const prof = installKernelProfiler(tf, backend);
        prof.run(() => state.step());
        return prof.report(15);
      },
      async dispose() {
        await initBackend(backend);
        tf.dispose([...state.params.values(), state.ids]);
        state.optimizer.dispose();
      },
    };
  }

  /** The same step with the batch split over the main thread and worker threads (parallel/data-parallel.ts). */
  async function dataParallelSide(backend, n) {
    await initBackend(backend);
    const params = new Map();
    for (const [name, t] of model20m.tensors) {
      params.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), true, `dp/${name}`)));
    }
    const model = { config: model20m.config, weights: params, dir: tmp, generationConfig: null };
    const dp = await createDataParallel({ model, vars: params, workers: n, backend });
    const optimizer = new AdamW({ weightDecay: WEIGHT_DECAY });
    const flat = Int32Array.from(model20m.ids.flat());
    const B = model20m.ids.length;
    const T = model20m.ids[0].length;
    const batch = { inputIds: flat, labels: flat, attentionMask: new Int32Array(B * T).fill(1), B, T };
    const jobs = splitBatch(batch, n + 1);
    return {
      async steps(k) {
        await initBackend(backend);
        const out = { ms: [], cpuMs: [], loss: [] };
        for (let i = 0; i < k; i++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          const { loss, grads } = await dp.gradients(jobs);
          globalNorm(grads);
          tf.tidy(() => optimizer.step(params, grads, LR));
          tf.dispose([...grads.values()]);
          dp.setWeights();
          const c = process.cpuUsage(c0);
          out.ms.push(performance.now() - t0);
          out.cpuMs.push((c.user + c.system) / 1000);
          out.loss.push(loss);
        }
        return out;
      },
      async dispose() {
        await disposeDataParallel(dp);
        tf.dispose([...params.values()]);
        optimizer.dispose();
      },
    };
  }

  async function torchSide(threads) {
    const torch = startTorch(threads);
    const info = await torch.send({ cmd: "init", config: model20m.hf, weights: weightsFile, ids: model20m.ids, lr: LR, weight_decay: WEIGHT_DECAY, threads });
    process.stderr.write(`PyTorch ${info.torch}: ${info.threads} threads, ${info.params} parameters\n`);
    return {
      steps: (n) => torch.send({ cmd: "steps", n }),
      dispose: () => torch.quit(),
    };
  }

  for (const side of sides) {
    side.ms = [];
    side.cpuMs = [];
    side.firstLoss = (await side.steps(1)).loss[0]; // warm-up (kernels compile, heaps grow)
  }
  for (let round = 0; round < rounds; round++) {
    for (const side of sides.filter((x) => round < x.rounds)) {
      const r = await side.steps(stepsPerRound);
      side.ms.push(...r.ms);
      side.cpuMs.push(...(r.cpuMs ?? []));
      process.stderr.write(`round ${round + 1}/${rounds}: ${side.label}: ${r.ms.map((x) => x.toFixed(0)).join(", ")} ms\n`);
    }
  }
  for (const side of sides.filter((x) => x.profile && args.profile)) {
    side.profileText = await side.profile();
  }
  for (const side of sides) {
    await side.dispose();
  }

  const cpus = os.cpus();
  const torchSides = sides.filter((x) => x.label.startsWith("PyTorch"));
  const load = os.loadavg()[0].toFixed(1);
  console.log(`Machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, Node ${process.version}, load average ${load}, ${new Date().toISOString().slice(0, 10)}; ${model20m.params} parameters, batch ${model20m.ids.length} × ${model20m.ids[0].length}, AdamW`);
  console.log(`| step | steps timed | median wall ms | median CPU ms | first loss | ${torchSides.map((t) => `÷ ${t.label}`).join(" | ")} |`);
  console.log(`|---|---:|---:|---:|---:|${torchSides.map(() => "---:").join("|")}|`);
  for (const side of sides) {
    const ratios = torchSides.map((t) => `${(median(side.ms) / median(t.ms)).toFixed(2)}×`);
    console.log(`| ${side.label} | ${side.ms.length} | ${median(side.ms).toFixed(0)} | ${side.cpuMs.length ? median(side.cpuMs).toFixed(0) : "—"} | ${side.firstLoss.toFixed(5)} | ${ratios.join(" | ")} |`);
  }
  for (const side of sides.filter((x) => x.profileText)) {
    console.log(`\nWhere ${side.label}'s step goes:\n\n${side.profileText}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
