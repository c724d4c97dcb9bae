import { describe, expect, test } from "vitest";
import { createRng } from "../util/rng.js";
import { drawIndices, nullRate, verdict } from "./verify.js";

describe("verdict", () => {
  test("10 of 10 at q = 1/3: p = 3^-10 ≈ 1.69e-5, not below α = 1e-6", () => {
    const v = verdict(10, 10, nullRate({ kind: "perinucleus", k: 3 }), 1e-6);
    expect(v.pValue).toBeCloseTo(3 ** -10, 15);
    expect(v.owned).toBe(false);
    expect(v.statement).toBe("not shown to be owned: p = 1.7e-5 > α = 1e-6");
  });

  test("10 of 10 at q = 0.014 is owned: p = 0.014^10 ≈ 2.9e-19", () => {
    const v = verdict(10, 10, nullRate({ kind: "given", q: 0.014 }), 1e-6);
    expect(v.pValue / 0.014 ** 10).toBeCloseTo(1, 10);
    expect(v.owned).toBe(true);
    expect(v.statement).toBe("owned: p = 2.9e-19 ≤ α = 1e-6");
  });

  test("measured base model: 0 hits of 100 gives q = 1 − 0.05^(1/100)", () => {
    const r = nullRate({ kind: "base-model", hits: 0, trials: 100 });
    expect(r.q).toBeCloseTo(1 - 0.05 ** 0.01, 10);
    expect(r.source).toContain("0/100");
  });

  test("a p below float range still gets a log10", () => {
    const v = verdict(400, 400, nullRate({ kind: "given", q: 0.01 }), 1e-6);
    expect(v.log10PValue).toBeCloseTo(-800, 6);
    expect(v.statement).toBe("owned: p = 1e-800 ≤ α = 1e-6");
  });

  test("bad q", () => {
    expect(() => nullRate({ kind: "given", q: 0 })).toThrow("--null-rate");
  });
});

test("drawIndices: distinct, in range, deterministic", () => {
  const a = drawIndices(50, 10, createRng(3));
  expect(new Set(a).size).toBe(10);
  expect(a.every((i) => i >= 0 && i < 50)).toBe(true);
  expect(drawIndices(50, 10, createRng(3))).toEqual(a);
  expect(drawIndices(5, 10, createRng(3)).sort()).toEqual([0, 1, 2, 3, 4]);
});
