/**
 * trainModel with worker threads against the main thread alone, on a tiny model (wasm): the
 * same epoch losses and final weights within float32 rounding, bit-identical from run to run,
 * and the workers closed when training throws.
 * The worker runs dist/parallel/data-parallel-worker.js: build first (`pnpm test` does).
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, expect, test, vi } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { initBackend } from "../backend.js";
import { createTinyModel } from "../model/create-tiny-model.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import { snapshotWeights } from "../train/averaging.js";
import type { EncodedRow } from "../train/data.js";
import { maxScaledError } from "../train/gradient-check.js";
import { IGNORE_INDEX } from "../train/loss.js";
import { trainModel, type TrainConfig, type TrainTask } from "./train-model.js";

const X = IGNORE_INDEX;
let model: Model;
let anchor: Map<string, Float32Array>;
beforeAll(async () => {
  await initBackend("wasm");
  const root = await mkdtemp(path.join(os.tmpdir(), "oml-train-dp-"));
  model = await loadModel((await createTinyModel(path.join(root, "tiny"), { seed: 5, hidden: 16 })).dir);
  anchor = snapshotWeights(model.weights);
});
afterAll(() => disposeModel(model));

expectNoLeakedTensors();

// Rows of different lengths (padding inside a micro-batch), 1–2 answer tokens each.
const rows: EncodedRow[] = [
  { inputIds: [1, 70, 71, 72], labels: [X, X, X, 72] },
  { inputIds: [1, 80, 81, 82, 83], labels: [X, X, X, 82, 83] },
  { inputIds: [1, 90, 91], labels: [X, X, 91] },
  { inputIds: [1, 60, 61, 62, 63, 64], labels: [X, X, X, X, 63, 64] },
  { inputIds: [1, 50, 51, 52], labels: [X, X, 51, 52] },
  { inputIds: [1, 40, 41, 42, 43], labels: [X, X, X, X, 43] },
];
const task: TrainTask = { size: rows.length, row: (i) => rows[i] as EncodedRow };
const cfg = (over: Partial<TrainConfig>): TrainConfig => ({
  epochs: 3,
  learningRate: 1e-2,
  weightDecay: 0.01,
  batchSize: 3, // each micro-batch splits into jobs of 2 and 1 rows
  gradientAccumulation: 2,
  schedule: "constant",
  warmupSteps: 0,
  maxGradNorm: 1,
  lambda: 0.5,
  averagingInterval: "epoch",
  earlyStopLoss: 0,
  stopAtSuccess: 100,
  seed: 3,
  padId: 3,
  ...over,
});

let counter = 0;
/** Train fresh variables from the base weights; the losses of each epoch and the final weights. */
async function run(over: Partial<TrainConfig>): Promise<{ losses: number[]; weights: Map<string, Float32Array> }> {
  const vars = new Map([...model.weights].map(([n, t]) => [n, tf.variable(t, true, `train-dp-test/${counter}/${n}`)]));
  counter++;
  try {
    const losses: number[] = [];
    await trainModel(model, vars, anchor, task, cfg(over), null, { onEvent: (e) => e.type === "epoch-end" && losses.push(e.loss) });
    return { losses, weights: snapshotWeights(vars) };
  } finally {
    tf.dispose([...vars.values()]);
  }
}

function expectSame(a: { losses: number[]; weights: Map<string, Float32Array> }, b: { losses: number[]; weights: Map<string, Float32Array> }): void {
  expect(a.losses).toHaveLength(b.losses.length);
  a.losses.forEach((l, i) => expect(Math.abs(l - (b.losses[i] as number)) / Math.abs(l)).toBeLessThan(1e-5));
  for (const [name, w] of a.weights) {
    expect(maxScaledError(w, b.weights.get(name) ?? []), name).toBeLessThan(1e-5);
  }
}

test.each([
  ["full batch, clipping, averaging after each epoch", {}],
  ["a step per micro-batch, averaging after each step", { gradientAccumulation: 1, averagingInterval: "step", lambda: 0.25, schedule: "linear" }],
] satisfies [string, Partial<TrainConfig>][])("%s: 1 worker gives the main thread's epoch losses and final weights", async (_, over) => {
  const single = await run(over);
  const parallel = await run({ ...over, workers: 1 });
  expect(single.losses[2]).toBeLessThan(single.losses[0] as number); // it trains
  expectSame(parallel, single);
});

test("the same seed and worker count give bit-identical losses and weights", async () => {
  const a = await run({ workers: 1, epochs: 2 });
  const b = await run({ workers: 1, epochs: 2 });
  expect(b.losses).toEqual(a.losses);
  for (const [name, w] of a.weights) {
    expect(Buffer.compare(Buffer.from(w.buffer), Buffer.from((b.weights.get(name) as Float32Array).buffer)), name).toBe(0);
  }
});

test("the workers are closed when training throws", async () => {
  const terminate = vi.spyOn(Worker.prototype, "terminate");
  try {
    const vars = new Map([...model.weights].map(([n, t]) => [n, tf.variable(t, true, `train-dp-test/${counter}/${n}`)]));
    counter++;
    const failing = trainModel(model, vars, anchor, task, cfg({ workers: 1 }), null, {
      onCheckpoint: () => Promise.reject(new Error("disk full")),
    });
    await expect(failing).rejects.toThrow("disk full");
    tf.dispose([...vars.values()]);
    expect(terminate).toHaveBeenCalledTimes(1);
  } finally {
    terminate.mockRestore();
  }
});
