/**
 * Best weights kept on disk while training goes on: the loop saves an epoch's weights only when
 * it is the best so far and not the last, restores the best at the end, and a run resumed after
 * a crash (checkpoint in memory here, as run-finetune.ts writes it to disk) ends with the same
 * weights as one that was not interrupted.
 */
import { mkdtemp, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { initBackend } from "../backend.js";
import { createTinyModel } from "../model/create-tiny-model.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import { AdamW } from "../train/adamw.js";
import { snapshotWeights } from "../train/averaging.js";
import type { EncodedRow } from "../train/data.js";
import { IGNORE_INDEX } from "../train/loss.js";
import { bestWeightsInMemory, bestWeightsOnDisk } from "./best-weights.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { isNoDecay, trainModel, type TrainConfig, type TrainState, type TrainTask } from "./train-model.js";

const X = IGNORE_INDEX;
let model: Model;
let root: string;
let made: Map<string, tf.Variable>[] = [];
beforeAll(async () => {
  await initBackend("wasm");
  root = await mkdtemp(path.join(os.tmpdir(), "oml-best-"));
  model = await loadModel((await createTinyModel(path.join(root, "tiny"), { seed: 5, hidden: 16 })).dir);
});
afterAll(() => disposeModel(model));

expectNoLeakedTensors();
afterEach(() => {
  // runs before the leak check (after-hooks run last-registered first)
  for (const v of made) {
    tf.dispose([...v.values()]);
  }
  made = [];
});

let counter = 0;
function variables(from?: Map<string, Float32Array>): Map<string, tf.Variable> {
  const vars = new Map<string, tf.Variable>();
  for (const [n, t] of model.weights) {
    const init = from?.get(n);
    const start = init ? tf.tensor(init, t.shape, "float32") : t;
    vars.set(n, tf.variable(start, true, `best-weights-test/${counter}/${n}`));
    if (init) {
      start.dispose();
    }
  }
  counter++;
  made.push(vars);
  return vars;
}

const rows: EncodedRow[] = [
  { inputIds: [1, 70, 71, 72], labels: [X, X, X, 72] },
  { inputIds: [1, 80, 81, 82], labels: [X, X, X, 82] },
];
const cfg: TrainConfig = {
  epochs: 5,
  learningRate: 1e-2,
  weightDecay: 0.01,
  batchSize: 1,
  gradientAccumulation: 2,
  schedule: "constant",
  warmupSteps: 0,
  maxGradNorm: 0,
  lambda: 0.25,
  averagingInterval: "epoch",
  earlyStopLoss: 0,
  stopAtSuccess: 100,
  seed: 3,
  padId: 3,
};
/** A check that scores the epochs as scripted (best: epoch 2), and records each epoch's weights. */
function scriptedTask(rates: number[], seen: Map<string, Float32Array>[]): TrainTask {
  return {
    size: rows.length,
    row: (i) => rows[i] as EncodedRow,
    check: async (weights) => {
      seen.push(snapshotWeights(weights));
      return rates[seen.length - 1] as number;
    },
  };
}
const RATES = [10, 50, 20, 30, 40]; // epoch 2 is best

const same = (a: Map<string, Float32Array>, b: Map<string, Float32Array>): void => {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [n, d] of a) {
    expect(Buffer.compare(Buffer.from(d.buffer), Buffer.from((b.get(n) as Float32Array).buffer)), n).toBe(0);
  }
};

test("the best epoch's weights are restored from disk at the end; only best, not-last epochs are written; nothing is left", async () => {
  const dir = await mkdtemp(path.join(root, "run-"));
  const seen: Map<string, Float32Array>[] = [];
  const written: number[] = [];
  const disk = bestWeightsOnDisk(dir);
  const best = { ...disk, save: async (epoch: number, v: ReadonlyMap<string, tf.Tensor>) => (written.push(epoch), disk.save(epoch, v)) };
  const vars = variables();
  const anchor = snapshotWeights(model.weights);
  const { result } = await trainModel(model, vars, anchor, scriptedTask(RATES, seen), cfg, null, { best });
  expect(result).toMatchObject({ epochsRun: 5, best: { epoch: 2, successRate: 50 } });
  expect(written).toEqual([1, 2]);
  same(snapshotWeights(vars), seen[1] as Map<string, Float32Array>);
  expect(await readdir(dir)).toEqual([]);
});

