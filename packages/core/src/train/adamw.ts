/**
 * AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path), written as one
 * loop per tensor like llm.c's gpt2_update. For each parameter w with gradient g, at its
 * own step count t = 1, 2, …:
 *
 *   w ← w · (1 − lr·wd)                       decoupled weight decay, before the Adam step
 *   m ← m + (g − m)·(1 − β1)                  (torch: exp_avg.lerp_(grad, 1 − β1))
 *   v ← v·β2 + g²·(1 − β2)
 *   w ← w − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
 *
 * The moments live in Float32Arrays keyed by tensor name, outside the tfjs heap: they do not
 * count against wasm's 4 GiB, checkpointing them is a copy, and the state does not depend
 * on the order in which parameters are passed (tfjs's Adam keys them by position). The
 * update is one loop per tensor (kernels/adamw-update.ts): on wasm a float32 SIMD loop in
 * PyTorch's operation order that overwrites the variable's own memory (simd-adamw.ts,
 * ~1 ns per parameter: 55 ms for 20M); elsewhere a float64 JS loop that rounds each stored
 * value (m, v, w) to float32 once (10–16 ns per parameter). Both agree with PyTorch's
 * float32 ops to within an ulp or two.
 */
import * as tf from "@tensorflow/tfjs-core";
import { InputError } from "../errors.js";
import { ADAMW_UPDATE, adamwUpdateValues, type AdamWUpdateAttrs } from "../kernels/adamw-update.js";

export interface AdamWOptions {
  /** Decay of the first moment; torch default 0.9. */
  beta1?: number;
  /** Decay of the second moment; torch default 0.999. */
  beta2?: number;
  /** Added to √v̂ in the denominator; torch default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; torch.optim.AdamW default 0.01. */
  weightDecay?: number;
  /** Names to exempt from weight decay (e.g. biases and norm weights); default: none. */
  noDecay?: (name: string) => boolean;
}

/** The optimizer state of one parameter tensor, as PyTorch names it: exp_avg, exp_avg_sq, step. */
export interface AdamWParamState {
  /** First moment (exp_avg), flattened row-major. */
  m: Float32Array;
  /** Second moment (exp_avg_sq), flattened row-major. */
  v: Float32Array;
  /** Steps taken on this parameter so far. */
  step: number;
}

/** What `step` needs of an optimizer; trainStep takes any. */
export interface Optimizer {
  step(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, opts?: StepOptions): void;
}

export interface StepOptions {
  /**
   * Multiplies every gradient before the update, without a copy of the gradients: a
   * clipping coefficient (clipCoefficient) times an accumulation factor (GradAccumulator's
   * `scaled`). Default 1.
   */
  gradScale?: number;
}

function checkHyper(name: string, value: number, lo: number, hi: number, hiOpen: boolean): number {
  if (!Number.isFinite(value) || value < lo || (hiOpen ? value >= hi : value > hi)) {
    throw new InputError(`AdamW: ${name} = ${value} is outside [${lo}, ${hi}${hiOpen ? ")" : "]"}`);
  }
  return value;
}

