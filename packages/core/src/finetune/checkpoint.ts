/**
 * Per-epoch checkpoints under `<hash>.partial/checkpoint/`, so `--resume` continues a killed
 * run to the same result: the trained weights, AdamW's moments (as safetensors: m/<name>,
 * v/<name>) and the loop state, whose `best.epoch` names the best epoch; that epoch's weights
 * are the checkpoint's own when it is the checkpoint's epoch, else the file
 * best-weights.ts keeps beside the checkpoint. Written to `checkpoint.tmp` and renamed, so a
 * kill mid-write leaves the previous checkpoint intact. Written straight from the variables
 * and the optimizer's arrays: a checkpoint costs no second copy of the model in memory.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import type { AdamW, AdamWParamState } from "../train/adamw.js";
import { pathExists } from "../util/json-file.js";
import { weightValues } from "../util/weight-values.js";
import { bestWeightsFile } from "./best-weights.js";
import type { TrainState } from "./train-model.js";

export interface Checkpoint {
  state: TrainState;
  weights: Map<string, Float32Array>;
  optimizer: Map<string, AdamWParamState>;
}

export async function writeCheckpoint(partialDir: string, state: TrainState, vars: Map<string, tf.Variable>, optimizer: AdamW): Promise<void> {
  const dir = path.join(partialDir, "checkpoint");
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const weights = new Map<string, TensorToWrite>([...vars].map(([n, v]) => [n, { shape: v.shape, data: () => weightValues(v) }]));
  await writeSafetensors(path.join(tmp, "weights.safetensors"), weights);
  const opt = new Map<string, TensorToWrite>();
  const steps: Record<string, number> = {};
  for (const [n, s] of optimizer.stateView()) {
    opt.set(`m/${n}`, { shape: [s.m.length], data: s.m });
    opt.set(`v/${n}`, { shape: [s.v.length], data: s.v });
    steps[n] = s.step;
  }
  await writeSafetensors(path.join(tmp, "optimizer.safetensors"), opt);
  await writeFile(path.join(tmp, "state.json"), `${JSON.stringify({ state, steps }, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

export async function readCheckpoint(partialDir: string): Promise<Checkpoint | null> {
  const dir = path.join(partialDir, "checkpoint");
  if (!(await pathExists(path.join(dir, "state.json")))) {
    return null;
  }
  const { state, steps } = JSON.parse(await readFile(path.join(dir, "state.json"), "utf8")) as { state: TrainState; steps: Record<string, number> };
  const flat = async (file: string): Promise<Map<string, Float32Array>> => new Map([...(await readSafetensors(file))].map(([n, t]) => [n, t.data]));
  // A checkpoint of an earlier version kept the best weights inside: move them where they are kept now.
  const legacyBest = path.join(dir, "best.safetensors");
  if (state.best && (await pathExists(legacyBest)) && !(await pathExists(bestWeightsFile(partialDir, state.best.epoch)))) {
    await rename(legacyBest, bestWeightsFile(partialDir, state.best.epoch));
  }
  const weights = await flat(path.join(dir, "weights.safetensors"));
  const raw = await flat(path.join(dir, "optimizer.safetensors"));
  const optimizer = new Map<string, AdamWParamState>();
  for (const [n, step] of Object.entries(steps)) {
    const m = raw.get(`m/${n}`);
    const v = raw.get(`v/${n}`);
    if (m && v) {
      optimizer.set(n, { m, v, step });
    }
  }
  return { state, weights, optimizer };
}
