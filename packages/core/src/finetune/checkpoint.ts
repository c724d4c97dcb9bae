/**
 * Per-epoch checkpoints under `<hash>.partial/checkpoint/`, so `--resume` continues a killed
 * run to the same result: the trained weights, the best weights so far, AdamW's moments
 * (as safetensors: m/<name>, v/<name>) and the loop state. Written to `checkpoint.tmp` and
 * renamed, so a kill mid-write leaves the previous checkpoint intact.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import { AdamW, type AdamWParamState } from "../train/adamw.js";
import { pathExists } from "../util/json-file.js";
import type { TrainState } from "./train-model.js";

export interface Checkpoint {
  state: TrainState;
  weights: Map<string, Float32Array>;
  best: Map<string, Float32Array> | null;
  optimizer: Map<string, AdamWParamState>;
}

const tensorsOf = (m: Map<string, Float32Array>, shapes: Map<string, number[]>): Map<string, { shape: number[]; data: Float32Array }> =>
  new Map([...m].map(([n, d]) => [n, { shape: shapes.get(n) ?? [d.length], data: d }]));

export async function writeCheckpoint(partialDir: string, state: TrainState, vars: Map<string, tf.Variable>, optimizer: AdamW, best: Map<string, Float32Array> | null): Promise<void> {
  const dir = path.join(partialDir, "checkpoint");
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const shapes = new Map([...vars].map(([n, v]) => [n, v.shape]));
  const weights = new Map<string, Float32Array>();
  for (const [n, v] of vars) {
    weights.set(n, (await v.data()) as Float32Array);
  }
  await writeSafetensors(path.join(tmp, "weights.safetensors"), tensorsOf(weights, shapes));
  if (best) {
    await writeSafetensors(path.join(tmp, "best.safetensors"), tensorsOf(best, shapes));
  }
  const opt = new Map<string, { shape: number[]; data: Float32Array }>();
  const steps: Record<string, number> = {};
  for (const [n, s] of optimizer.exportState()) {
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
  const weights = await flat(path.join(dir, "weights.safetensors"));
  const best = (await pathExists(path.join(dir, "best.safetensors"))) ? await flat(path.join(dir, "best.safetensors")) : null;
  const raw = await flat(path.join(dir, "optimizer.safetensors"));
  const optimizer = new Map<string, AdamWParamState>();
  for (const [n, step] of Object.entries(steps)) {
    const m = raw.get(`m/${n}`);
    const v = raw.get(`v/${n}`);
    if (m && v) {
      optimizer.set(n, { m, v, step });
    }
  }
  return { state, weights, best, optimizer };
}