/** The new weights of one tensor; m and v are updated in place. */
function update(w: tf.Tensor, g: tf.Tensor, attrs: AdamWUpdateAttrs): tf.Tensor {
  if (tf.getKernel(ADAMW_UPDATE, tf.getBackend())) {
    return tf.engine().runKernel(ADAMW_UPDATE, { w, g }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  const out = new Float32Array(w.size);
  adamwUpdateValues(w.dataSync() as Float32Array, g.dataSync() as Float32Array, attrs, out);
  return tf.tensor(out, w.shape, "float32");
}

export class AdamW implements Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly noDecay: (name: string) => boolean;
  private state = new Map<string, AdamWParamState>();

  constructor(opts: AdamWOptions = {}) {
    this.beta1 = checkHyper("beta1", opts.beta1 ?? 0.9, 0, 1, true);
    this.beta2 = checkHyper("beta2", opts.beta2 ?? 0.999, 0, 1, true);
    this.eps = checkHyper("eps", opts.eps ?? 1e-8, 0, Infinity, true);
    this.weightDecay = checkHyper("weightDecay", opts.weightDecay ?? 0.01, 0, Infinity, true);
    this.noDecay = opts.noDecay ?? (() => false);
  }

  /**
   * One update of every parameter that has a gradient (a parameter without one is left
   * alone and its step count does not advance, as in PyTorch). Gradients are not disposed.
   * @param params the trainable variables, keyed by tensor name
   * @param grads d loss / d param, keyed by the same names, same shapes
   * @param lr the learning rate of this step (from the schedule)
   * @param opts gradScale: multiplies the gradients first (clipping, accumulation)
   */
  step(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, opts: StepOptions = {}): void {
    checkHyper("lr", lr, 0, Infinity, true);
    const gradScale = opts.gradScale ?? 1;
    if (!Number.isFinite(gradScale)) {
      throw new InputError(`AdamW: gradScale = ${gradScale} must be finite`);
    }
    for (const [name, grad] of grads) {
      const param = params.get(name);
      if (!param) {
        throw new InputError(`AdamW: gradient "${name}" has no parameter of that name`);
      }
      if (param.dtype !== "float32" || grad.dtype !== "float32" || grad.size !== param.size) {
        throw new InputError(
          `AdamW: parameter "${name}" (${param.dtype}, ${param.shape.join("×")}) and its gradient (${grad.dtype}, ${grad.shape.join("×")}) do not fit`,
        );
      }
      const s = this.stateFor(name, param.size);
      s.step += 1;
      const wd = this.noDecay(name) ? 0 : this.weightDecay;
      const attrs: AdamWUpdateAttrs = {
        m: s.m,
        v: s.v,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        decay: 1 - lr * wd,
        stepSize: lr / (1 - this.beta1 ** s.step),
        bc2Sqrt: Math.sqrt(1 - this.beta2 ** s.step),
        gradScale,
      };
      const updated = update(param, grad, attrs);
      param.assign(updated);
      updated.dispose();
    }
  }

  private stateFor(name: string, size: number): AdamWParamState {
    let s = this.state.get(name);
    if (!s) {
      s = { m: new Float32Array(size), v: new Float32Array(size), step: 0 };
      this.state.set(name, s);
    } else if (s.m.length !== size || s.v.length !== size) {
      throw new InputError(`AdamW: state of "${name}" holds ${s.m.length} values but the parameter has ${size}`, {
        hint: "the optimizer state belongs to another model; resume from a matching checkpoint",
      });
    }
    return s;
  }

  /** A copy of the state, for a checkpoint (torch's exp_avg / exp_avg_sq / step per tensor). */
  exportState(): Map<string, AdamWParamState> {
    const copy = new Map<string, AdamWParamState>();
    for (const [name, s] of this.state) {
      copy.set(name, { m: s.m.slice(), v: s.v.slice(), step: s.step });
    }
    return copy;
  }

  /**
   * Replace the state with a copy of `state` (from exportState or a checkpoint). Sizes are
   * checked against the parameters at the next step.
   */
  importState(state: Map<string, AdamWParamState>): void {
    this.setState(state, true);
  }

  private setState(state: Map<string, AdamWParamState>, copy: boolean): void {
    const next = new Map<string, AdamWParamState>();
    for (const [name, s] of state) {
      if (s.m.length !== s.v.length || !Number.isInteger(s.step) || s.step < 0) {
        throw new InputError(`AdamW: state of "${name}" is malformed (m ${s.m.length}, v ${s.v.length}, step ${s.step})`, {
          hint: "the checkpoint's optimizer state is damaged; resume from another checkpoint or restart",
        });
      }
      next.set(name, copy ? { m: s.m.slice(), v: s.v.slice(), step: s.step } : { m: s.m, v: s.v, step: s.step });
    }
    this.state = next;
  }

  /**
   * The state itself, not a copy (a checkpoint writes it without doubling it in memory):
   * read-only, and valid until the next step, import or dispose.
   */
  stateView(): ReadonlyMap<string, Readonly<AdamWParamState>> {
    return this.state;
  }

  /**
   * As importState, but takes the arrays of `state` as they are, without a copy (a resumed
   * run's moments are not held twice): the caller must not use them afterwards.
   */
  adoptState(state: Map<string, AdamWParamState>): void {
    this.setState(state, false);
  }

  /** Drop the state (it lives outside the tfjs heap: nothing to free there). */
  dispose(): void {
    this.state.clear();
  }
}
