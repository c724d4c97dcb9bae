import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, test } from "vitest";
import { expectNoLeakedTensors } from "../../test/support/no-leaked-tensors.js";
import { tileValues } from "./tile.js";

/** 0, 1, 2, … (bool: alternating, built directly: wasm's cast to bool keeps the raw values) */
function input(shape: number[], dtype: tf.DataType): tf.Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return dtype === "bool" ? tf.tensor(Array.from({ length: n }, (_, i) => i % 2 === 1), shape, "bool") : tf.tensor(Array.from({ length: n }, (_, i) => i), shape, dtype);
}

describe("Tile", () => {
  test("tileValues by hand: (2, 2) tiled (2, 3)", () => {
    const out = new Float32Array(24);
    tileValues(Float32Array.from([1, 2, 3, 4]), [2, 2], [2, 3], out);
    expect(Array.from(out)).toEqual([1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]);
  });

  type Nested = number | boolean | Nested[];
  /** The definition on nested arrays: every dim repeated reps[d] times, outermost first. */
  const tileNested = (x: Nested, reps: number[], d = 0): Nested => {
    const rows = d + 1 < reps.length ? (x as Nested[]).map((r) => tileNested(r, reps, d + 1)) : (x as Nested[]);
    return Array.from({ length: reps[d] as number }, () => rows).flat(1);
  };
  const cases: Array<[number[], number[], tf.DataType]> = [
    [[1, 4, 3, 8], [5, 1, 1, 1], "float32"], // a prefix cache repeated over the batch
    [[2, 3], [3, 2], "float32"],
    [[2, 1, 20], [1, 3, 2], "float32"], // long rows
    [[3], [4], "int32"],
    [[2, 2], [2, 1], "bool"],
  ];
  for (const backend of ["wasm", "cpu"] as const) {
    describe(`on ${backend}, against the definition`, () => {
      expectNoLeakedTensors(backend);
      for (const [shape, reps, dtype] of cases) {
        test(`(${shape.join(", ")}) × (${reps.join(", ")}) ${dtype}`, () => {
          tf.tidy(() => {
            const x = input(shape, dtype);
            expect(tf.tile(x, reps).arraySync()).toEqual(tileNested(x.arraySync() as Nested, reps));
          });
        });
      }
    });
  }
});
