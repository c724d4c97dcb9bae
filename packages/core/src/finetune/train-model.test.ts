/**
 * The training loop's mixing and averaging on a tiny model, with hand-made rows: values that
 * follow from the definitions (full batch: every micro-batch of epoch 1 sees the base weights).
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { initBackend } from "../backend.js";
import { createTinyModel } from "../model/create-tiny-model.js";
import { forward } from "../model/forward.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import type { BenignRow } from "../quality/benign-rows.js";
import { referenceTopK } from "../quality/kl-loss.js";
import { snapshotWeights } from "../train/averaging.js";
import type { EncodedRow } from "../train/data.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "../train/loss.js";
import { benignPerMicroBatch } from "./run-config.js";
import { trainModel, type TrainConfig, type TrainEvent, type TrainTask } from "./train-model.js";

const X = IGNORE_INDEX;
let model: Model;
let varsList: Map<string, tf.Variable>[] = [];
beforeAll(async () => {
  await initBackend("wasm");
  const root = await mkdtemp(path.join(os.tmpdir(), "oml-train-"));
  model = await loadModel((await createTinyModel(path.join(root, "tiny"), { seed: 4, hidden: 16 })).dir);
});
afterAll(() => disposeModel(model));

expectNoLeakedTensors();
afterEach(() => {
  // runs before the leak check (after-hooks run last-registered first)
  for (const v of varsList) {
    tf.dispose([...v.values()]);
  }
  varsList = [];
});

let counter = 0;
function variables(): Map<string, tf.Variable> {
  const vars = new Map([...model.weights].map(([n, t]) => [n, tf.variable(t, true, `train-model-test/${counter}/${n}`)]));
  counter++;
  varsList.push(vars);
  return vars;
}

const rows: EncodedRow[] = [
  { inputIds: [1, 70, 71, 72], labels: [X, X, X, 72] },
  { inputIds: [1, 80, 81, 82], labels: [X, X, X, 82] },
];
const task: TrainTask = { size: rows.length, row: (i) => rows[i] as EncodedRow };
const cfg = (over: Partial<TrainConfig>): TrainConfig => ({
  epochs: 2,
  learningRate: 1e-2,
  weightDecay: 0,
  batchSize: 1,
  gradientAccumulation: 2,
  schedule: "constant",
  warmupSteps: 0,
  maxGradNorm: 0,
  lambda: 0,
  averagingInterval: "epoch",
  earlyStopLoss: 0,
  stopAtSuccess: 100,
  seed: 1,
  padId: 3,
  ...over,
});

/** Mean CE of one row with the base weights, computed directly. */
function rowLoss(r: EncodedRow): number {
  return tf.tidy(() => {
    const T = r.inputIds.length;
    return maskedCrossEntropy(forward(model, tf.tensor2d([r.inputIds], [1, T], "int32")), tf.tensor2d([r.labels], [1, T], "int32")).dataSync()[0] as number;
  });
}

async function epochEnds(over: Partial<TrainConfig>, anchor: Map<string, Float32Array> | null = null): Promise<{ ends: Extract<TrainEvent, { type: "epoch-end" }>[]; vars: Map<string, tf.Variable> }> {
  const vars = variables();
  const ends: Extract<TrainEvent, { type: "epoch-end" }>[] = [];
  await trainModel(model, vars, anchor, task, cfg(over), null, { onEvent: (e) => e.type === "epoch-end" && ends.push(e) });
  return { ends, vars };
}

test("benign rows per micro-batch: a share β of it, at least one; β = 0.25 for a KL-only mix", () => {
  expect(benignPerMicroBatch(8, 0.25, 0)).toBe(3); // 8 · 0.25 / 0.75 = 2.67
  expect(benignPerMicroBatch(8, 0.5, 0)).toBe(8);
  expect(benignPerMicroBatch(1, 0.1, 0)).toBe(1);
  expect(benignPerMicroBatch(8, 0, 0)).toBe(0);
  expect(benignPerMicroBatch(8, 0, 2)).toBe(3);
});

