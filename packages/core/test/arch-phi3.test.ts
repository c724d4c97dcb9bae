/**
 * phi3: Llama with fused qkv_proj / gate_up_proj, partial rotary, sliding window, LongRoPE.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { writeModelWeights } from "../src/io/model-files.js";
import { concatRows, splitRows, type RowMajor } from "../src/model/fused-weights.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";
import { ropeAttentionScale, ropeInvFreq } from "../src/model/rope.js";
import { archBehaviourSuite, realTokenizerTest, referenceTest } from "./arch-suite.js";
import { logitsOf, maxAbsDiff, SHARED_TOKENIZERS, writeTinyModel } from "./arch-tiny-model.js";

/** A tiny Phi-3: GQA 4/2 heads of 8, 6 of 8 dims rotated (partial 0.75), window 5. */
const PHI3 = {
  architectures: ["Phi3ForCausalLM"],
  model_type: "phi3",
  vocab_size: 320,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 64,
  original_max_position_embeddings: 64,
  partial_rotary_factor: 0.75,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  rope_scaling: null,
  sliding_window: 5,
  embd_pdrop: 0.0,
  resid_pdrop: 0.0,
  attention_dropout: 0.0,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 3,
  torch_dtype: "float32",
};

/** Phi-3-128k style: max 256 over an original 16, so the attention factor is √(1 + ln 16 / ln 16) = √2. */
const LONGROPE = {
  ...PHI3,
  max_position_embeddings: 256,
  original_max_position_embeddings: 16,
  sliding_window: null,
  rope_scaling: { type: "longrope", short_factor: [1.0, 1.5, 2.0], long_factor: [2.0, 3.0, 4.0] },
};

archBehaviourSuite({ title: "phi3 (fused qkv/gate_up, partial rotary 0.75, window 5)", config: PHI3, headName: "lm_head.weight" });

describe("phi3 variants against the direct computation", () => {
  referenceTest("longrope (short factors below the original length, cos/sin × √2)", LONGROPE);
  referenceTest('old "su" type, full rotary, tied', { ...LONGROPE, partial_rotary_factor: undefined, tie_word_embeddings: true, rope_scaling: { type: "su", short_factor: [1, 1.25, 1.5, 1.75], long_factor: [1, 2, 3, 4] } });
});

describe("phi3 config and LongRoPE", () => {
  test("longrope: factors per frequency, attention factor from max / original, long factors past the original length", () => {
    const c = parseModelConfig(LONGROPE);
    expect(c.rotaryDim).toBe(6);
    expect(c.ropeScaling).toEqual({ type: "longrope", shortFactor: [1, 1.5, 2], longFactor: [2, 3, 4], originalMaxPositions: 16, attentionFactor: Math.SQRT2 });
    expect(ropeAttentionScale(c)).toBe(Math.SQRT2);
    // rd 6, θ = 10000: base^(2i/6) = 1, 21.5443, 464.159; divided by the factors
    const p = { ...c, rotaryDim: 6 };
    const short = ropeInvFreq(p, 16);
    const long = ropeInvFreq(p, 17);
    [1 / 1, 1 / (1.5 * 21.544347), 1 / (2 * 464.15888)].forEach((v, i) => expect(short[i]).toBeCloseTo(v, 7));
    [1 / 2, 1 / (3 * 21.544347), 1 / (4 * 464.15888)].forEach((v, i) => expect(long[i]).toBeCloseTo(v, 7));
    // no top-level original length in rope_scaling's own fields: transformers 5 layout
    const { original_max_position_embeddings: _o, ...v5 } = LONGROPE;
    expect(parseModelConfig({ ...v5, rope_scaling: { ...LONGROPE.rope_scaling, attention_factor: 1.2 } }).ropeScaling).toMatchObject({ originalMaxPositions: 4096, attentionFactor: 1.2 });
    // an explicit attention_factor wins; max ≤ original gives 1
    expect(parseModelConfig({ ...LONGROPE, max_position_embeddings: 16 }).ropeScaling).toMatchObject({ attentionFactor: 1 });
  });

  test("errors: factor lists of the wrong length, unknown rope types", () => {
    expect(() => parseModelConfig({ ...LONGROPE, rope_scaling: { ...LONGROPE.rope_scaling, short_factor: [1, 1] } }, "p/config.json")).toThrow(
      /p\/config\.json: rope_scaling\.short_factor has 2 values; rope_type "longrope" needs 3 \(rotary dims \/ 2\)/,
    );
    expect(() => parseModelConfig({ ...PHI3, rope_scaling: { type: "yarn", factor: 4 } })).toThrow(/rope_type "yarn" is not supported \(supported: default, linear, dynamic, llama3, longrope, su\)/);
    expect(() => parseModelConfig({ ...PHI3, model_type: "llama", rope_scaling: LONGROPE.rope_scaling })).toThrow(/rope_type "longrope" is not supported/);
  });

  test("expected tensors: fused qkv_proj (nh·hs + 2·nkv·hs rows) and gate_up_proj (2I rows), no biases; Phi3Config defaults", () => {
    const c = parseModelConfig(PHI3);
    const shapes = Object.fromEntries(getArchitecture("phi3").expectedTensors(c).map((e) => [e.name, e.shape]));
    expect(shapes["model.layers.0.self_attn.qkv_proj.weight"]).toEqual([32 + 2 * 16, 32]);
    expect(shapes["model.layers.0.mlp.gate_up_proj.weight"]).toEqual([128, 32]);
    expect(Object.keys(shapes).filter((n) => n.endsWith(".bias"))).toEqual([]);
    expect(c.layerWindows).toEqual([5, 5]);
    const { num_key_value_heads: _k, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, sliding_window: _w, ...bare } = PHI3;
    expect(parseModelConfig(bare)).toMatchObject({ nKvHeads: 4, bosId: 1, eosIds: [32000], padId: 32000, layerWindows: [null, null] });
  });
});

