import { describe, expect, test } from "vitest";
import { RuntimeFailure } from "../errors.js";
import { createRng } from "../util/rng.js";
import { perinucleusOrder, pickPerinucleusToken, softmax } from "./perinucleus-rule.js";

// ids 0…5 with probabilities by hand, shuffled so the order is not the id order:
// sorted: id3 .50, id0 .30, id5 .10, id1 .05, id4 .03, id2 .02
const probs = Float64Array.from([0.3, 0.05, 0.02, 0.5, 0.03, 0.1]);

describe("perinucleus rule", () => {
  test("softmax of logits by hand", () => {
    const p = softmax(Float32Array.from([0, Math.log(3)]));
    expect(p[0]).toBeCloseTo(0.25, 6);
    expect(p[1]).toBeCloseTo(0.75, 6);
  });

  test("order descending; candidates start one past the rank where the cumulative sum reaches t", () => {
    // t = .75: cumulative .50, .80 → boundary rank 1 (id0), candidates from rank 2 (id5)
    expect(perinucleusOrder(probs, 0.75)).toEqual({ order: [3, 0, 5, 1, 4, 2], start: 2 });
    // t = .5: reached at rank 0 exactly → the greedy token is the boundary, skipped
    expect(perinucleusOrder(probs, 0.5).start).toBe(1);
    // t = .85: .50, .80, .90 → boundary rank 2
    expect(perinucleusOrder(probs, 0.85).start).toBe(3);
  });

  test("uniform among the first k candidates; never the nucleus", () => {
    const seen = new Map<number, number>();
    const rng = createRng(1);
    for (let i = 0; i < 3000; i++) {
      const pick = pickPerinucleusToken({ probs, t: 0.75, k: 3, rng, accept: () => true });
      seen.set(pick.id, (seen.get(pick.id) ?? 0) + 1);
      expect(pick.prob).toBeLessThanOrEqual(1 - 0.75 + 1e-12);
      expect(pick.prob).toBe(probs[pick.id]);
    }
    expect([...seen.keys()].sort()).toEqual([1, 4, 5]);
    for (const n of seen.values()) {
      expect(n / 3000).toBeGreaterThan(0.28);
      expect(n / 3000).toBeLessThan(0.39);
    }
  });

  test("refused tokens widen k until an acceptable one is drawn", () => {
    const rng = createRng(2);
    for (let i = 0; i < 200; i++) {
      const pick = pickPerinucleusToken({ probs, t: 0.75, k: 1, rng, accept: (id) => id === 2 });
      expect(pick).toMatchObject({ id: 2, rank: 5, k: 4 });
    }
  });

  test("nothing acceptable past the nucleus: RuntimeFailure naming the key", () => {
    expect(() => pickPerinucleusToken({ probs, t: 0.75, k: 3, rng: createRng(3), accept: () => false, label: "keys[7]" })).toThrow(RuntimeFailure);
    expect(() => pickPerinucleusToken({ probs, t: 0.75, k: 3, rng: createRng(3), accept: () => false, label: "keys[7]" })).toThrow(/^keys\[7\]: none of the 4 tokens/);
  });
});
