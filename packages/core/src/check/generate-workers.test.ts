/**
 * Generation on worker threads: a worker's batch equals the main thread's, and
 * checkFingerprints deals batches only to generators that are ready, keeping results in order.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { initBackend } from "../backend.js";
import { generate } from "../model/generate.js";
import { disposeModel, loadModel, type Model } from "../model/load-model.js";
import type { FingerprintExample, TokenizerLike } from "../train/data.js";
import { checkFingerprints, type BatchGenerateFn } from "./check-fingerprints.js";
import { startGenerateWorkers } from "./generate-workers.js";

const STORIES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../../shared/models/stories260K");

describe("a generation worker on stories260K", () => {
  let model: Model;
  beforeAll(async () => {
    await initBackend("wasm");
    model = await loadModel(STORIES);
  });
  afterAll(() => disposeModel(model));

  test("answers a batch exactly as the main thread does (greedy, left-padded prompts of mixed lengths)", async () => {
    const prompts = Array.from({ length: 12 }, (_, b) => [1, ...Array.from({ length: 3 + (b % 5) }, (_, t) => 20 + ((b * 37 + t * 11) % 400))]);
    const pool = await startGenerateWorkers(1, { modelDir: STORIES, backend: "wasm", padId: 0, temperature: 0, seed: 42, batchSize: 12 });
    try {
      const gen = pool.generators[0] as BatchGenerateFn;
      await gen.ready;
      const [theirs, again] = await Promise.all([gen(prompts, 6), (pool.generators[1] as BatchGenerateFn)(prompts.slice(0, 3), 2)]);
      const ours = await generate(model, prompts, { maxNewTokens: 6, eosIds: [], padId: 0 });
      expect(theirs).toEqual(ours);
      expect(again).toEqual(ours.slice(0, 3).map((o) => o.slice(0, 2)));
    } finally {
      await pool.close();
    }
  });
});

describe("checkFingerprints' dealing", () => {
  // A tokenizer and examples where a prompt is [BOS, key id] and the right answer is key id + 1.
  const tok = { addsBos: true, bosId: 1, addsEos: false, hasChatTemplate: false } as unknown as TokenizerLike;
  const examples: FingerprintExample[] = Array.from({ length: 20 }, (_, i) => ({ index: i, key: `k${i}`, keyIds: [10 + i], response: `r${i}`, responseIds: [11 + i] }));
  const answer = (label: string, log: string[], delayMs = 0): BatchGenerateFn => async (prompts) => {
    log.push(label);
    await new Promise((r) => setTimeout(r, delayMs));
    return prompts.map((p) => [(p.at(-1) as number) + 1]);
  };

  test("a generator that never gets ready takes no batch; every row is still answered", async () => {
    const log: string[] = [];
    const never = Object.assign(answer("never", log), { ready: new Promise<void>(() => {}) });
    const [r] = await checkFingerprints({ examples, tokenizer: tok, modes: [{ kind: "template", template: "{}" }], batchSize: 4, generate: answer("main", log), moreGenerators: [never] });
    expect(log).toEqual(["main", "main", "main", "main", "main"]);
    expect(r?.matches).toBe(20);
  });

  test("a ready generator shares the batches; rows come back in the examples' order", async () => {
    const log: string[] = [];
    const [r] = await checkFingerprints({ examples, tokenizer: tok, modes: [{ kind: "template", template: "{}" }], batchSize: 4, generate: answer("main", log, 5), moreGenerators: [answer("worker", log, 5)] });
    expect(log.filter((l) => l === "worker").length).toBeGreaterThan(0);
    expect(log.filter((l) => l === "main").length).toBeGreaterThan(0);
    expect(r?.rows.map((x) => x.index)).toEqual(examples.map((e) => e.index));
    expect(r?.matches).toBe(20);
  });

  test("a generator that gets ready (a message, a macrotask) while the main thread computes synchronously still takes batches", async () => {
    // The main thread's batches resolve through microtasks only, as wasm's do; the worker's
    // readiness and answers arrive as macrotasks, as a worker's messages do.
    const log: string[] = [];
    const busyMain: BatchGenerateFn = async (prompts) => {
      log.push("main");
      const end = performance.now() + 5;
      while (performance.now() < end) {
        // computing
      }
      return prompts.map((p) => [(p.at(-1) as number) + 1]);
    };
    const ready = new Promise<void>((resolve) => setImmediate(resolve));
    const worker = Object.assign(answer("worker", log), { ready });
    const [r] = await checkFingerprints({ examples, tokenizer: tok, modes: [{ kind: "template", template: "{}" }], batchSize: 2, generate: busyMain, moreGenerators: [worker] });
    expect(log.filter((l) => l === "worker").length).toBeGreaterThan(2);
    expect(r?.matches).toBe(20);
  });
});

test("checkWorkers: a number is taken as asked; auto needs a spare core, one thread per backend and enough work", async () => {
  const { checkWorkers } = await import("./generate-workers.js");
  const os = await import("node:os");
  const spare = Math.min(1, Math.max(0, os.availableParallelism() - 1));
  const big = { batches: 8, prompts: 2048, parameters: 20e6, backend: "wasm" };
  expect(checkWorkers(2, { ...big, backend: "tensorflow" })).toBe(2);
  expect(checkWorkers("auto", big)).toBe(spare);
  expect(checkWorkers("auto", { ...big, parameters: 260_032 })).toBe(0); // stories260K, 2048 prompts: start-up and the lost GEMM pool outweigh
  expect(checkWorkers("auto", { ...big, parameters: 260_032, prompts: 4096 })).toBe(spare); // 4096: pays
  expect(checkWorkers("auto", { ...big, backend: "tensorflow" })).toBe(0);
  expect(checkWorkers("auto", { ...big, batches: 2 })).toBe(0);
  expect(checkWorkers("auto", { ...big, parameters: 7e9 })).toBe(0); // a second copy of 28 GB: no
  expect(() => checkWorkers(-1, big)).toThrow(/--workers/);
});
