/**
 * One optimizer step: loss and gradients (tf.variableGrads), optional global-norm clipping,
 * the update. Everything runs in one tf.tidy, so gradients and intermediates are freed
 * whatever happens, including when it throws.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError, RuntimeFailure } from "../errors.js";
import type { Optimizer } from "./adamw.js";
import { clipByGlobalNorm, globalNorm } from "./grad-utils.js";

export interface TrainStepParams {
  /** The loss of the current batch; every op that touches a parameter must run inside it. */
  lossFn: () => tf.Scalar;
  /** The trainable variables, by tensor name (the optimizer keys its state on these names). */
  params: Map<string, tf.Variable>;
  /** Applies the gradients, e.g. AdamW. */
  optimizer: Optimizer;
  /** This step's learning rate (lrAt). */
  lr: number;
  /** Clip the global gradient norm to this (torch's clip_grad_norm_); none when absent. */
  clipNorm?: number;
}

export interface TrainStepResult {
  /** The loss before the update. */
  loss: number;
  /** The global gradient norm before clipping. */
  gradNorm: number;
}

/**
 * Compute the loss and its gradients, clip, and update the parameters. Reads the loss and
 * the norm (one sync point). A non-finite loss or gradient norm throws a RuntimeFailure
 * before anything is updated, so the weights stay usable.
 */
export function trainStep({ lossFn, params, optimizer, lr, clipNorm }: TrainStepParams): TrainStepResult {
  const byTfName = new Map<string, string>();
  for (const [name, v] of params) {
    byTfName.set(v.name, name);
  }
  if (byTfName.size !== params.size) {
    throw new InputError("trainStep: the same variable is passed under two names");
  }
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
    const named = new Map<string, tf.Tensor>();
    for (const [tfName, g] of Object.entries(grads)) {
      if (g) {
        named.set(byTfName.get(tfName) as string, g); // variables without a path to the loss have none
      }
    }
    const { grads: clipped, norm } = clipNorm === undefined ? { grads: named, norm: globalNorm(named) } : clipByGlobalNorm(named, clipNorm);
    const loss = value.dataSync()[0] as number;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      throw new RuntimeFailure(`training diverged: loss ${loss}, gradient norm ${norm}; the weights were not updated`, {
        hint: "lower the learning rate or set a gradient clipping norm",
      });
    }
    optimizer.step(params, clipped, lr);
    return { loss, gradNorm: norm };
  });
}
