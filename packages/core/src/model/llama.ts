/**
 * Llama (transformers `LlamaForCausalLM`): token embedding, nLayers pre-norm blocks
 *   x = x + attn(rmsNorm(x)),  x = x + swigluMlp(rmsNorm(x)),
 * final RMSNorm and the lm_head (the embedding itself when tied).
 * Also serves TinyLlama, SmolLM, Llama 3.x and llama2.c conversions (all model_type "llama").
 */
import * as tf from "@tensorflow/tfjs-core";
import { attentionBias, causalSelfAttention, positionIdsFromMask, type AttentionWeights, type LayerKv } from "./attention.js";
import { llamaConfigToHf, normalizeLlamaConfig, type ModelConfig } from "./config.js";
import { kvCacheLength } from "./kv-cache.js";
import { linear } from "./linear.js";
import { swigluMlp, type Projection } from "./mlp.js";
import { rmsNorm } from "./norm.js";
import type { Architecture, ArchForwardOptions, ExpectedTensor, WeightLookup } from "./registry.js";
import { ropeCosSin, ropeInvFreq, ropeParams } from "./rope.js";

/** HF tensor names of layer i. */
export function llamaLayerNames(i: number) {
  const p = `model.layers.${i}`;
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    postNorm: `${p}.post_attention_layernorm.weight`,
    q: `${p}.self_attn.q_proj`,
    k: `${p}.self_attn.k_proj`,
    v: `${p}.self_attn.v_proj`,
    o: `${p}.self_attn.o_proj`,
    gate: `${p}.mlp.gate_proj`,
    up: `${p}.mlp.up_proj`,
    down: `${p}.mlp.down_proj`,
  };
}

export const LLAMA_EMBED = "model.embed_tokens.weight";
export const LLAMA_FINAL_NORM = "model.norm.weight";
export const LLAMA_LM_HEAD = "lm_head.weight";

/** Every tensor of a llama checkpoint with its shape (HF (out, in) layout for projections). */
export function llamaExpectedTensors(c: ModelConfig): ExpectedTensor[] {
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
    const n = llamaLayerNames(i);
    out.push({ name: n.inputNorm, shape: [C] });
    proj(n.q, qDim, C, c.attentionBias);
    proj(n.k, kvDim, C, c.attentionBias);
    proj(n.v, kvDim, C, c.attentionBias);
    proj(n.o, C, qDim, c.attentionBias);
    out.push({ name: n.postNorm, shape: [C] });
    proj(n.gate, c.intermediate, C, c.mlpBias);
    proj(n.up, c.intermediate, C, c.mlpBias);
    proj(n.down, C, c.intermediate, c.mlpBias);
  }
  out.push({ name: LLAMA_FINAL_NORM, shape: [C] });
  out.push(c.tieEmbeddings ? { name: LLAMA_LM_HEAD, shape: [c.vocabSize, C], optional: true, tiedTo: LLAMA_EMBED } : { name: LLAMA_LM_HEAD, shape: [c.vocabSize, C] });
  return out;
}

function projection(weight: WeightLookup, name: string, bias: boolean): Projection {
  return { w: weight(`${name}.weight`) as tf.Tensor2D, b: bias ? (weight(`${name}.bias`) as tf.Tensor1D) : undefined };
}

/** One decoder block: attention then MLP, each pre-normed and residual. x: (B, T, C). */
function llamaBlock(c: ModelConfig, weight: WeightLookup, i: number, x: tf.Tensor3D, ctx: Parameters<typeof causalSelfAttention>[3]): { x: tf.Tensor3D; kv: LayerKv } {
  return tf.tidy(() => {
    const n = llamaLayerNames(i);
    const attnW: AttentionWeights = {
      q: projection(weight, n.q, c.attentionBias),
      k: projection(weight, n.k, c.attentionBias),
      v: projection(weight, n.v, c.attentionBias),
      o: projection(weight, n.o, c.attentionBias),
    };
    const h = rmsNorm(x, weight(n.inputNorm), c.normEps) as tf.Tensor3D; // (B, T, C)
    const { y, kv } = causalSelfAttention(h, attnW, c, ctx);
    const x1 = tf.add(x, y); // (B, T, C)
    const m = swigluMlp(rmsNorm(x1, weight(n.postNorm), c.normEps), {
      gate: projection(weight, n.gate, c.mlpBias),
      up: projection(weight, n.up, c.mlpBias),
      down: projection(weight, n.down, c.mlpBias),
    });
    return { x: tf.add(x1, m) as tf.Tensor3D, kv };
  });
}

/**
 * Llama forward pass.
 * @param inputIds (B, T) int32
 * @returns logits (B, T, V), or (B, 1, V) with lastOnly
 */
export function llamaForward(c: ModelConfig, weight: WeightLookup, inputIds: tf.Tensor2D, opts: ArchForwardOptions = {}): tf.Tensor3D {
  const cache = opts.cache;
  const { logits, kvs } = tf.tidy(() => {
    const [B, T] = inputIds.shape;
    const P = cache ? kvCacheLength(cache) : 0;
    const S = P + T;
    // positions: from the mask when there is one (left padding), else P … S−1
    const positionIds = opts.attentionMask
      ? positionIdsFromMask(opts.attentionMask, T)
      : (tf.tile(tf.reshape(tf.range(P, S, 1, "int32"), [1, T]), [B, 1]) as tf.Tensor2D); // (B, T)
    const { cos, sin } = ropeCosSin(ropeInvFreq(ropeParams(c), S), positionIds); // (B, 1, T, rd)
    const bias = attentionBias(T, S, opts.attentionMask); // (B or 1, 1, T, S)
    let x = tf.gather(weight(LLAMA_EMBED), inputIds) as tf.Tensor3D; // (B, T, C)
    const kvs: LayerKv[] = [];
    for (let i = 0; i < c.nLayers; i++) {
      const out = llamaBlock(c, weight, i, x, { cos, sin, bias, past: cache?.layers[i] });
      x = out.x;
      kvs.push(out.kv);
    }
    x = rmsNorm(x, weight(LLAMA_FINAL_NORM), c.normEps) as tf.Tensor3D; // (B, T, C)
    if (opts.lastOnly) {
      x = tf.slice(x, [0, T - 1, 0], [B, 1, c.hidden]); // (B, 1, C)
    }
    const head = (c.tieEmbeddings ? weight(LLAMA_EMBED) : weight(LLAMA_LM_HEAD)) as tf.Tensor2D; // (V, C)
    const logits = linear(x, head) as tf.Tensor3D; // (B, T, V)
    return { logits, kvs: cache ? kvs : [] };
  });
  if (cache) {
    for (let i = 0; i < c.nLayers; i++) {
      const old = cache.layers[i];
      if (old) {
        tf.dispose([old.k, old.v]);
      }
      cache.layers[i] = kvs[i];
    }
  }
  return logits;
}

/** Buffers of old transformers checkpoints that modern transformers ignores. */
function isIgnoredLlamaTensor(name: string): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name);
}

export const llamaArchitecture: Architecture = {
  modelType: "llama",
  normalizeConfig: normalizeLlamaConfig,
  configToHf: llamaConfigToHf,
  expectedTensors: llamaExpectedTensors,
  isIgnoredTensor: isIgnoredLlamaTensor,
  forward: llamaForward,
};
