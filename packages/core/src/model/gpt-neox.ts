/**
 * GPT-NeoX / Pythia (transformers `GPTNeoXForCausalLM`): LayerNorm with bias, every linear
 * with a bias, and per layer
 *   parallel (use_parallel_residual, Pythia):  x = x + attn(ln1(x)) + mlp(ln2(x))
 *   sequential:                                x = x + attn(ln1(x)); x = x + mlp(ln2(x))
 * Attention: one fused `query_key_value` projection whose output is viewed as
 * (B, T, nh, 3·hs) and split into q, k, v (rows in [nh, 3, hs] order: head-interleaved, see
 * fused-weights.ts), partial rotary on the first int(hs · rotary_pct) dims of each head
 * (base `rotary_emb_base`), scores · hs^−½. MLP: dense_4h_to_h(act(dense_h_to_4h(x))) with
 * exact erf GELU for `hidden_act: gelu`. Untied `embed_out` head by default.
 * Dropouts (hidden_dropout, attention_dropout; 0 in Pythia) are not applied.
 * Defaults are transformers' GPTNeoXConfig (rotary_pct 0.25, rotary_emb_base 10000,
 * layer_norm_eps 1e-5, max_position_embeddings 2048, parallel residual, attention_bias,
 * bos 0, eos 2); transformers 5's rope_parameters (rope_theta, partial_rotary_factor) are read too.
 */
import * as tf from "@tensorflow/tfjs-core";
import { z } from "zod";
import { attendHeads, lastPosition, queriesFor, type AttentionContext, type LayerKv } from "./attention.js";
import { configToHfWith, parseHfConfig, partialRotaryFactor, resolveHeadLayout, RopeParametersSchema, ropeScalingOf, type HfField } from "./arch-config.js";
import { posInt, RopeScalingSchema, toIdList, tokenId, TokenIdsSchema, type ModelConfig } from "./config.js";
import { decoderForward } from "./decoder.js";
import { linear } from "./linear.js";
import { activation, plainMlp, type Projection } from "./mlp.js";
import { layerNorm } from "./norm.js";
import type { Architecture, ArchForwardOptions, ExpectedTensor, WeightLookup } from "./registry.js";

export const NEOX_EMBED = "gpt_neox.embed_in.weight";
export const NEOX_FINAL_NORM = "gpt_neox.final_layer_norm";
export const NEOX_HEAD = "embed_out.weight";

/** HF tensor names of layer i (without the `.weight` / `.bias` suffix). */
export function neoxLayerNames(i: number) {
  const p = `gpt_neox.layers.${i}`;
  return {
    inputNorm: `${p}.input_layernorm`,
    postNorm: `${p}.post_attention_layernorm`,
    qkv: `${p}.attention.query_key_value`,
    dense: `${p}.attention.dense`,
    up: `${p}.mlp.dense_h_to_4h`,
    down: `${p}.mlp.dense_4h_to_h`,
  };
}

