import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { ADAMW_UPDATE, adamwUpdateConfig, adamwUpdateValues } from "../kernels/adamw-update.js";
import { AdamW } from "./adamw.js";
import { maxScaledError } from "./gradient-check.js";

let serial = 0;
/** A fresh variable (tfjs variable names are global); the initial tensor is not leaked. */
function variable(values: number[]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor1d(values), true, `adamw-test-${serial++}`));
}

/** Run AdamW on one parameter over a list of (gradient, lr) steps; returns the weights. */
function run(opt: AdamW, w: tf.Variable, steps: Array<[number[], number]>, name = "w"): number[] {
  for (const [g, lr] of steps) {
    const grad = tf.tensor1d(g);
    opt.step(new Map([[name, w]]), new Map([[name, grad]]), lr);
    grad.dispose();
  }
  return Array.from(w.dataSync());
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`AdamW on ${backend}`, () => {
    /** Three steps run unbroken on w1, and the first two of them on w2 with `first`. */
    function stoppedAfterTwo(): { steps: Array<[number[], number]>; w1: tf.Variable; unbroken: number[]; w2: tf.Variable; first: AdamW } {
      const steps: Array<[number[], number]> = [[[0.5, -1], 0.1], [[0.2, 0.3], 0.1], [[-0.7, 0.1], 0.05]];
      const w1 = variable([1, 1]);
      const unbroken = run(new AdamW(), w1, steps);
      const w2 = variable([1, 1]);
      const first = new AdamW();
      run(first, w2, steps.slice(0, 2));
      return { steps, w1, unbroken, w2, first };
    }

    expectNoLeakedTensors(backend);

    test("one step by hand: w·(1 − lr·wd) − lr·g/(|g| + eps)", () => {
      // Step 1: m = 0.1·g, v = 0.001·g², so m̂ = g and v̂ = g²: the step is lr·sign(g).
      // lr = 0.1, wd = 0.01: 1 → 0.999 − 0.1; −2 → −1.998 − 0.1; 0.5 → 0.4995 + 0.1; g = 0 → 0.
      const w = variable([1, -2, 0.5, 0]);
      const got = run(new AdamW({ weightDecay: 0.01 }), w, [[[0.5, 0.5, -3, 0], 0.1]]);
      expect(maxScaledError(got, [0.899, -2.098, 0.5995, 0])).toBeLessThan(2e-7);
      w.dispose();
    });

    test("three steps match PyTorch's update written out in float32", () => {
      // torch.optim.AdamW (foreach=False), per step t with lr_t, wd = 0.1, betas (0.9, 0.999), eps 1e-8:
      //   p.mul_(1 - lr*wd); m.lerp_(g, 0.1); v.mul_(0.999).addcmul_(g, g, value=0.001)
      //   denom = (v.sqrt() / sqrt(1 - 0.999**t)).add_(1e-8); p.addcdiv_(m, denom, value=-lr / (1 - 0.9**t))
      // evaluated op by op in numpy float32 for w0 = [1, -2, 0.5] and these gradients:
      //   t=1 g=[1, -0.5, 0.1] lr=0.1 → [0.89000004529953, -1.8799999952316284, 0.39500001072883606]
      //   t=2 g=[-1, -0.5, 0.2] lr=0.05 → [0.8881816267967224, -1.8206000328063965, 0.34476590156555176]
      //   t=3 g=[2, 0.25, -0.3] lr=0.02 → [0.8764404654502869, -1.8066458702087402, 0.3454083502292633]
      // (by hand, t=2, w[0]: 0.89·0.995 − (0.05/0.19)·(−0.01)/(√0.001999/√0.001999) = 0.8881816)
      const opt = new AdamW({ weightDecay: 0.1 });
      const w = variable([1, -2, 0.5]);
      const expected = [
        [0.89000004529953, -1.8799999952316284, 0.39500001072883606],
        [0.8881816267967224, -1.8206000328063965, 0.34476590156555176],
        [0.8764404654502869, -1.8066458702087402, 0.3454083502292633],
      ];
      const steps: Array<[number[], number]> = [[[1, -0.5, 0.1], 0.1], [[-1, -0.5, 0.2], 0.05], [[2, 0.25, -0.3], 0.02]];
      steps.forEach((s, i) => {
        expect(maxScaledError(run(opt, w, [s]), expected[i] as number[])).toBeLessThan(4e-7);
      });
      const state = opt.exportState().get("w");
      expect(state?.step).toBe(3);
      expect(maxScaledError(state?.m ?? [], [0.19099999964237213, -0.060499999672174454, -0.0039000026881694794])).toBeLessThan(2e-7);
      expect(maxScaledError((state?.v ?? []).map((x) => x * 1e4), [59.97001193463802, 5.617502611130476, 1.399400207446888])).toBeLessThan(2e-7);
      w.dispose();
    });

    test("without weight decay it is tfjs's Adam", () => {
      const ours = variable([0.3, -0.7, 1.5, 2]);
      const theirs = variable([0.3, -0.7, 1.5, 2]);
      const adam = tf.train.adam(0.01, 0.9, 0.999, 1e-8);
      const opt = new AdamW({ weightDecay: 0 });
      for (const g of [[1, 2, -3, 0.5], [0.1, -2, 3, 0.5], [-4, 0.2, 0.3, 0]]) {
        const grad = tf.tensor1d(g);
        opt.step(new Map([["x", ours]]), new Map([["x", grad]]), 0.01);
        adam.applyGradients({ [theirs.name]: grad });
        grad.dispose();
      }
      expect(maxScaledError(ours.dataSync(), theirs.dataSync())).toBeLessThan(1e-6);
      adam.dispose();
      tf.dispose([ours, theirs]);
    });

    test("state is keyed by name: order does not matter, missing gradients skip a step, noDecay", () => {
      const a1 = variable([1, 2]);
      const b1 = variable([3]);
      const a2 = variable([1, 2]);
      const b2 = variable([3]);
      const o1 = new AdamW({ weightDecay: 0.5, noDecay: (n) => n.endsWith(".bias") });
      const o2 = new AdamW({ weightDecay: 0.5, noDecay: (n) => n.endsWith(".bias") });
      tf.tidy(() => {
        const ga = tf.tensor1d([0.1, -0.2]);
        const gb = tf.tensor1d([0.3]);
        o1.step(new Map([["a.weight", a1], ["b.bias", b1]]), new Map([["a.weight", ga], ["b.bias", gb]]), 0.1);
        o2.step(new Map([["b.bias", b2], ["a.weight", a2]]), new Map([["b.bias", gb], ["a.weight", ga]]), 0.1);
        // A parameter without a gradient is untouched and keeps its step count.
        o1.step(new Map([["a.weight", a1], ["b.bias", b1]]), new Map([["a.weight", ga]]), 0.1);
      });
      expect(Array.from(b1.dataSync())).toEqual(Array.from(b2.dataSync()));
      // b.bias is exempt from decay: 3 − 0.1·sign(0.3) exactly as without decay.
      expect(b1.dataSync()[0]).toBeCloseTo(2.9, 6);
      expect(o1.exportState().get("b.bias")?.step).toBe(1);
      expect(o1.exportState().get("a.weight")?.step).toBe(2);
      tf.dispose([a1, b1, a2, b2]);
    });

    test("export, import into a fresh optimizer and resume: identical to an unbroken run", () => {
      const { steps, w1, unbroken, w2, first } = stoppedAfterTwo();
      const saved = first.exportState();
      first.dispose();
      const second = new AdamW();
      second.importState(saved);
      saved.get("w")?.m.fill(123); // the import is a copy
      expect(run(second, w2, steps.slice(2))).toEqual(unbroken);
      tf.dispose([w1, w2]);
    });

    test("stateView and adoptState share the arrays (a checkpoint neither writes nor resumes through copies)", () => {
      const { steps, w1, unbroken, w2, first } = stoppedAfterTwo();
      const view = first.stateView().get("w");
      expect(view?.step).toBe(2);
      const adopted = new Map([["w", { m: Float32Array.from(view?.m ?? []), v: Float32Array.from(view?.v ?? []), step: 2 }]]);
      const second = new AdamW();
      second.adoptState(adopted);
      expect(second.stateView().get("w")?.m).toBe(adopted.get("w")?.m);
      expect(run(second, w2, steps.slice(2))).toEqual(unbroken);
      expect([...(adopted.get("w")?.m ?? [])]).toEqual([...(second.exportState().get("w")?.m ?? [])]); // updated in place
      tf.dispose([w1, w2]);
    });

    // cpu's kernel is the float64 JS loop the fallback runs: equal bits; wasm's is float32
    // SIMD in torch's operation order: within an ulp or two
    test("a backend without the update kernel gets the same result through dataSync", () => {
      const steps: Array<[number[], number]> = [[[0.5, -1, 2], 0.1], [[0.2, 0.3, -4], 0.05]];
      const w1 = variable([1, -1, 0.5]);
      const withKernel = run(new AdamW(), w1, steps);
      w1.dispose();
      tf.unregisterKernel(ADAMW_UPDATE, backend);
      const w2 = variable([1, -1, 0.5]);
      try {
        const fallback = run(new AdamW(), w2, steps);
        if (backend === "cpu") {
          expect(fallback).toEqual(withKernel);
        } else {
          expect(maxScaledError(fallback, withKernel)).toBeLessThan(2.5e-7);
        }
      } finally {
        w2.dispose();
        tf.registerKernel(adamwUpdateConfig(backend));
      }
    });

    test("tensors longer than a vector and a heap chunk: the SIMD loop, its scalar tail and chunking agree with the loop", () => {
      const n = (1 << 18) + 7; // one full chunk (2¹⁸) plus a tail of 7 (vector part 4, scalar part 3)
      const w0 = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
      const g = tf.tensor1d(Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.7)));
      const w = tf.tidy(() => tf.variable(tf.tensor1d(w0), true, `adamw-test-${serial++}`));
      const opt = new AdamW({ weightDecay: 0.1 });
      for (let t = 0; t < 3; t++) {
        tf.tidy(() => opt.step(new Map([["long", w]]), new Map([["long", g]]), 1e-2));
      }
      const got = w.dataSync();
      // the float64 definition (adamw-update.ts's loop) for the same 3 steps
      const m = new Float32Array(n);
      const v = new Float32Array(n);
      const out = Float32Array.from(w0);
      const gv = g.dataSync();
      for (let t = 1; t <= 3; t++) {
        adamwUpdateValues(out.slice(), gv, { m, v, beta1: 0.9, beta2: 0.999, eps: 1e-8, decay: 1 - 1e-2 * 0.1, stepSize: 1e-2 / (1 - 0.9 ** t), bc2Sqrt: Math.sqrt(1 - 0.999 ** t) }, out);
      }
      expect(maxScaledError(got, out)).toBeLessThan(1e-6);
      const state = opt.exportState().get("long");
      expect(maxScaledError(state?.m ?? [], m)).toBeLessThan(1e-6);
      tf.dispose([w, g]);
    });

    test("gradScale equals scaling the gradients first (torch's in-place clip)", () => {
      const steps: Array<[number[], number]> = [[[0.5, -1, 2], 0.1], [[0.2, 0.3, -4], 0.05]];
      const a = variable([1, -1, 0.5]);
      const b = variable([1, -1, 0.5]);
      const opt = new AdamW();
      const ref = new AdamW();
      for (const [g, lr] of steps) {
        tf.tidy(() => {
          opt.step(new Map([["w", a]]), new Map([["w", tf.tensor1d(g)]]), lr, { gradScale: 0.3 });
          ref.step(new Map([["w", b]]), new Map([["w", tf.mul(tf.tensor1d(g), 0.3)]]), lr);
        });
      }
      expect(maxScaledError(a.dataSync(), b.dataSync())).toBeLessThan(2.5e-7);
      expect(() => opt.step(new Map([["w", a]]), new Map(), 0.1, { gradScale: NaN })).toThrow(InputError);
      tf.dispose([a, b]);
    });

    test("a clone of a variable keeps the old weights (no in-place update while memory is shared)", () => {
      const w = variable([1, -1, 0.5]);
      const before = tf.clone(w); // shares w's memory on wasm (Identity without a copy)
      const opt = new AdamW();
      const g = tf.tensor1d([0.5, -1, 2]);
      opt.step(new Map([["w", w]]), new Map([["w", g]]), 0.1);
      expect(Array.from(before.dataSync())).toEqual([1, -1, 0.5]);
      expect(Array.from(w.dataSync())).not.toEqual([1, -1, 0.5]);
      const again = Array.from(w.dataSync());
      before.dispose(); // now only w holds its memory: the next step writes in place
      opt.step(new Map([["w", w]]), new Map([["w", g]]), 0.1);
      expect(Array.from(w.dataSync())).not.toEqual(again);
      tf.dispose([w, g]);
    });

    test("mismatches are InputErrors naming the tensor", () => {
      const w = variable([1, 2]);
      const opt = new AdamW();
      tf.tidy(() => {
        expect(() => opt.step(new Map([["w", w]]), new Map([["u", tf.tensor1d([1, 2])]]), 0.1)).toThrow(/gradient "u" has no parameter/);
        expect(() => opt.step(new Map([["w", w]]), new Map([["w", tf.tensor1d([1])]]), 0.1)).toThrow(/parameter "w".*do not fit/);
        expect(() => opt.step(new Map([["w", w]]), new Map([["w", tf.tensor1d([1, 2])]]), Number.NaN)).toThrow(InputError);
        opt.importState(new Map([["w", { m: new Float32Array(3), v: new Float32Array(3), step: 1 }]]));
        expect(() => opt.step(new Map([["w", w]]), new Map([["w", tf.tensor1d([1, 2])]]), 0.1)).toThrow(/state of "w" holds 3 values/);
      });
      expect(() => new AdamW({ beta1: 1 })).toThrow(/beta1 = 1 is outside \[0, 1\)/);
      w.dispose();
    });
  });
}