describe("phi3 fused layouts", () => {
  let tmp = "";
  beforeAll(async () => {
    await initBackend("wasm");
    tmp = await mkdtemp(path.join(os.tmpdir(), "oml-phi3-"));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  test("split → re-fuse is the identity; the model equals a llama on the split weights", async () => {
    const n = tf.memory().numTensors;
    const cfg = { ...PHI3, partial_rotary_factor: 1.0, sliding_window: null };
    const { tensors } = await writeTinyModel(path.join(tmp, "phi3"), { config: cfg, seed: 12 });
    const llama = new Map<string, RowMajor>();
    for (const [name, t] of tensors) {
      if (name.endsWith("qkv_proj.weight")) {
        const parts = splitRows(t, [32, 16, 16]);
        expect(concatRows(parts)).toEqual(t);
        ["q", "k", "v"].forEach((p, i) => llama.set(name.replace("qkv_proj", `${p}_proj`), parts[i]!));
      } else if (name.endsWith("gate_up_proj.weight")) {
        const parts = splitRows(t, [64, 64]);
        expect(concatRows(parts)).toEqual(t);
        llama.set(name.replace("gate_up_proj", "gate_proj"), parts[0]!);
        llama.set(name.replace("gate_up_proj", "up_proj"), parts[1]!);
      } else {
        llama.set(name, t);
      }
    }
    await writeTinyModel(path.join(tmp, "llama"), { config: { ...cfg, model_type: "llama", architectures: ["LlamaForCausalLM"] }, seed: 12 });
    await writeModelWeights(path.join(tmp, "llama"), llama);
    const [p, l] = await Promise.all(["phi3", "llama"].map((d) => loadModel(path.join(tmp, d))));
    const ids = [[1, 40, 41, 42, 43, 44, 45]];
    expect(maxAbsDiff(logitsOf(p!, ids), logitsOf(l!, ids))).toBeLessThan(1e-5);
    // the cut matters: swapping the k and v blocks changes the logits
    const swapped = new Map(tensors);
    const [q, k, v] = splitRows(tensors.get("model.layers.0.self_attn.qkv_proj.weight")!, [32, 16, 16]);
    swapped.set("model.layers.0.self_attn.qkv_proj.weight", concatRows([q!, v!, k!]));
    await writeModelWeights(path.join(tmp, "phi3"), swapped);
    const s = await loadModel(path.join(tmp, "phi3"));
    expect(maxAbsDiff(logitsOf(s, ids), logitsOf(p!, ids))).toBeGreaterThan(1e-2);
    for (const m of [p, l, s]) {
      disposeModel(m!);
    }
    expect(tf.memory().numTensors).toBe(n);
  });
});

const { vocab_size: _v, bos_token_id: _b, eos_token_id: _e, pad_token_id: _p, ...TOKENIZER_CONFIG } = PHI3;
realTokenizerTest("phi3 with the Phi-3 tokenizer: loadTokenizer + loadModel + generate", { ...TOKENIZER_CONFIG, bos_token_id: 1, eos_token_id: 32000, pad_token_id: 32000 }, path.join(SHARED_TOKENIZERS, "phi-3-vision"));
