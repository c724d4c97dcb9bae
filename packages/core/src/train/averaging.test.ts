import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { InputError } from "../errors.js";
import { averageInto, snapshotWeights } from "./averaging.js";

let serial = 0;
function variable(values: number[][]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor2d(values), true, `averaging-test-${serial++}`));
}

/** The float32 bit patterns, to compare weights bit for bit (−0 ≠ 0, NaN == NaN). */
function bits(t: tf.Tensor | Float32Array): number[] {
  const f = t instanceof Float32Array ? t : Float32Array.from(t.dataSync() as Float32Array);
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}

for (const backend of ["cpu", "wasm"] as const) {
  describe(`averageInto on ${backend}`, () => {
    expectNoLeakedTensors(backend);

    test("by hand: w ← (1 − λ)·w + λ·w0", () => {
      const w = variable([[1, 2], [3, 4]]);
      const anchor = new Map([["w", Float32Array.from([5, -2, 3, 0])]]);
      averageInto(new Map([["w", w]]), anchor, 0.25);
      // 0.75·1 + 0.25·5 = 2; 0.75·2 − 0.5 = 1; 3 stays 3; 0.75·4 = 3
      expect(w.arraySync()).toEqual([[2, 1], [3, 3]]);
      w.dispose();
    });

    test("λ = 1 is bit-identical to the anchor, λ = 0 leaves the weights as they were", () => {
      const w0 = Float32Array.from([0.1, -0, 1e-40, 3.4e38, Math.PI, -7]);
      const w = variable([[1, 2, 3], [4, 5, Number.NaN]]);
      const untouched = bits(w);
      averageInto(new Map([["w", w]]), new Map([["w", w0]]), 0);
      expect(bits(w)).toEqual(untouched);
      averageInto(new Map([["w", w]]), new Map([["w", w0]]), 1);
      expect(bits(w)).toEqual(bits(w0));
      w0[0] = 9; // the variable does not alias the anchor
      expect(w.dataSync()[0]).toBeCloseTo(0.1, 7);
      w.dispose();
    });

    test("snapshot → train → averageInto(…, 1) restores the snapshot", () => {
      const w = variable([[0.3, 0.7]]);
      const vars = new Map([["layer.weight", w]]);
      const anchor = snapshotWeights(vars);
      tf.tidy(() => w.assign(tf.tensor2d([[9, 9]]))); // training moved it
      averageInto(vars, anchor, 1);
      expect(bits(w)).toEqual(bits(Float32Array.from([0.3, 0.7])));
      tf.dispose(w);
    });

    test("a clone sharing the weights' memory keeps the old values (the mix is in place only when unshared)", () => {
      const w = variable([[1, 2], [3, 4]]);
      const old = tf.clone(w);
      averageInto(new Map([["w", w]]), new Map([["w", Float32Array.from([5, -2, 3, 0])]]), 0.25);
      expect(old.arraySync()).toEqual([[1, 2], [3, 4]]);
      expect(w.arraySync()).toEqual([[2, 1], [3, 3]]);
      old.dispose();
      averageInto(new Map([["w", w]]), new Map([["w", Float32Array.from([2, 1, 3, 3])]]), 0.5);
      expect(w.arraySync()).toEqual([[2, 1], [3, 3]]);
      w.dispose();
    });

    test("snapshotWeights into a previous snapshot reuses its arrays", () => {
      const w = tf.tensor1d([1, 2, 3]);
      const first = snapshotWeights(new Map([["w", w]]));
      const arr = first.get("w");
      const w2 = tf.tensor1d([4, 5, 6]);
      const second = snapshotWeights(new Map([["w", w2]]), first);
      expect(second.get("w")).toBe(arr);
      expect(Array.from(arr ?? [])).toEqual([4, 5, 6]);
      tf.dispose([w, w2]);
    });

    test("bad λ, missing or mis-sized anchors are InputErrors, and nothing changes", () => {
      const w = variable([[1, 2]]);
      const vars = new Map([["w", w]]);
      for (const lambda of [-0.1, 1.5, Number.NaN]) {
        expect(() => averageInto(vars, new Map([["w", Float32Array.from([0, 0])]]), lambda)).toThrow(InputError);
      }
      expect(() => averageInto(vars, new Map(), 0.5)).toThrow(/no anchor weights for "w"/);
      expect(() => averageInto(vars, new Map([["w", new Float32Array(3)]]), 0.5)).toThrow(/"w" has 2 float32 values but its anchor 3/);
      expect(Array.from(w.dataSync())).toEqual([1, 2]);
      w.dispose();
    });
  });
}
