/**
 * The Llama-style decoder shared by llama, mistral, qwen2, gemma, gemma2 and phi3: token
 * embedding, nLayers pre-norm blocks
 *   x = x + attn(norm(x)),  x = x + mlp(norm(x)),
 * a final norm and the lm_head (the embedding itself when tied), all under HF's
 * `model.layers.{i}.…` names. What differs between them is a `LlamaStyle` (fixed per
 * architecture) plus ModelConfig fields (biases, windows, soft-capping, attention scale).
 */
import * as tf from "@tensorflow/tfjs-core";
import { attendHeads, causalSelfAttention, lastPosition, queriesFor, splitHeads, type AttentionContext, type LayerKv } from "./attention.js";
import type { ModelConfig } from "./config.js";
import { decoderForward, softcap } from "./decoder.js";
import { linear } from "./linear.js";
import { activation, fusedGatedMlp, gatedMlp, type Projection } from "./mlp.js";
import { gemmaRmsNorm, rmsNorm } from "./norm.js";
import type { ArchForwardOptions, Architecture, ExpectedTensor, WeightLookup } from "./registry.js";

/** How an architecture departs from Llama. */
export interface LlamaStyle {
  /** RMSNorm gain: "rms" x̂·w (Llama), "gemma" x̂·(1 + w) */
  norm: "rms" | "gemma";
  /** multiply the embeddings by √C, the factor rounded to float32 (Gemma's `normalizer`) */
  embedScale: boolean;
  /** fused `qkv_proj` ([q; k; v] rows) and `gate_up_proj` ([gate; up] rows) (Phi-3) */
  fused: boolean;
  /**
   * Gemma 2's four norms per layer: `post_attention_layernorm` normalises the attention output
   * before the residual add, `pre_feedforward_layernorm` / `post_feedforward_layernorm` wrap the MLP
   */
  sandwichNorms: boolean;
}

export const LLAMA_EMBED = "model.embed_tokens.weight";
export const LLAMA_FINAL_NORM = "model.norm.weight";
export const LLAMA_LM_HEAD = "lm_head.weight";

/** HF tensor names of layer i (projections without the `.weight` / `.bias` suffix). */
export function llamaStyleLayerNames(i: number) {
  const p = `model.layers.${i}`;
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    preFfNorm: `${p}.pre_feedforward_layernorm.weight`,
    postFfNorm: `${p}.post_feedforward_layernorm.weight`,
    q: `${p}.self_attn.q_proj`,
    k: `${p}.self_attn.k_proj`,
    v: `${p}.self_attn.v_proj`,
    qkv: `${p}.self_attn.qkv_proj`,
    o: `${p}.self_attn.o_proj`,
    gate: `${p}.mlp.gate_proj`,
    up: `${p}.mlp.up_proj`,
    gateUp: `${p}.mlp.gate_up_proj`,
    down: `${p}.mlp.down_proj`,
  };
}

/** q/k/v carry biases (qwen2: qkvBias; llama: attention_bias); o only with attention_bias. */
const qkvHasBias = (c: ModelConfig): boolean => c.qkvBias ?? c.attentionBias;

/** Every tensor of a checkpoint with its shape (HF (out, in) layout for projections). */
export function llamaStyleExpectedTensors(c: ModelConfig, style: LlamaStyle): ExpectedTensor[] {
  const C = c.hidden;
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const out: ExpectedTensor[] = [{ name: LLAMA_EMBED, shape: [c.vocabSize, C] }];
  const proj = (name: string, outDim: number, inDim: number, bias: boolean): void => {
    out.push({ name: `${name}.weight`, shape: [outDim, inDim] });
    if (bias) {
      out.push({ name: `${name}.bias`, shape: [outDim] });
    }
  };
  for (let i = 0; i < c.nLayers; i++) {
    const n = llamaStyleLayerNames(i);
    out.push({ name: n.inputNorm, shape: [C] });
    if (style.fused) {
      proj(n.qkv, qDim + 2 * kvDim, C, qkvHasBias(c));
    } else {
      proj(n.q, qDim, C, qkvHasBias(c));
      proj(n.k, kvDim, C, qkvHasBias(c));
      proj(n.v, kvDim, C, qkvHasBias(c));
    }
    proj(n.o, C, qDim, c.attentionBias);
    out.push({ name: n.postNorm, shape: [C] });
    if (style.sandwichNorms) {
      out.push({ name: n.preFfNorm, shape: [C] }, { name: n.postFfNorm, shape: [C] });
    }
    if (style.fused) {
      proj(n.gateUp, 2 * c.intermediate, C, c.mlpBias);
    } else {
      proj(n.gate, c.intermediate, C, c.mlpBias);
      proj(n.up, c.intermediate, C, c.mlpBias);
    }
    proj(n.down, C, c.intermediate, c.mlpBias);
  }
  out.push({ name: LLAMA_FINAL_NORM, shape: [C] });
  out.push(c.tieEmbeddings ? { name: LLAMA_LM_HEAD, shape: [c.vocabSize, C], optional: true, tiedTo: LLAMA_EMBED } : { name: LLAMA_LM_HEAD, shape: [c.vocabSize, C] });
  return out;
}

function projection(weight: WeightLookup, name: string, bias: boolean): Projection {
  return { w: weight(`${name}.weight`) as tf.Tensor2D, b: bias ? (weight(`${name}.bias`) as tf.Tensor1D) : undefined };
}

/**
 * Queries, keys and values of a fused `qkv_proj` (Phi-3): rows [q (nh·hs); k (nkv·hs); v (nkv·hs)],
 * so the projection output is cut along its features, then split into heads.
 * @param x (B, T, C)
 */
