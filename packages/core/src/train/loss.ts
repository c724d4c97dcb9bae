/**
 * Masked causal-LM cross-entropy, as Hugging Face's LlamaForCausalLM computes it.
 *
 * `labels` are the input ids with IGNORE_INDEX (−100) on every token that must not count
 * (prompt, padding); the shift happens here, as in HF's ForCausalLMLoss: the logits at t
 * predict labels[t + 1], so logits[:, :-1] meet labels[:, 1:] and the last position never
 * counts. The loss is the mean, over the counted positions, of −log softmax(logits)[label].
 *
 * One fused op with an analytic gradient (tf.customGrad), instead of tfjs's chain of
 * vocab-sized elementwise ops:
 *   forward   p = softmax(x)                             one kernel, (N, V), kept for backward
 *             lse = max(x) − log(max(p))                 exact: softmax peaks where x does,
 *                                                        and max(p) ≥ 1/V never underflows
 *             loss = Σ_counted (lse − x[label]) / count
 *   backward  dx[n] = (p[n] − onehot(label)) · dy / count on counted rows, 0 elsewhere
 * The backward is one JS pass over the counted rows of p (kernels/cross-entropy-grad.ts, in
 * place in the wasm heap): no onehot, no (N, 1) broadcasts, which cpu runs through a slow
 * generic path. With no counted position the loss is 0 and its gradient all zeros (no NaN).
 *
 * Forward + backward at B=4, T=128, V=32000, every position counted (bench/engine-primitives.mjs):
 * wasm 150–280 ms against 1.3–2.6 s for logSoftmax·oneHot; cpu 0.6–1 s (its softmax is a
 * JS loop, kernels/softmax.ts).
 *
 * Shape letters: B batch, T time, V vocabulary, N = B·T rows.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { CROSS_ENTROPY_GRAD, crossEntropyGradValues, type CrossEntropyGradAttrs } from "../kernels/cross-entropy-grad.js";

/** The label that marks a position the loss ignores (PyTorch's CrossEntropyLoss default). */
export const IGNORE_INDEX = -100;

/** The positions that count, in the flattened (N, V) logits. */
interface CountedRows {
  /** Row n = b·T + t of logits whose next label counts. */
  rows: Int32Array;
  /** labels[b, t + 1] for each of `rows`. */
  targets: Int32Array;
}

/** Shift labels left by one and keep the positions whose next label is not IGNORE_INDEX. */
function countedRows(labels: Int32Array, B: number, T: number, V: number): CountedRows {
  const rows: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const label = labels[b * T + t + 1] as number;
      if (label === IGNORE_INDEX) {
        continue;
      }
      if (!Number.isInteger(label) || label < 0 || label >= V) {
        throw new InputError(`maskedCrossEntropy: labels[${b}][${t + 1}] = ${label} is outside the vocabulary [0, ${V})`, {
          hint: `labels are token ids, or ${IGNORE_INDEX} on the positions the loss ignores`,
        });
      }
      rows.push(b * T + t);
      targets.push(label);
    }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

/** dx = (p − onehot) · scale on counted rows, zeros elsewhere; p is (N, V), dx (B, T, V). */
function crossEntropyGrad(p: tf.Tensor, shape: [number, number, number], counted: CountedRows, scale: number): tf.Tensor {
  const attrs: CrossEntropyGradAttrs = { rows: counted.rows, targets: counted.targets, scale };
  if (tf.getKernel(CROSS_ENTROPY_GRAD, tf.getBackend())) {
    const grad = tf.engine().runKernel(CROSS_ENTROPY_GRAD, { probs: p }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    return tf.reshape(grad, shape);
  }
  const grad = new Float32Array(p.size);
  crossEntropyGradValues(p.dataSync() as Float32Array, shape[2], attrs, grad);
  return tf.tensor(grad, shape, "float32");
}

/**
 * Mean causal-LM cross-entropy over the positions whose next label is not IGNORE_INDEX.
 * Reads `labels` synchronously (a sync point; cheap: B·T ints).
 * @param logits (B, T, V) float32, the model output for the input ids
 * @param labels (B, T) int32: the input ids, IGNORE_INDEX where the loss ignores the token;
 *   shifted here (logits[:, t] predicts labels[:, t + 1]), as Hugging Face does
 * @returns a scalar; 0 when no position counts
 */
export function maskedCrossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (logits.rank !== 3 || labels.rank !== 2 || logits.shape[0] !== labels.shape[0] || logits.shape[1] !== labels.shape[1]) {
    throw new InputError(
      `maskedCrossEntropy: logits (${logits.shape.join(", ")}) and labels (${labels.shape.join(", ")}) do not fit`,
      { hint: "logits must be (B, T, V) and labels (B, T)" },
    );
  }
  if (labels.dtype !== "int32") {
    throw new InputError(`maskedCrossEntropy: labels are ${labels.dtype}`, { hint: "pass labels as an int32 tensor" });
  }
  const [B, T, V] = logits.shape as [number, number, number];
  const N = B * T;
  if (N * V >= 2 ** 31) {
    throw new InputError(`maskedCrossEntropy: logits (${B}, ${T}, ${V}) have more than 2³¹ elements`, {
      hint: "use a smaller batch or sequence length",
    });
  }
  const counted = countedRows(labels.dataSync() as Int32Array, B, T, V);
  const count = counted.rows.length;

  const fused = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor3D, tf.GradSaveFunc];
    if (count === 0) {
      return { value: tf.scalar(0), gradFunc: () => [tf.zeros(x.shape)] };
    }
    const x2 = tf.reshape(x, [N, V]); // (N, V)
    const p = tf.softmax(x2); // (N, V)
    save([p]);
    const lse = tf.sub(tf.max(x2, -1), tf.log(tf.max(p, -1))); // (N)
    const lseCounted = tf.gather(lse, tf.tensor1d(counted.rows, "int32")); // (count)
    const flatIdx = counted.rows.map((n, i) => n * V + (counted.targets[i] as number));
    const xTarget = tf.gather(tf.reshape(x2, [N * V]), tf.tensor1d(flatIdx, "int32")); // (count)
    const value = tf.div(tf.sum(tf.sub(lseCounted, xTarget)), count) as tf.Scalar;
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
      const [pSaved] = saved as [tf.Tensor];
      const scale = (dy.dataSync()[0] as number) / count;
      return [crossEntropyGrad(pSaved, [B, T, V], counted, scale)];
    };
    return { value, gradFunc };
  });
  return fused(logits);
}
