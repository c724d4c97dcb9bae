/**
 * The forward pass is trainable: with tf.Variables passed through `weights`, tfjs's gradients
 * (through gather, RMSNorm, RoPE, grouped attention with a padding mask, SwiGLU, linear)
 * match central finite differences, on cpu and wasm, without leaking tensors.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { createTinyModel } from "../src/model/create-tiny-model.js";
import { forward } from "../src/model/forward.js";
import { disposeModel, loadModel, type Model } from "../src/model/load-model.js";
import { createRng } from "../src/util/rng.js";

let tmp = "";
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "oml-llama-grad-"));
  // 2 layers, C 16, 4 query heads / 2 kv heads of 4, untied head
  await createTinyModel(tmp, { seed: 11, hidden: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 32, overwrite: true, initializerRange: 0.2 });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const ids = [
  [3, 3, 1, 40, 41, 42],
  [1, 50, 51, 52, 53, 54],
]; // row 0 left-padded with the pad id 3
const mask = [
  [0, 0, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 1],
];
/** Which (tensor, flat index) pairs to check. */
const PROBES: [string, number][] = [
  ["model.embed_tokens.weight", 40 * 16 + 3],
  ["model.layers.0.self_attn.q_proj.weight", 17],
  ["model.layers.0.self_attn.k_proj.weight", 5],
  ["model.layers.1.self_attn.v_proj.weight", 30],
  ["model.layers.0.self_attn.o_proj.weight", 100],
  ["model.layers.1.mlp.gate_proj.weight", 7],
  ["model.layers.1.mlp.down_proj.weight", 200],
  ["model.layers.0.input_layernorm.weight", 2],
  ["model.norm.weight", 9],
  ["lm_head.weight", 41 * 16 + 5],
];

for (const backend of ["cpu", "wasm"] as const) {
  describe(`llama gradients (${backend})`, () => {
    let model: Model;
    beforeAll(async () => {
      await initBackend(backend);
      model = await loadModel(tmp);
    });
    afterAll(() => disposeModel(model));

    test("variableGrads through forward match finite differences at real tokens", () => {
      const before = tf.memory().numTensors;
      const input = tf.tensor2d(ids, undefined, "int32");
      const m = tf.tensor2d(mask, undefined, "int32");
      const rng = createRng(5);
      // loss = Σ logits · R over real positions: linear in the logits, so central differences are exact up to curvature
      const R = tf.tensor3d(
        Array.from({ length: 2 * 6 * 320 }, (_, i) => (mask[Math.floor(i / (6 * 320))]?.[Math.floor(i / 320) % 6] ?? 0) * rng.normal()),
        [2, 6, 320],
      );
      const loss = (weights: Map<string, tf.Tensor>): tf.Scalar => tf.sum(tf.mul(forward(model, input, { attentionMask: m, weights }), R));
      const vars = new Map<string, tf.Variable>([...model.weights].map(([name, t]) => [name, tf.variable(t, true, `grad-test-${backend}-${name}`)]));
      const { value, grads } = tf.variableGrads(() => loss(vars), [...vars.values()]);
      expect(Object.keys(grads)).toHaveLength(model.weights.size);
      for (const [name, i] of PROBES) {
        const w = model.weights.get(name) as tf.Tensor;
        const base = w.dataSync() as Float32Array;
        const at = (delta: number): number => {
          const data = Float32Array.from(base);
          data[i] = (data[i] as number) + delta;
          return tf.tidy(() => loss(new Map([[name, tf.tensor(data, w.shape)]])).dataSync()[0] as number);
        };
        const h = 1e-2;
        const numeric = (at(h) - at(-h)) / (2 * h);
        const analytic = (grads[`grad-test-${backend}-${name}`] as tf.Tensor).dataSync()[i] as number;
        expect(Math.abs(analytic - numeric), `${name}[${i}]: analytic ${analytic}, numeric ${numeric}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
      }
      tf.dispose([value, ...Object.values(grads), ...vars.values(), input, m, R]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
