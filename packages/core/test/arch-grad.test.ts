/**
 * Gradients through every architecture's forward (tf.variableGrads with tf.Variables passed
 * as `weights`) match central finite differences at one element of every tensor: soft-capping,
 * sandwich norms, (1 + w) norms, LayerNorm, erf GELU, the fused-weight cuts, LongRoPE.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel } from "../src/model/load-model.js";
import { createRng } from "../src/util/rng.js";
import { writeTinyModel } from "./arch-tiny-model.js";

const BASE = { vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 64, bos_token_id: 1, eos_token_id: 2, pad_token_id: 3 };
const CONFIGS: Record<string, Record<string, unknown>> = {
  gemma2: { ...BASE, model_type: "gemma2", num_key_value_heads: 2, head_dim: 8, query_pre_attn_scalar: 12, sliding_window: 3, attn_logit_softcapping: 3.0, final_logit_softcapping: 4.0 },
  gpt_neox: { ...BASE, model_type: "gpt_neox", rotary_pct: 0.5, hidden_act: "gelu" },
  phi3: {
    ...BASE,
    model_type: "phi3",
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    original_max_position_embeddings: 16,
    rope_scaling: { type: "longrope", short_factor: [1, 2], long_factor: [3, 4] },
  },
  qwen2: { ...BASE, model_type: "qwen2", num_key_value_heads: 2 },
};

const ids = [
  [3, 3, 1, 40, 41, 42],
  [1, 50, 51, 52, 53, 54],
];
const mask = [
  [0, 0, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1],
];

let tmp = "";
beforeAll(async () => {
  await initBackend("wasm");
  tmp = await mkdtemp(path.join(os.tmpdir(), "oml-arch-grad-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe.each(Object.keys(CONFIGS))("%s gradients", (type) => {
  test("variableGrads = central differences at one element of every tensor (real tokens only)", async () => {
    const { dir } = await writeTinyModel(path.join(tmp, type), { config: CONFIGS[type] as Record<string, unknown>, seed: 13, std: 0.3, tokenizer: "none" });
    const model = await loadModel(dir);
    const before = tf.memory().numTensors;
    const input = tf.tensor2d(ids, undefined, "int32");
    const m = tf.tensor2d(mask, undefined, "int32");
    const rng = createRng(5);
    const R = tf.tensor3d(
      Array.from({ length: 2 * 6 * 64 }, (_, i) => (mask[Math.floor(i / (6 * 64))]?.[Math.floor(i / 64) % 6] ?? 0) * rng.normal()),
      [2, 6, 64],
    );
    const loss = (weights: Map<string, tf.Tensor>): tf.Scalar => tf.tidy(() => tf.sum(tf.mul(forward(model, input, { attentionMask: m, weights }), R)));
    const vars = new Map<string, tf.Variable>([...model.weights].map(([name, t]) => [name, tf.variable(t, true, `arch-grad-${type}-${name}`)]));
    const { value, grads } = tf.variableGrads(() => loss(vars), [...vars.values()]);
    for (const [name, w] of model.weights) {
      const base = w.dataSync() as Float32Array;
      const i = name.includes("embed") ? 40 * w.shape[1]! + 3 : (name.length * 7) % base.length; // embeddings: a row that is used
      const at = (delta: number): number => {
        const data = Float32Array.from(base);
        data[i] = (data[i] as number) + delta;
        return tf.tidy(() => loss(new Map([[name, tf.tensor(data, w.shape)]])).dataSync()[0] as number);
      };
      const h = 1e-2;
      const numeric = (at(h) - at(-h)) / (2 * h);
      const analytic = (grads[`arch-grad-${type}-${name}`] as tf.Tensor).dataSync()[i] as number;
      expect(Math.abs(analytic - numeric), `${name}[${i}]: analytic ${analytic}, numeric ${numeric}`).toBeLessThan(3e-2 * Math.max(1, Math.abs(numeric)));
    }
    tf.dispose([value, ...Object.values(grads), ...vars.values(), input, m, R]);
    expect(tf.memory().numTensors).toBe(before);
    disposeModel(model);
  });
});