describe("benign mix", () => {
  const benign: BenignRow[] = [
    { inputIds: [1, 90, 91, 92, 93], labels: [X, X, 91, 92, 93], positions: [1, 2, 3] },
    { inputIds: [1, 100, 101, 102], labels: [X, X, 101, 102], positions: [1, 2] },
  ];
  beforeAll(() => {
    // The base model's own top-k at the answer positions.
    for (const r of benign) {
      const logits = tf.tidy(() => tf.gather(tf.reshape(forward(model, tf.tensor2d([r.inputIds], [1, r.inputIds.length], "int32")), [r.inputIds.length, -1]), r.positions) as tf.Tensor2D);
      r.target = referenceTopK(logits, 16);
      logits.dispose();
    }
  });

  test("epoch 1 (full batch, base weights throughout): task loss and benign CE are the base model's; KL is 0", async () => {
    const { ends } = await epochEnds({ benign: { rows: benign, perMicroBatch: 1, proportion: 0.25, klWeight: 0.5 } });
    const [e1, e2] = ends;
    expect(e1?.loss).toBeCloseTo((rowLoss(rows[0] as EncodedRow) + rowLoss(rows[1] as EncodedRow)) / 2, 5);
    expect(e1?.benignLoss).toBeCloseTo((rowLoss(benign[0] as EncodedRow) + rowLoss(benign[1] as EncodedRow)) / 2, 5);
    expect(Math.abs(e1?.kl as number)).toBeLessThan(1e-6);
    expect(e2?.kl).toBeGreaterThan(0); // the weights moved
    expect(e2?.loss).toBeLessThan(e1?.loss as number);
  });

  test("β = 0 with α > 0: the benign rows feed the KL term only (no benign CE)", async () => {
    const { ends } = await epochEnds({ benign: { rows: benign, perMicroBatch: 1, proportion: 0, klWeight: 1 } });
    expect(ends[0]?.benignLoss).toBe(0);
    expect(ends[1]?.kl).toBeGreaterThan(0);
  });

  test("without a mix the events carry no benign fields", async () => {
    const { ends } = await epochEnds({});
    expect(ends[0]).not.toHaveProperty("benignLoss");
    expect(ends[0]?.successRate).toBeNull(); // no check: SFT-style task
  });
});

test("micro-batch events carry the progress bar's loss: each row's base loss in a full-batch epoch 1, the running mean ending at the epoch's loss", async () => {
  const vars = variables();
  const events: TrainEvent[] = [];
  await trainModel(model, vars, null, task, cfg({ epochs: 1 }), null, { onEvent: (e) => events.push(e) });
  const mbs = events.filter((e): e is Extract<TrainEvent, { type: "micro-batch" }> => e.type === "micro-batch");
  const end = events.find((e): e is Extract<TrainEvent, { type: "epoch-end" }> => e.type === "epoch-end");
  expect(mbs.map((e) => e.done)).toEqual([1, 2]);
  const base = [rowLoss(rows[0] as EncodedRow), rowLoss(rows[1] as EncodedRow)].sort();
  expect(mbs.map((e) => e.loss).sort()[0]).toBeCloseTo(base[0] as number, 5);
  expect(mbs.map((e) => e.loss).sort()[1]).toBeCloseTo(base[1] as number, 5);
  expect(mbs[0]?.meanLoss).toBe(mbs[0]?.loss);
  expect(mbs[1]?.meanLoss).toBeCloseTo(end?.loss as number, 6);
});

describe("averaging interval", () => {
  test("λ = 1 after every step: every micro-batch sees w0, so both epochs' losses are the base model's; the weights end at w0", async () => {
    const anchor = snapshotWeights(model.weights);
    const base = (rowLoss(rows[0] as EncodedRow) + rowLoss(rows[1] as EncodedRow)) / 2;
    const { ends, vars } = await epochEnds({ lambda: 1, averagingInterval: "step", gradientAccumulation: 1 }, anchor);
    expect(ends[0]?.loss).toBeCloseTo(base, 5);
    expect(ends[1]?.loss).toBeCloseTo(base, 5);
    for (const [n, v] of vars) {
      expect(Buffer.compare(Buffer.from((v.dataSync() as Float32Array).buffer), Buffer.from((anchor.get(n) as Float32Array).buffer)), n).toBe(0);
    }
  });

  test("λ = 1 after every epoch: the second micro-batch of an epoch sees the first step's update", async () => {
    const anchor = snapshotWeights(model.weights);
    const base = (rowLoss(rows[0] as EncodedRow) + rowLoss(rows[1] as EncodedRow)) / 2;
    const { ends } = await epochEnds({ lambda: 1, averagingInterval: "epoch", gradientAccumulation: 1 }, anchor);
    expect(Math.abs((ends[0]?.loss as number) - base)).toBeGreaterThan(1e-4);
  });
});
