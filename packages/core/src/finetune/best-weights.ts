/**
 * Where the training loop keeps the best weights seen while it trains on (train-model.ts).
 * It saves an epoch's weights only when that epoch is the best so far and not the last one
 * (the last epoch's weights are the live variables), and at the end restores the best epoch's
 * into the variables when it was not the last.
 * - bestWeightsOnDisk: a safetensors file per best epoch in the run's .partial directory
 *   (`best-epoch-<n>.safetensors`, written atomically from the variables without a copy), so
 *   the snapshot costs no memory; `oml-finetune` uses it, and its checkpoints name the best
 *   epoch whose file then survives a crash (checkpoint.ts).
 * - bestWeightsInMemory: one snapshot in Float32Arrays outside the tfjs heap (4 bytes a
 *   parameter), for callers without a directory.
 */
import { readdir, unlink } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { InternalError, RuntimeFailure } from "../errors.js";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import { snapshotWeights } from "../train/averaging.js";
import { pathExists } from "../util/json-file.js";
import { weightValues } from "../util/weight-values.js";

export interface BestWeights {
  /** Keep the weights of `epoch`, the best so far (files of earlier epochs stay until `discard`; memory keeps one snapshot). */
  save(epoch: number, vars: ReadonlyMap<string, tf.Tensor>): Promise<void>;
  /** Assign the weights saved for `epoch` to `vars`. */
  restore(epoch: number, vars: ReadonlyMap<string, tf.Variable>): Promise<void>;
  /** Forget every epoch's weights but `keep`'s (all of them without it). */
  discard(keep?: number): Promise<void>;
}

const FILE = /^best-epoch-(\d+)\.safetensors$/;

/** The file of an epoch's best weights in a run's .partial directory. */
export const bestWeightsFile = (dir: string, epoch: number): string => path.join(dir, `best-epoch-${epoch}.safetensors`);

/** Best weights as files in `dir` (see the file comment). */
export function bestWeightsOnDisk(dir: string): BestWeights {
  return {
    async save(epoch, vars) {
      const tensors = new Map<string, TensorToWrite>([...vars].map(([name, v]) => [name, { shape: v.shape, data: () => weightValues(v) }]));
      await writeSafetensors(bestWeightsFile(dir, epoch), tensors, { metadata: { epoch: String(epoch) } });
    },
    async restore(epoch, vars) {
      const file = bestWeightsFile(dir, epoch);
      if (!(await pathExists(file))) {
        throw new RuntimeFailure(`${file}: the best weights (epoch ${epoch}) are missing`, { hint: "the run's .partial directory was changed; start the run again without --resume" });
      }
      // One tensor at a time: no second copy of the model in memory.
      for (const [name, v] of vars) {
        const t = (await readSafetensors(file, { filter: (n) => n === name })).get(name);
        if (!t || t.data.length !== v.size) {
          throw new RuntimeFailure(`${file}: has no tensor "${name}" of ${v.size} values`, { hint: "the run's .partial directory was changed; start the run again without --resume" });
        }
        assignValues(v, t.data);
      }
    },
    async discard(keep) {
      for (const name of await readdir(dir)) {
        const m = FILE.exec(name);
        if (m && Number(m[1]) !== keep) {
          await unlink(path.join(dir, name)).catch(() => undefined);
        }
      }
    },
  };
}

/** One snapshot in memory (see the file comment). */
export function bestWeightsInMemory(): BestWeights {
  let kept: { epoch: number; weights: Map<string, Float32Array> } | null = null;
  return {
    async save(epoch, vars) {
      kept = { epoch, weights: snapshotWeights(new Map(vars), kept?.weights) }; // reuses the arrays of the previous snapshot
    },
    async restore(epoch, vars) {
      if (kept?.epoch !== epoch) {
        throw new InternalError(`bestWeightsInMemory: epoch ${epoch}'s weights were not saved${kept ? ` (epoch ${kept.epoch}'s were)` : ""}`);
      }
      for (const [name, v] of vars) {
        const data = kept.weights.get(name);
        if (!data) {
          throw new InternalError(`bestWeightsInMemory: no snapshot of "${name}"`);
        }
        assignValues(v, data);
      }
    },
    async discard(keep) {
      if (kept && kept.epoch !== keep) {
        kept = null;
      }
    },
  };
}

/** v ← data (the backend copies it in; the variable's old memory is freed). */
function assignValues(v: tf.Variable, data: Float32Array): void {
  const t = tf.tensor(data, v.shape, "float32");
  v.assign(t);
  t.dispose();
}
