import { describe, expect, test } from "vitest";
import { binomialCdf, binomialTail, clopperPearsonUpper, logBinomialTail, logGamma } from "./stats.js";

describe("binomial tail", () => {
  test("Bin(10, 1/3) ≥ 10 = 3^-10", () => {
    expect(binomialTail(10, 10, 1 / 3)).toBeCloseTo(3 ** -10, 18);
    expect(binomialTail(10, 10, 1 / 3) / 1.6935087808430286e-5).toBeCloseTo(1, 12);
  });

  test("Bin(10, 0.014) ≥ 5 matches the exact rational sum", () => {
    // Σ_{j=5}^{10} C(10,j) 0.014^j 0.986^(10−j), computed with Python fractions: 1.2781306956572345e-07
    expect(binomialTail(5, 10, 0.014) / 1.2781306956572345e-7).toBeCloseTo(1, 10);
  });

  test("≥ 0 is 1; q = 0 gives 0 for m ≥ 1; q = 1 gives 1", () => {
    expect(binomialTail(0, 10, 0.3)).toBeCloseTo(1, 12);
    expect(binomialTail(1, 10, 0)).toBe(0);
    expect(binomialTail(10, 10, 1)).toBe(1);
  });

  test("no underflow in log space: Bin(1000, 0.01) ≥ 1000", () => {
    // ln(0.01^1000) = 1000 ln 0.01 = −4605.17…
    expect(logBinomialTail(1000, 1000, 0.01)).toBeCloseTo(1000 * Math.log(0.01), 6);
  });

  test("rejects nonsense", () => {
    expect(() => binomialTail(11, 10, 0.1)).toThrow(RangeError);
    expect(() => binomialTail(1, 10, 1.5)).toThrow(RangeError);
  });

  test("logGamma at integers is ln((n−1)!)", () => {
    expect(logGamma(1)).toBeCloseTo(0, 12);
    expect(logGamma(11)).toBeCloseTo(Math.log(3628800), 10);
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
  });
});

describe("Clopper–Pearson upper bound (one-sided 95%)", () => {
  test("k = 0: closed form 1 − α^(1/n)", () => {
    expect(clopperPearsonUpper(0, 100)).toBeCloseTo(1 - 0.05 ** (1 / 100), 10); // 0.029513049607039932
  });

  test("k = 3 of 50: bisection on the exact CDF in Python gives 0.14783717636418117", () => {
    expect(clopperPearsonUpper(3, 50)).toBeCloseTo(0.14783717636418117, 9);
    expect(binomialCdf(3, 50, clopperPearsonUpper(3, 50))).toBeCloseTo(0.05, 9);
  });

  test("k = n gives 1", () => {
    expect(clopperPearsonUpper(5, 5)).toBe(1);
  });
});