export function fusedQkvHeads(x: tf.Tensor3D, qkv: Projection, dims: { nHeads: number; nKvHeads: number; headDim: number }): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
  return tf.tidy(() => {
    const { nHeads: nh, nKvHeads: nkv, headDim: hs } = dims;
    const all = linear(x, qkv.w, qkv.b); // (B, T, (nh + 2·nkv)·hs)
    const [q, k, v] = tf.split(all, [nh * hs, nkv * hs, nkv * hs], -1) as [tf.Tensor, tf.Tensor, tf.Tensor];
    return { q: splitHeads(q, nh, hs), k: splitHeads(k, nkv, hs), v: splitHeads(v, nkv, hs) }; // (B, n, T, hs)
  });
}

/** The parts of a Llama-style forward (exported for tests that probe one block). */
export function llamaStyleParts(c: ModelConfig, style: LlamaStyle, weight: WeightLookup) {
  const norm = (x: tf.Tensor, name: string): tf.Tensor3D => (style.norm === "gemma" ? gemmaRmsNorm(x, weight(name), c.normEps) : rmsNorm(x, weight(name), c.normEps)) as tf.Tensor3D;
  const act = activation(c.hiddenAct);
  const attention = (i: number, h: tf.Tensor3D, ctx: AttentionContext): { y: tf.Tensor3D; kv: LayerKv } => {
    const n = llamaStyleLayerNames(i);
    const o = projection(weight, n.o, c.attentionBias);
    if (!style.fused) {
      const qb = qkvHasBias(c);
      return causalSelfAttention(h, { q: projection(weight, n.q, qb), k: projection(weight, n.k, qb), v: projection(weight, n.v, qb), o }, c, ctx);
    }
    const { y, kv } = attendHeads(queriesFor(fusedQkvHeads(h, projection(weight, n.qkv, qkvHasBias(c)), c), ctx), ctx); // (B, T or 1, nh·hs)
    return { y: linear(y, o.w, o.b) as tf.Tensor3D, kv }; // (B, T, C)
  };
  const mlp = (i: number, h: tf.Tensor): tf.Tensor => {
    const n = llamaStyleLayerNames(i);
    const down = projection(weight, n.down, c.mlpBias);
    return style.fused
      ? fusedGatedMlp(h, { gateUp: projection(weight, n.gateUp, c.mlpBias), down }, act)
      : gatedMlp(h, { gate: projection(weight, n.gate, c.mlpBias), up: projection(weight, n.up, c.mlpBias), down }, act);
  };
  return {
    embed(inputIds: tf.Tensor2D): tf.Tensor3D {
      return tf.tidy(() => {
        const x = tf.gather(weight(LLAMA_EMBED), inputIds) as tf.Tensor3D; // (B, T, C)
        return style.embedScale ? (tf.mul(x, Math.fround(Math.sqrt(c.hidden))) as tf.Tensor3D) : x;
      });
    },
    block(i: number, x: tf.Tensor3D, ctx: AttentionContext): { x: tf.Tensor3D; kv: LayerKv } {
      return tf.tidy(() => {
        const n = llamaStyleLayerNames(i);
        const { y, kv } = attention(i, norm(x, n.inputNorm), ctx); // (B, T, C), or (B, 1, C) with ctx.lastQuery
        const x0 = ctx.lastQuery ? lastPosition(x) : x; // the residual stream of y's positions
        if (style.sandwichNorms) {
          const x1 = tf.add(x0, norm(y, n.postNorm)); // (B, T, C)
          return { x: tf.add(x1, norm(mlp(i, norm(x1, n.preFfNorm)), n.postFfNorm)) as tf.Tensor3D, kv };
        }
        const x1 = tf.add(x0, y); // (B, T, C)
        return { x: tf.add(x1, mlp(i, norm(x1, n.postNorm))) as tf.Tensor3D, kv };
      });
    },
    head(x: tf.Tensor3D): tf.Tensor3D {
      return tf.tidy(() => {
        const h = norm(x, LLAMA_FINAL_NORM); // (B, T, C)
        const w = (c.tieEmbeddings ? weight(LLAMA_EMBED) : weight(LLAMA_LM_HEAD)) as tf.Tensor2D; // (V, C)
        const logits = linear(h, w) as tf.Tensor3D; // (B, T, V)
        return c.finalSoftcap === undefined || c.finalSoftcap === null ? logits : softcap(logits, c.finalSoftcap);
      });
    },
  };
}

/**
 * Forward pass of a Llama-style model.
 * @param inputIds (B, T) int32
 * @returns logits (B, T, V), or (B, 1, V) with lastOnly
 */
export function llamaStyleForward(c: ModelConfig, style: LlamaStyle, weight: WeightLookup, inputIds: tf.Tensor2D, opts: ArchForwardOptions = {}): tf.Tensor3D {
  return decoderForward(c, inputIds, opts, llamaStyleParts(c, style, weight));
}

/** Buffers of old transformers checkpoints that modern transformers ignores. */
export function isRotaryBuffer(name: string): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name);
}

/** The Architecture of a llama-style model: its config functions plus the shared block with `style`. */
export function llamaStyleArchitecture(
  modelType: string,
  style: LlamaStyle,
  normalizeConfig: Architecture["normalizeConfig"],
  configToHf: Architecture["configToHf"],
): Architecture {
  return {
    modelType,
    normalizeConfig,
    configToHf,
    expectedTensors: (c) => llamaStyleExpectedTensors(c, style),
    isIgnoredTensor: isRotaryBuffer,
    forward: (c, weight, inputIds, opts) => llamaStyleForward(c, style, weight, inputIds, opts),
  };
}
