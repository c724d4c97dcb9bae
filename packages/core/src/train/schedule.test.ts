import { describe, expect, test } from "vitest";
import { InputError } from "../errors.js";
import { lrAt, type ScheduleParams } from "./schedule.js";

describe("lrAt", () => {
  test("1) warmup: (step + 1)/(warmup + 1) of baseLr, the same for every schedule", () => {
    for (const schedule of ["constant", "linear", "cosine"] as const) {
      const p: ScheduleParams = { schedule, baseLr: 1e-3, totalSteps: 20, warmupSteps: 4 };
      expect([0, 1, 2, 3].map((s) => lrAt(s, p))).toEqual([2e-4, 4e-4, 6e-4, 8e-4].map((x) => expect.closeTo(x, 15)));
      expect(lrAt(4, p)).toBe(1e-3); // decay starts from the peak
    }
  });

  test("2) constant: baseLr after warmup, forever; minLr is ignored", () => {
    const p: ScheduleParams = { schedule: "constant", baseLr: 0.5, totalSteps: 10, warmupSteps: 0, minLr: 0.1 };
    expect([0, 5, 9, 10, 1000].map((s) => lrAt(s, p))).toEqual([0.5, 0.5, 0.5, 0.5, 0.5]);
  });

  test("3) and 4) linear: baseLr → minLr in a straight line, then minLr", () => {
    const p: ScheduleParams = { schedule: "linear", baseLr: 1, totalSteps: 10, warmupSteps: 0 };
    expect([0, 5, 9, 10, 11].map((s) => lrAt(s, p))).toEqual([1, 0.5, 0.1, 0, 0].map((x) => expect.closeTo(x, 12)));
    // With warmup 2 and minLr 0.2: step 6 is halfway through 8 decay steps → 0.2 + 0.5·0.8.
    expect(lrAt(6, { ...p, warmupSteps: 2, minLr: 0.2 })).toBeCloseTo(0.6, 12);
  });

  test("3) and 4) cosine: half a cosine from baseLr to minLr", () => {
    const p: ScheduleParams = { schedule: "cosine", baseLr: 1, totalSteps: 10, warmupSteps: 2, minLr: 0.1 };
    expect(lrAt(2, p)).toBe(1);
    expect(lrAt(4, p)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.SQRT1_2), 12); // a quarter: cos(π/4)
    expect(lrAt(6, p)).toBeCloseTo(0.55, 12); // halfway: cos(π/2) = 0
    expect(lrAt(10, p)).toBe(0.1);
    expect(lrAt(99, p)).toBe(0.1);
  });

  test("warmup over the whole run never divides by zero", () => {
    const p: ScheduleParams = { schedule: "cosine", baseLr: 1, totalSteps: 3, warmupSteps: 3 };
    expect([0, 1, 2, 3].map((s) => lrAt(s, p))).toEqual([0.25, 0.5, 0.75, 0]);
  });

  test("bad parameters are InputErrors", () => {
    const ok: ScheduleParams = { schedule: "linear", baseLr: 1, totalSteps: 10, warmupSteps: 2 };
    expect(() => lrAt(-1, ok)).toThrow(/step = -1/);
    expect(() => lrAt(1.5, ok)).toThrow(InputError);
    expect(() => lrAt(0, { ...ok, warmupSteps: 11 })).toThrow(/warmupSteps = 11/);
    expect(() => lrAt(0, { ...ok, totalSteps: 0 })).toThrow(/totalSteps = 0/);
    expect(() => lrAt(0, { ...ok, minLr: 2 })).toThrow(/minLr = 2/);
    expect(() => lrAt(0, { ...ok, baseLr: Number.NaN })).toThrow(/baseLr/);
    expect(() => lrAt(0, { ...ok, schedule: "step" as never })).toThrow(/schedule "step" is unknown/);
  });
});