/** HF GPTNeoXConfig fields we read. */
export const GptNeoxConfigSchema = z.looseObject({
  model_type: z.literal("gpt_neox"),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  hidden_act: z.enum(["gelu", "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "silu"]).default("gelu"),
  rotary_pct: z.number().positive().max(1).nullish(),
  /** partial_rotary_factor: another spelling of rotary_pct some configs carry */
  partial_rotary_factor: z.number().positive().max(1).nullish(),
  rotary_emb_base: z.number().positive().nullish(),
  rope_theta: z.number().positive().nullish(),
  rope_scaling: RopeScalingSchema,
  rope_parameters: RopeParametersSchema,
  max_position_embeddings: posInt.default(2048),
  layer_norm_eps: z.number().positive().default(1e-5),
  use_parallel_residual: z.boolean().default(true),
  attention_bias: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId.nullable().default(0),
  eos_token_id: TokenIdsSchema.default(2),
  pad_token_id: tokenId.nullish(),
});

/** Parse and normalise a gpt_neox config.json object. `file` names it in errors. */
export function normalizeGptNeoxConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  const c = parseHfConfig(GptNeoxConfigSchema, raw, file);
  const heads = resolveHeadLayout(file, {
    hidden: c.hidden_size,
    nHeads: c.num_attention_heads,
    nKvHeads: c.num_attention_heads,
    partialRotary: partialRotaryFactor(c, c.rotary_pct ?? c.partial_rotary_factor, 0.25),
  });
  return {
    modelType: "gpt_neox",
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    ...heads,
    intermediate: c.intermediate_size,
    hiddenAct: c.hidden_act,
    ropeTheta: c.rotary_emb_base ?? c.rope_theta ?? c.rope_parameters?.rope_theta ?? 10000,
    ropeScaling: ropeScalingOf(c, file),
    normEps: c.layer_norm_eps,
    tieEmbeddings: c.tie_word_embeddings,
    attentionBias: c.attention_bias,
    mlpBias: true,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
    parallelResidual: c.use_parallel_residual,
  };
}

const NEOX_HF_FIELDS: HfField[] = [
  ["vocab_size", "vocabSize"],
  ["hidden_size", "hidden"],
  ["intermediate_size", "intermediate"],
  ["num_hidden_layers", "nLayers"],
  ["num_attention_heads", "nHeads"],
  ["hidden_act", "hiddenAct"],
  ["max_position_embeddings", "maxPositions"],
  ["layer_norm_eps", "normEps"],
  ["rotary_emb_base", "ropeTheta"],
  ["rope_scaling", "ropeScaling"],
  ["use_parallel_residual", "parallelResidual"],
  ["attention_bias", "attentionBias"],
  ["tie_word_embeddings", "tieEmbeddings"],
  ["bos_token_id", "bosId"],
  ["pad_token_id", "padId"],
];

/** ModelConfig → HF gpt_neox config.json object (unchanged fields exactly as loaded). */
export function gptNeoxConfigToHf(config: ModelConfig): Record<string, unknown> {
  const out = configToHfWith(config, { modelType: "gpt_neox", architecture: "GPTNeoXForCausalLM", fields: NEOX_HF_FIELDS, normalize: normalizeGptNeoxConfig });
  if (!("rotary_pct" in out) && !("partial_rotary_factor" in out) && config.rotaryDim !== Math.floor(config.headDim * 0.25)) {
    out.rotary_pct = config.rotaryDim / config.headDim; // a config built from scratch
  }
  return out;
}

/** Every tensor of a gpt_neox checkpoint with its shape (HF (out, in) layout). */
export function gptNeoxExpectedTensors(c: ModelConfig): ExpectedTensor[] {
  const C = c.hidden;
  const out: ExpectedTensor[] = [{ name: NEOX_EMBED, shape: [c.vocabSize, C] }];
  const affine = (name: string, outDim: number, inDim: number | null, bias: boolean): void => {
    out.push({ name: `${name}.weight`, shape: inDim === null ? [outDim] : [outDim, inDim] });
    if (bias) {
      out.push({ name: `${name}.bias`, shape: [outDim] });
    }
  };
  for (let i = 0; i < c.nLayers; i++) {
    const n = neoxLayerNames(i);
    affine(n.inputNorm, C, null, true);
    affine(n.postNorm, C, null, true);
    affine(n.qkv, 3 * c.nHeads * c.headDim, C, c.attentionBias);
    affine(n.dense, C, c.nHeads * c.headDim, c.attentionBias);
    affine(n.up, c.intermediate, C, true);
    affine(n.down, C, c.intermediate, true);
  }
  affine(NEOX_FINAL_NORM, C, null, true);
  out.push(c.tieEmbeddings ? { name: NEOX_HEAD, shape: [c.vocabSize, C], optional: true, tiedTo: NEOX_EMBED } : { name: NEOX_HEAD, shape: [c.vocabSize, C] });
  return out;
}

/**
 * Queries, keys and values of GPT-NeoX's fused `query_key_value`: the output (B, T, 3·nh·hs)
 * viewed as (B, T, nh, 3·hs), cut into q | k | v along the last axis, heads moved forward.
 * @param x (B, T, C)
 * @returns q, k, v: (B, nh, T, hs)
 */
export function neoxQkvHeads(x: tf.Tensor3D, qkv: Projection, nHeads: number, headDim: number): { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D } {
  return tf.tidy(() => {
    const [B, T] = x.shape;
    const all = tf.reshape(linear(x, qkv.w, qkv.b), [B, T, nHeads, 3 * headDim]); // (B, T, nh, 3·hs)
    const [q, k, v] = tf.split(all, 3, -1).map((t) => tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]; // (B, nh, T, hs)
    return { q, k, v };
  });
}

/** Buffers GPT-NeoX checkpoints carry that transformers ignores (causal-mask and rotary buffers). */
function isIgnoredNeoxTensor(name: string): boolean {
  return /\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/.test(name);
}

/**
 * GPT-NeoX forward pass.
 * @param inputIds (B, T) int32
 * @returns logits (B, T, V), or (B, 1, V) with lastOnly
 */
export function gptNeoxForward(c: ModelConfig, weight: WeightLookup, inputIds: tf.Tensor2D, opts: ArchForwardOptions = {}): tf.Tensor3D {
  const proj = (name: string, bias: boolean): Projection => ({ w: weight(`${name}.weight`) as tf.Tensor2D, b: bias ? (weight(`${name}.bias`) as tf.Tensor1D) : undefined });
  const ln = (x: tf.Tensor, name: string): tf.Tensor3D => layerNorm(x, weight(`${name}.weight`), weight(`${name}.bias`), c.normEps) as tf.Tensor3D;
  const act = activation(c.hiddenAct);
  return decoderForward(c, inputIds, opts, {
    embed: (ids) => tf.gather(weight(NEOX_EMBED), ids) as tf.Tensor3D, // (B, T, C)
    block(i: number, x: tf.Tensor3D, ctx: AttentionContext): { x: tf.Tensor3D; kv: LayerKv } {
      return tf.tidy(() => {
        const n = neoxLayerNames(i);
        const { y, kv } = attendHeads(queriesFor(neoxQkvHeads(ln(x, n.inputNorm), proj(n.qkv, c.attentionBias), c.nHeads, c.headDim), ctx), ctx); // (B, T or 1, nh·hs)
        const dense = proj(n.dense, c.attentionBias);
        const attn = linear(y, dense.w, dense.b); // (B, T, C), or (B, 1, C) with ctx.lastQuery
        const x0 = ctx.lastQuery ? lastPosition(x) : x; // the residual stream of attn's positions
        const mlp = (h: tf.Tensor): tf.Tensor => plainMlp(ln(h, n.postNorm), { up: proj(n.up, true), down: proj(n.down, true) }, act);
        if (c.parallelResidual ?? true) {
          return { x: tf.add(tf.add(mlp(x0), attn), x0) as tf.Tensor3D, kv }; // mlp_output + attn_output + hidden_states
        }
        const x1 = tf.add(attn, x0); // (B, T, C)
        return { x: tf.add(mlp(x1), x1) as tf.Tensor3D, kv };
      });
    },
    head(x: tf.Tensor3D): tf.Tensor3D {
      return tf.tidy(() => linear(ln(x, NEOX_FINAL_NORM), (c.tieEmbeddings ? weight(NEOX_EMBED) : weight(NEOX_HEAD)) as tf.Tensor2D) as tf.Tensor3D); // (B, T, V)
    },
  });
}

export const gptNeoxArchitecture: Architecture = {
  modelType: "gpt_neox",
  normalizeConfig: normalizeGptNeoxConfig,
  configToHf: gptNeoxConfigToHf,
  expectedTensors: gptNeoxExpectedTensors,
  isIgnoredTensor: isIgnoredNeoxTensor,
  forward: gptNeoxForward,
};
