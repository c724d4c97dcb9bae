/**
 * The pieces the architectures add, each against a direct computation: GELU (erf and tanh),
 * Gemma's (1 + w) RMSNorm, LayerNorm, soft-capping, the sliding-window bias, partial rotary.
 * Run on cpu and wasm (wasm's erf and tanh are its own kernels).
 */
import * as tf from "@tensorflow/tfjs-core";
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { initBackend } from "../src/backend.js";
import { attentionBias, MASKED } from "../src/model/attention.js";
import { softcap } from "../src/model/decoder.js";
import { gelu, geluTanh } from "../src/model/gelu.js";
import { activation } from "../src/model/mlp.js";
import { gemmaRmsNorm, layerNorm, rmsNorm } from "../src/model/norm.js";
import { parseModelConfig } from "../src/model/registry.js";
import { applyRope, ropeCosSin, ropeInvFreq } from "../src/model/rope.js";
import { erf } from "./arch-reference.js";

const XS = [-6, -3.5, -2, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 2, 3.5, 6];
const M = MASKED;

describe("erf of the reference helper", () => {
  test("matches tabulated values (Abramowitz & Stegun table 7.1)", () => {
    expect(erf(0)).toBe(0);
    expect(erf(0.5)).toBeCloseTo(0.5204998778, 10);
    expect(erf(1)).toBeCloseTo(0.8427007929, 10);
    expect(erf(2)).toBeCloseTo(0.9953222650, 10);
    expect(erf(3.5)).toBeCloseTo(0.9999992569, 10);
    expect(erf(-1)).toBeCloseTo(-0.8427007929, 10);
  });
});

