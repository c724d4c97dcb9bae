import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { RuntimeFailure } from "../errors.js";
import { linear } from "../model/linear.js";
import { AdamW, type Optimizer } from "./adamw.js";
import { globalNorm } from "./grad-utils.js";
import { maxScaledError, numericGradient } from "./gradient-check.js";
import { IGNORE_INDEX, maskedCrossEntropy } from "./loss.js";
import { trainStep } from "./train-step.js";

const X = IGNORE_INDEX;
let serial = 0;

/** A toy causal LM: embedding → linear → SiLU → linear to V logits, HF-style names. */
function toyModel(V: number, C: number, H: number, seed: number): Map<string, tf.Variable> {
  return tf.tidy(() => {
    const v = (name: string, shape: number[], scale: number, s: number) =>
      [name, tf.variable(tf.mul(tf.randomNormal(shape, 0, 1, "float32", s), scale), true, `train-step-test-${serial++}-${name}`)] as const;
    return new Map([
      v("embed_tokens.weight", [V, C], 1, seed),
      v("up.weight", [H, C], 1 / Math.sqrt(C), seed + 1),
      v("up.bias", [H], 0.1, seed + 2),
      v("lm_head.weight", [V, H], 1 / Math.sqrt(H), seed + 3),
    ]);
  });
}

function toyLogits(p: Map<string, tf.Tensor>, ids: tf.Tensor2D): tf.Tensor {
  const get = (n: string) => p.get(n) as tf.Tensor;
  const x = tf.gather(get("embed_tokens.weight"), ids); // (B, T, C)
  const h = linear(x, get("up.weight") as tf.Tensor2D, get("up.bias") as tf.Tensor1D); // (B, T, H)
  return linear(tf.mul(h, tf.sigmoid(h)), get("lm_head.weight") as tf.Tensor2D); // (B, T, V)
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`trainStep on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("memorizes a fixed batch: the loss falls near zero, no tensor leaks per step", () => {
      const params = toyModel(8, 16, 32, 100);
      // The toy has no attention, so the counted next tokens must be a function of the token:
      // 1→2, 2→3, 3→4, 4→5, 7→6, 6→5.
      const ids = tf.tensor2d([[0, 1, 2, 3, 4, 5], [7, 6, 5, 0, 1, 2]], undefined, "int32");
      const labels = tf.tensor2d([[X, X, 2, 3, 4, 5], [X, 6, 5, X, X, 2]], undefined, "int32");
      const opt = new AdamW({ weightDecay: 0 });
      const lossFn = () => maskedCrossEntropy(toyLogits(params, ids), labels);
      const first = trainStep({ lossFn, params, optimizer: opt, lr: 3e-2, clipNorm: 1 });
      const during = tf.memory().numTensors;
      let last = first;
      for (let i = 0; i < 200; i++) {
        last = trainStep({ lossFn, params, optimizer: opt, lr: 3e-2, clipNorm: 1 });
      }
      expect(tf.memory().numTensors).toBe(during);
      expect(first.loss).toBeGreaterThan(1);
      expect(last.loss).toBeLessThan(0.01);
      expect(last.gradNorm).toBeLessThan(first.gradNorm);
      tf.dispose([ids, labels, ...params.values()]);
    });

    test("gradients of a composed model (gather, linear, SiLU, loss) match finite differences", () => {
      const params = toyModel(5, 3, 4, 200);
      const ids = tf.tensor2d([[0, 4, 2, 2], [1, 3, 0, 4]], undefined, "int32");
      const labels = tf.tensor2d([[0, 4, X, 2], [X, X, 0, 4]], undefined, "int32");
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => maskedCrossEntropy(toyLogits(params, ids), labels), [...params.values()]);
        for (const [name, v] of params) {
          const f = (t: tf.Tensor) => maskedCrossEntropy(toyLogits(new Map([...params, [name, t]]), ids), labels);
          const fd = numericGradient(f, v, 1e-2);
          expect(maxScaledError(grads[v.name]?.dataSync() ?? [], fd), name).toBeLessThan(1e-3);
        }
      });
      tf.dispose([ids, labels, ...params.values()]);
    });

    test("reports the loss before the update and the norm before clipping; clips what the optimizer sees", () => {
      const params = toyModel(6, 4, 5, 300);
      const ids = tf.tensor2d([[1, 2, 3, 4]], undefined, "int32");
      const labels = tf.tensor2d([[1, 2, 3, 4]], undefined, "int32");
      const lossFn = () => maskedCrossEntropy(toyLogits(params, ids), labels);
      const expected = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
        return { loss: value.dataSync()[0] as number, norm: globalNorm(new Map(Object.entries(grads) as Array<[string, tf.Tensor]>)) };
      });
      const seen: Array<{ names: string[]; norm: number; lr: number }> = [];
      const spy: Optimizer = { step: (_p, g, lr) => seen.push({ names: [...g.keys()].sort(), norm: globalNorm(g), lr }) };
      const clip = expected.norm / 2;
      const r = trainStep({ lossFn, params, optimizer: spy, lr: 0.5, clipNorm: clip });
      expect(r.loss).toBeCloseTo(expected.loss, 5);
      expect(r.gradNorm).toBeCloseTo(expected.norm, 4);
      expect(seen[0]?.norm).toBeCloseTo(clip, 4);
      expect(seen[0]?.names).toEqual([...params.keys()].sort()); // keyed by our names, not tfjs's
      expect(seen[0]?.lr).toBe(0.5);
      trainStep({ lossFn, params, optimizer: spy, lr: 0.5 });
      expect(seen[1]?.norm).toBeCloseTo(expected.norm, 4); // no clipNorm: untouched
      tf.dispose([ids, labels, ...params.values()]);
    });

    test("a non-finite loss throws before any update, leaking nothing", () => {
      const params = toyModel(4, 2, 3, 400);
      const snapshot = [...params.values()].map((v) => Array.from(v.dataSync()));
      const lossFn = () => tf.mul(tf.sum(params.get("up.weight") as tf.Tensor), Number.NaN) as tf.Scalar;
      expect(() => trainStep({ lossFn, params, optimizer: new AdamW(), lr: 0.1 })).toThrow(RuntimeFailure);
      expect([...params.values()].map((v) => Array.from(v.dataSync()))).toEqual(snapshot);
      tf.dispose([...params.values()]);
    });
  });
}
