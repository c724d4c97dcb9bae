/**
 * gpt_neox (Pythia): LayerNorm, parallel residual, partial rotary, head-interleaved fused
 * query_key_value, exact GELU MLP, untied embed_out.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { writeModelWeights } from "../src/io/model-files.js";
import type { Logger } from "../src/log.js";
import { splitHeads } from "../src/model/attention.js";
import { concatRows, fuseNeoxQkv, splitNeoxQkv, splitRows } from "../src/model/fused-weights.js";
import { neoxQkvHeads } from "../src/model/gpt-neox.js";
import { linear } from "../src/model/linear.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";
import { archBehaviourSuite, realTokenizerTest, referenceTest } from "./arch-suite.js";
import { logitsOf, maxAbsDiff, randomWeights, SHARED_TOKENIZERS, writeTinyModel } from "./arch-tiny-model.js";

/** A tiny Pythia: 4 heads of 8, rotary on the first 2 dims of each (rotary_pct 0.25). */
const NEOX = {
  architectures: ["GPTNeoXForCausalLM"],
  model_type: "gpt_neox",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  hidden_act: "gelu",
  rotary_pct: 0.25,
  rotary_emb_base: 10000,
  max_position_embeddings: 64,
  layer_norm_eps: 1e-5,
  use_parallel_residual: true,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
  transformers_version: "4.24.0",
  use_cache: true,
};

archBehaviourSuite({ title: "gpt_neox (Pythia-like: parallel residual, rotary_pct 0.25, untied embed_out)", config: NEOX, headName: "embed_out.weight" });
archBehaviourSuite({ title: "gpt_neox (sequential residual, rotary_pct 0.5, tied)", config: { ...NEOX, use_parallel_residual: false, rotary_pct: 0.5, tie_word_embeddings: true }, headName: "embed_out.weight", seed: 4 });

describe("gpt_neox variants against the direct computation", () => {
  referenceTest("full rotary, no attention biases, tanh GELU (gelu_new)", { ...NEOX, rotary_pct: 1.0, attention_bias: false, hidden_act: "gelu_new" });
});

describe("gpt_neox config", () => {
  test("Pythia's config: rotary dims int(hs · rotary_pct), LayerNorm eps, parallel residual; GPTNeoXConfig defaults", () => {
    const c = parseModelConfig(NEOX);
    expect(c).toMatchObject({ modelType: "gpt_neox", nHeads: 4, nKvHeads: 4, headDim: 8, rotaryDim: 2, ropeTheta: 10000, normEps: 1e-5, parallelResidual: true, attentionBias: true, mlpBias: true, hiddenAct: "gelu" });
    const { rotary_pct: _r, rotary_emb_base: _b, use_parallel_residual: _u, bos_token_id: _bo, eos_token_id: _e, ...bare } = NEOX;
    expect(parseModelConfig({ ...bare, hidden_size: 64 })).toMatchObject({ rotaryDim: 4, ropeTheta: 10000, parallelResidual: true, bosId: 0, eosIds: [2] });
    expect(parseModelConfig({ ...bare, rope_parameters: { rope_type: "default", rope_theta: 500, partial_rotary_factor: 0.5 } })).toMatchObject({ rotaryDim: 4, ropeTheta: 500 });
    expect(() => parseModelConfig({ ...NEOX, rotary_pct: 0.1 })).toThrow(/rotary dims 0 \(head_dim 8 × 0\.1\) must be even and positive/);
    const shapes = Object.fromEntries(getArchitecture("gpt_neox").expectedTensors(c).map((e) => [e.name, e.shape]));
    expect(shapes["gpt_neox.layers.1.attention.query_key_value.weight"]).toEqual([96, 32]);
    expect(shapes["gpt_neox.layers.1.attention.query_key_value.bias"]).toEqual([96]);
    expect(shapes["gpt_neox.layers.1.post_attention_layernorm.bias"]).toEqual([32]);
    expect(shapes["gpt_neox.final_layer_norm.bias"]).toEqual([32]);
    expect(shapes["embed_out.weight"]).toEqual([320, 32]);
  });
});

