/** resolveWorkers: what `--workers` becomes for a run. */
import { expect, test } from "vitest";
import { MIN_TRAIN_WORKER_WORK, resolveWorkers } from "./run-config.js";

const ctx = { backend: "wasm", benign: false, spareCores: 3, parameters: 20e6, tokensPerMicroBatch: 8 * 64 };

test("--workers N: taken as asked; a benign mix or the tensorflow backend drops the workers and says why", () => {
  expect(resolveWorkers(0, ctx)).toEqual({ workers: 0 });
  expect(resolveWorkers(2, ctx)).toEqual({ workers: 2 });
  expect(resolveWorkers(1, { ...ctx, backend: "cpu" })).toEqual({ workers: 1 });
  expect(resolveWorkers(1, { ...ctx, parameters: 260_032 })).toEqual({ workers: 1 }); // asked for: no size rule
  expect(resolveWorkers(1, { ...ctx, benign: true })).toEqual({ workers: 0, ignored: expect.stringContaining("--benign-proportion") as string });
  expect(resolveWorkers(1, { ...ctx, backend: "tensorflow" })).toEqual({ workers: 0, ignored: expect.stringContaining("tensorflow backend") as string });
  expect(resolveWorkers(0, { ...ctx, benign: true })).toEqual({ workers: 0 }); // nothing asked, nothing to say
});

test("--workers auto (the default): the spare cores for work worth splitting, else 0, silently", () => {
  expect(resolveWorkers("auto", ctx)).toEqual({ workers: 3 }); // the 20M Llama at 8 × 64
  expect(resolveWorkers("auto", { ...ctx, spareCores: 0 })).toEqual({ workers: 0 });
  expect(resolveWorkers("auto", { ...ctx, parameters: 260_032, tokensPerMicroBatch: 64 * 18 })).toEqual({ workers: 0 }); // stories260K, 64 fingerprints
  expect(resolveWorkers("auto", { ...ctx, parameters: 1e6, tokensPerMicroBatch: MIN_TRAIN_WORKER_WORK / 1e6 })).toEqual({ workers: 3 }); // at the threshold
  expect(resolveWorkers("auto", { ...ctx, parameters: 7e9 })).toEqual({ workers: 0 }); // a replica of 28 GB: no
  expect(resolveWorkers("auto", { ...ctx, benign: true })).toEqual({ workers: 0 });
  expect(resolveWorkers("auto", { ...ctx, backend: "tensorflow" })).toEqual({ workers: 0 });
});