test("the last epoch, when best, is not written: the variables are the result", async () => {
  const dir = await mkdtemp(path.join(root, "run-"));
  const seen: Map<string, Float32Array>[] = [];
  const vars = variables();
  const written: number[] = [];
  const disk = bestWeightsOnDisk(dir);
  const best = { ...disk, save: async (epoch: number, v: ReadonlyMap<string, tf.Tensor>) => (written.push(epoch), disk.save(epoch, v)) };
  const { result } = await trainModel(model, vars, null, scriptedTask([10, 20, 30], seen), { ...cfg, epochs: 3 }, null, { best });
  expect(result.best.epoch).toBe(3);
  expect(written).toEqual([1, 2]);
  same(snapshotWeights(vars), seen[2] as Map<string, Float32Array>);
});

test("a run resumed after a crash ends with the weights of an uninterrupted one (crash before, at and after the best epoch)", async () => {
  const straightVars = variables();
  const anchor = snapshotWeights(model.weights);
  await trainModel(model, straightVars, anchor, scriptedTask(RATES, []), cfg, null, { best: bestWeightsOnDisk(await mkdtemp(path.join(root, "run-"))) });
  const straight = snapshotWeights(straightVars);

  for (const crashAfter of [2, 3, 4]) {
    const dir = await mkdtemp(path.join(root, "run-"));
    const seen: Map<string, Float32Array>[] = [];
    const task = scriptedTask(RATES, seen);
    const crashed = trainModel(model, variables(), anchor, task, cfg, null, {
      best: bestWeightsOnDisk(dir),
      onCheckpoint: async (state, v, opt) => {
        await writeCheckpoint(dir, state, v, opt);
        if (state.epoch === crashAfter) {
          throw new Error("simulated crash");
        }
      },
    });
    await expect(crashed).rejects.toThrow("simulated crash");
    const ck = await readCheckpoint(dir);
    expect(ck?.state.epoch).toBe(crashAfter);
    const optimizer = new AdamW({ weightDecay: cfg.weightDecay, noDecay: isNoDecay });
    optimizer.adoptState((ck as NonNullable<typeof ck>).optimizer);
    const resumed = variables(ck?.weights);
    await trainModel(model, resumed, anchor, task, cfg, { state: ck?.state as TrainState, optimizer }, { best: bestWeightsOnDisk(dir), onCheckpoint: (s, v, o) => writeCheckpoint(dir, s, v, o) });
    same(snapshotWeights(resumed), straight);
  }
});

test("a run that stopped (success) and crashed before saving does not train on when resumed", async () => {
  const dir = await mkdtemp(path.join(root, "run-"));
  const task = scriptedTask([10, 100, 0, 0, 0], []);
  const anchor = snapshotWeights(model.weights);
  const crashed = trainModel(model, variables(), anchor, task, cfg, null, {
    best: bestWeightsOnDisk(dir),
    onCheckpoint: async (state, v, opt) => {
      await writeCheckpoint(dir, state, v, opt);
      if (state.epoch === 2) {
        throw new Error("simulated crash");
      }
    },
  });
  await expect(crashed).rejects.toThrow("simulated crash");
  const ck = (await readCheckpoint(dir)) as NonNullable<Awaited<ReturnType<typeof readCheckpoint>>>;
  expect(ck.state.stopped).toBe("success");
  const optimizer = new AdamW({ weightDecay: cfg.weightDecay, noDecay: isNoDecay });
  optimizer.adoptState(ck.optimizer);
  const resumed = variables(ck.weights);
  const { result } = await trainModel(model, resumed, anchor, task, cfg, { state: ck.state, optimizer }, { best: bestWeightsOnDisk(dir) });
  expect(result).toMatchObject({ epochsRun: 2, stoppedBecause: "success", best: { epoch: 2 } });
  expect(result.finalLoss).toBe(ck.state.best?.loss); // the last epoch's loss, not NaN
  expect(Number.isFinite(result.finalLoss)).toBe(true);
  same(snapshotWeights(resumed), ck.weights);
});

test("in memory: one snapshot, restored when asked for its epoch", async () => {
  const vars = variables();
  const store = bestWeightsInMemory();
  const start = snapshotWeights(vars);
  await store.save(1, vars);
  const [name, v] = [...vars][0] as [string, tf.Variable];
  tf.tidy(() => v.assign(tf.fill(v.shape, 7)));
  expect(snapshotWeights(vars).get(name)?.[0]).toBe(7);
  await expect(store.restore(2, vars)).rejects.toThrow(/epoch 2's weights were not saved/);
  await store.restore(1, vars);
  same(snapshotWeights(vars), start);
});
