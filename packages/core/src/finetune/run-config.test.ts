/** resolveWorkers: what `--workers` becomes for a run. */
import { expect, test } from "vitest";
import { resolveWorkers } from "./run-config.js";

test("--workers: auto is the spare cores; a benign mix or the tensorflow backend drops the workers and says why", () => {
  const ctx = { backend: "wasm", benign: false, spareCores: 3 };
  expect(resolveWorkers(0, ctx)).toEqual({ workers: 0 });
  expect(resolveWorkers(2, ctx)).toEqual({ workers: 2 });
  expect(resolveWorkers("auto", ctx)).toEqual({ workers: 3 });
  expect(resolveWorkers("auto", { ...ctx, spareCores: 0 })).toEqual({ workers: 0 });
  expect(resolveWorkers(1, { ...ctx, backend: "cpu" })).toEqual({ workers: 1 });
  expect(resolveWorkers(1, { ...ctx, benign: true })).toEqual({ workers: 0, ignored: expect.stringContaining("--benign-proportion") as string });
  expect(resolveWorkers(1, { ...ctx, backend: "tensorflow" })).toEqual({ workers: 0, ignored: expect.stringContaining("tensorflow backend") as string });
  expect(resolveWorkers(0, { ...ctx, benign: true })).toEqual({ workers: 0 }); // nothing asked, nothing to say
});