for (const backend of ["cpu", "wasm"] as const) {
  describe(`pieces (${backend})`, () => {
    let n = 0;
    beforeAll(async () => {
      await initBackend(backend);
    });
    beforeEach(() => {
      n = tf.memory().numTensors;
    });
    afterEach(() => {
      expect(tf.memory().numTensors).toBe(n);
    });
    const run = (f: (x: tf.Tensor) => tf.Tensor, xs: number[]): number[] =>
      tf.tidy(() => Array.from(f(tf.tensor1d(xs)).dataSync()));

    test("gelu = ½x(1 + erf(x/√2)); gelu_pytorch_tanh = ½x(1 + tanh(√(2/π)(x + 0.044715x³))); they differ by < 1e-3", () => {
      const exact = run(gelu, XS);
      const tanh = run(geluTanh, XS);
      XS.forEach((x, i) => {
        expect(exact[i]).toBeCloseTo(0.5 * x * (1 + erf(x / Math.SQRT2)), 6);
        expect(tanh[i]).toBeCloseTo(0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))), 6);
        expect(Math.abs((exact[i] as number) - (tanh[i] as number))).toBeLessThan(1e-3);
      });
      // e.g. x = 1: exact 0.8413447, tanh 0.8411920
      expect(exact[9]).toBeCloseTo(0.8413447, 6);
      expect(tanh[9]).toBeCloseTo(0.841192, 6);
      expect(activation("gelu_new")).toBe(geluTanh);
      expect(activation("gelu")).toBe(gelu);
    });

    test("GELU gradients: d/dx of both match central differences", () => {
      for (const f of [gelu, geluTanh]) {
        const g = tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => tf.sum(f(x)))(tf.tensor1d(XS)).dataSync()));
        XS.forEach((x, i) => {
          const h = 1e-3;
          const fd = (run(f, [x + h])[0]! - run(f, [x - h])[0]!) / (2 * h);
          expect(g[i]).toBeCloseTo(fd, 2);
        });
      }
    });

    test("gemmaRmsNorm = x / √(mean x² + eps) · (1 + w); zero w is plain RMS normalisation", () => {
      const x = [1, -2, 3, 0.5];
      const w = [0, 0.5, -1, 2];
      const rms = Math.sqrt((1 + 4 + 9 + 0.25) / 4 + 1e-6);
      const got = tf.tidy(() => Array.from(gemmaRmsNorm(tf.tensor2d([x]), tf.tensor1d(w), 1e-6).dataSync()));
      x.forEach((v, i) => expect(got[i]).toBeCloseTo((v / rms) * (1 + (w[i] as number)), 5));
      const plain = tf.tidy(() => Array.from(gemmaRmsNorm(tf.tensor2d([x]), tf.zeros([4]), 1e-6).dataSync()));
      const llama = tf.tidy(() => Array.from(rmsNorm(tf.tensor2d([x]), tf.ones([4]), 1e-6).dataSync()));
      expect(plain).toEqual(llama);
    });

    test("layerNorm = (x − mean) / √(biased var + eps) · w + b", () => {
      const x = [1, -2, 3, 0.5];
      const mean = 0.625;
      const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / 4;
      const w = [1, 2, 0.5, -1];
      const b = [0, 0.1, -0.2, 0.3];
      const got = tf.tidy(() => Array.from(layerNorm(tf.tensor2d([x]), tf.tensor1d(w), tf.tensor1d(b), 1e-5).dataSync()));
      x.forEach((v, i) => expect(got[i]).toBeCloseTo(((v - mean) / Math.sqrt(variance + 1e-5)) * (w[i] as number) + (b[i] as number), 5));
    });

    test("soft-capping: cap·tanh(x / cap), bounded by the cap, ≈ x for small x", () => {
      const got = run((t) => softcap(t, 5), [-100, -5, -0.01, 0, 0.01, 5, 100]);
      expect(got[0]).toBeCloseTo(-5, 5);
      expect(got[1]).toBeCloseTo(5 * Math.tanh(-1), 5);
      expect(got[2]).toBeCloseTo(-0.01, 6);
      expect(got[6]).toBeCloseTo(5, 5);
    });

    test("sliding-window bias: query at index q sees keys q − W < k ≤ q; with a mask, counted in real tokens", () => {
      // T = 3 new after P = 2 cached (S = 5), window 2: query 0 (index 2) sees keys 1, 2
      const b = attentionBias(3, 5, undefined, 2);
      expect(b.arraySync()).toEqual([[[[M, 0, 0, M, M], [M, M, 0, 0, M], [M, M, M, 0, 0]]]]);
      // key 1 is padding: query 1 (index 3) sees real tokens 2 and 3; query 0 sees 0 and 2
      const mask = tf.tensor2d([[1, 0, 1, 1, 1]], undefined, "int32");
      const bm = attentionBias(3, 5, mask, 2);
      expect(bm.arraySync()).toEqual([[[[0, M, 0, M, M], [M, 2 * M, 0, 0, M], [M, 2 * M, M, 0, 0]]]]);
      tf.dispose([b, mask, bm]);
    });

    test("partial rotary (gpt_neox rotary_pct 0.5, hs 8): rotate_half on the first 4 dims with θ over 4 dims, the rest untouched", () => {
      const c = parseModelConfig({ model_type: "gpt_neox", vocab_size: 8, hidden_size: 16, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, rotary_pct: 0.5 });
      expect(c.rotaryDim).toBe(4);
      const inv = ropeInvFreq(c); // 10000^(−0/4), 10000^(−2/4) = 1, 0.01
      expect(Array.from(inv)).toEqual([1, Math.fround(0.01)]);
      const x = [1, 2, 3, 4, 5, 6, 7, 8];
      const got = tf.tidy(() => {
        const { cos, sin } = ropeCosSin(inv, tf.tensor2d([[3]], [1, 1], "int32"));
        return Array.from(applyRope(tf.tensor4d(x, [1, 1, 1, 8]), cos, sin).dataSync());
      });
      // pairs (0, 2) by 3 rad, (1, 3) by 0.03 rad
      const want = [1 * Math.cos(3) - 3 * Math.sin(3), 2 * Math.cos(0.03) - 4 * Math.sin(0.03), 3 * Math.cos(3) + 1 * Math.sin(3), 4 * Math.cos(0.03) + 2 * Math.sin(0.03), 5, 6, 7, 8];
      want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    });
  });
}

describe("registry", () => {
  test("every architecture of the issue is registered; an unknown model_type lists them", () => {
    for (const t of ["llama", "mistral", "qwen2", "gpt_neox", "gemma", "gemma2", "phi3"]) {
      expect(() => parseModelConfig({ model_type: t })).toThrow(/invalid config/);
    }
    expect(() => parseModelConfig({ model_type: "bert" }, "x/config.json")).toThrow(
      'x/config.json has model_type "bert", which is not supported (supported: llama, mistral, qwen2, gpt_neox, gemma, gemma2, phi3)',
    );
  });
});