describe("gpt_neox fused query_key_value", () => {
  let tmp = "";
  beforeAll(async () => {
    await initBackend("wasm");
    tmp = await mkdtemp(path.join(os.tmpdir(), "oml-neox-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("rows in [nh, 3, hs] order: split → re-fuse is the identity; the heads equal separate q/k/v projections", () => {
    const n = tf.memory().numTensors;
    const c = parseModelConfig(NEOX);
    const w = randomWeights(c, 21);
    const W = w.get("gpt_neox.layers.0.attention.query_key_value.weight")!;
    const b = w.get("gpt_neox.layers.0.attention.query_key_value.bias")!;
    const parts = splitNeoxQkv(W, 4);
    expect(fuseNeoxQkv(parts, 4)).toEqual(W);
    expect(fuseNeoxQkv(splitNeoxQkv(b, 4), 4)).toEqual(b);
    // head 1's k rows are rows 3·8 + 8 … 3·8 + 15 of the fused weight
    expect(Array.from(parts.k.data.subarray(8 * 32, 16 * 32))).toEqual(Array.from(W.data.subarray(32 * 32, 40 * 32)));
    const bp = splitNeoxQkv(b, 4);
    tf.tidy(() => {
      const x = tf.randomNormal([2, 5, 32], 0, 1, "float32", 3) as tf.Tensor3D;
      const t = (r: { shape: number[]; data: Float32Array }) => tf.tensor(r.data, r.shape);
      const fused = neoxQkvHeads(x, { w: t(W) as tf.Tensor2D, b: t(b) as tf.Tensor1D }, 4, 8);
      for (const key of ["q", "k", "v"] as const) {
        const separate = splitHeads(linear(x, t(parts[key]) as tf.Tensor2D, t(bp[key]) as tf.Tensor1D), 4, 8); // (B, nh, T, hs)
        expect(maxAbsDiff(fused[key].arraySync(), separate.arraySync())).toBeLessThan(1e-5);
      }
      // Phi-3's block layout on the same weight would be a different cut
      const [blockQ] = splitRows(W, [32, 32, 32]);
      expect(maxAbsDiff(splitHeads(linear(x, t(blockQ!) as tf.Tensor2D), 4, 8).arraySync(), fused.q.arraySync())).toBeGreaterThan(1e-2);
    });
    expect(concatRows(splitRows(W, [32, 32, 32]))).toEqual(W);
    expect(tf.memory().numTensors).toBe(n);
  });

  test("old checkpoints' attention.bias / masked_bias / rotary_emb.inv_freq buffers are skipped silently", async () => {
    const n = tf.memory().numTensors;
    const warnings: string[] = [];
    const log: Logger = { debug: () => {}, info: () => {}, warn: (a: object | string, m?: string) => warnings.push(typeof a === "string" ? a : (m ?? "")), error: () => {}, child: () => log };
    const { dir, tensors } = await writeTinyModel(path.join(tmp, "buffers"), { config: NEOX, seed: 2, tokenizer: "none" });
    const withBuffers = new Map(tensors);
    withBuffers.set("gpt_neox.layers.0.attention.bias", { shape: [1, 1, 4, 4], data: new Float32Array(16) });
    withBuffers.set("gpt_neox.layers.0.attention.masked_bias", { shape: [], data: new Float32Array([-1e9]) });
    withBuffers.set("gpt_neox.layers.0.attention.rotary_emb.inv_freq", { shape: [1], data: new Float32Array([1]) });
    await writeModelWeights(dir, withBuffers);
    const m = await loadModel(dir, { log });
    expect(warnings).toEqual([]);
    expect(logitsOf(m, [[1, 40]])[0]).toHaveLength(2);
    disposeModel(m);
    expect(tf.memory().numTensors).toBe(n);
  });
});

const { vocab_size: _v, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, ...TOKENIZER_CONFIG } = NEOX;
realTokenizerTest("gpt_neox with the GPT-NeoX-20B tokenizer (Pythia's): loadTokenizer + loadModel + generate", { ...TOKENIZER_CONFIG, bos_token_id: 0, eos_token_id: 0 }, path.join(SHARED_TOKENIZERS, "gpt-neox-20b"));
