/**
 * Feed-forward blocks.
 */
import * as tf from "@tensorflow/tfjs-core";
import { splitSwiglu, swiglu } from "../kernels/swiglu.js";
import type { HiddenAct } from "./config.js";
import { gelu, geluTanh } from "./gelu.js";
import { linear } from "./linear.js";

/** One projection: W in HF (out, in) layout, optional bias (out). */
export interface Projection {
  w: tf.Tensor2D;
  b?: tf.Tensor1D;
}

/** SiLU (swish): x · σ(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

/** The activation function of an HF `hidden_act` name (gelu.ts explains the GELU spellings). */
export function activation(name: HiddenAct): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case "silu":
      return silu;
    case "gelu":
      return gelu;
    case "gelu_pytorch_tanh":
    case "gelu_new":
    case "gelu_fast":
      return geluTanh;
  }
}

/**
 * Gated MLP: down(act(gate(x)) · up(x)); SwiGLU with silu (transformers `LlamaMLP`), GeGLU
 * with tanh GELU (`GemmaMLP`).
 * @param x (B, T, C)
 * @param p gate and up: (I, C), down: (C, I)
 * @param act the gate's activation (default silu)
 * @returns (B, T, C)
 */
export function gatedMlp(x: tf.Tensor, p: { gate: Projection; up: Projection; down: Projection }, act: (x: tf.Tensor) => tf.Tensor = silu): tf.Tensor {
  return tf.tidy(() => {
    const g = linear(x, p.gate.w, p.gate.b); // (B, T, I)
    const u = linear(x, p.up.w, p.up.b); // (B, T, I)
    const h = act === silu ? swiglu(g, u) : tf.mul(act(g), u); // silu: one kernel on wasm and cpu (kernels/swiglu.ts)
    return linear(h, p.down.w, p.down.b); // (B, T, C)
  });
}

/**
 * SwiGLU MLP (transformers `LlamaMLP`): down(silu(gate(x)) · up(x)).
 * @param x (B, T, C)
 * @param p gate and up: (I, C), down: (C, I)
 * @returns (B, T, C)
 */
export function swigluMlp(x: tf.Tensor, p: { gate: Projection; up: Projection; down: Projection }): tf.Tensor {
  return gatedMlp(x, p, silu);
}

/**
 * Gated MLP with the gate and up rows fused in one weight (transformers `Phi3MLP`):
 * [gate; up] = gate_up(x) split in two halves along the features, down(act(gate) · up).
 * @param x (B, T, C)
 * @param p gateUp: (2I, C), gate rows first; down: (C, I)
 * @returns (B, T, C)
 */
export function fusedGatedMlp(x: tf.Tensor, p: { gateUp: Projection; down: Projection }, act: (x: tf.Tensor) => tf.Tensor = silu): tf.Tensor {
  return tf.tidy(() => {
    const gu = linear(x, p.gateUp.w, p.gateUp.b); // (B, T, 2I)
    if (act === silu) {
      return linear(splitSwiglu(gu), p.down.w, p.down.b); // the halves read in place, no split (kernels/swiglu.ts)
    }
    const [g, u] = tf.split(gu, 2, -1) as [tf.Tensor, tf.Tensor]; // (B, T, I) each
    return linear(tf.mul(act(g), u), p.down.w, p.down.b); // (B, T, C)
  });
}

/**
 * Two-layer MLP (transformers `GPTNeoXMLP`): down(act(up(x))).
 * @param x (B, T, C)
 * @param p up: (I, C) (`dense_h_to_4h`), down: (C, I) (`dense_4h_to_h`)
 * @returns (B, T, C)
 */
export function plainMlp(x: tf.Tensor, p: { up: Projection; down: Projection }, act: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return tf.tidy(() => linear(act(linear(x, p.up.w, p.up.b)), p.down.w, p.down.b));
}
