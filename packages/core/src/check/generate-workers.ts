/**
 * Greedy (or seeded) generation on worker threads, for checks that span several batches:
 * tfjs-wasm runs one thread in Node, so a second core idles unless another thread works.
 * Each worker (generate-worker.ts) loads its own replica of the model from `modelDir` on its
 * own backend and answers one batch per message; checkFingerprints deals batches to the main
 * thread and, once they are ready, the workers (a check the main thread finishes first never
 * waits for a worker to load). A batch's result does not depend on the thread that computes it
 * (same engine, same kernels, the sampling seed restarts per batch), so a check gives the same
 * rows with or without workers. Memory: one more copy of the weights and activations per
 * worker. Pair startGenerateWorkers / close().
 */
import type { BackendName } from "../backend.js";
import { InputError } from "../errors.js";
import { spareCores } from "../parallel/data-parallel.js";
import { WorkerChannel } from "../parallel/worker-channel.js";
import { workerUrl } from "../parallel/worker-url.js";
import { gemmPoolYield } from "../kernels/gemm-pool.js";
import type { BatchGenerateFn } from "./check-fingerprints.js";

/** workerData of generate-worker.ts. */
export interface GenerateWorkerInit {
  modelDir: string;
  backend: BackendName;
  padId: number;
  temperature: number;
  seed: number;
  /** prompts per batch, for the warm-up (see generate-worker.ts) */
  batchSize: number;
}

export interface GenerateRequest {
  id: number;
  prompts: number[][];
  maxNewTokens: number;
}
export type GenerateReply = { ready: true } | { id: number; outs: number[][] } | { id: number; error: string };

export interface GenerateWorkers {
  /** One generator per worker, each taking two batches at a time (one runs, one waits). */
  generators: BatchGenerateFn[];
  close(): Promise<void>;
}

const WORKER_URL = workerUrl("generate-worker", "check/generate-worker.js");

/**
 * Below this many parameter·prompts a worker's start-up (~0.3 s to load from its bundle and
 * warm up) and the GEMM pool it turns off cost more than it saves. Measured on stories260K
 * (260k parameters): at batch 64 before the pool, 2048 prompts (5.3·10⁸) went 0.92 → 0.79 s
 * with a worker; with the pool and the default batch of 256 they go 1.0 → 1.3 s.
 */
export const MIN_WORKER_WORK = 1e9;

/**
 * How many workers a check should start: `requested` if a number; for "auto", one per spare
 * core (at most 1 today) when the backend runs one thread (wasm, cpu), the check has at least
 * three batches, parameters × prompts ≥ MIN_WORKER_WORK, and the weights take ≤ 1 GiB.
 */
export function checkWorkers(requested: number | "auto", c: { batches: number; prompts: number; parameters: number; backend: string }): number {
  if (requested !== "auto") {
    if (!Number.isInteger(requested) || requested < 0) {
      throw new InputError(`--workers must be a non-negative integer or "auto", got ${String(requested)}`);
    }
    return requested;
  }
  const spare = spareCores();
  const singleThreaded = c.backend === "wasm" || c.backend === "cpu";
  const worthIt = c.batches >= 3 && c.parameters * c.prompts >= MIN_WORKER_WORK && 4 * c.parameters <= 2 ** 30;
  return singleThreaded && worthIt ? Math.min(spare, 1) : 0;
}

export async function startGenerateWorkers(count: number, init: GenerateWorkerInit): Promise<GenerateWorkers> {
  const channels = Array.from({ length: count }, () => new WorkerChannel<Omit<GenerateRequest, "id">, { outs: number[][] }>(WORKER_URL, init satisfies GenerateWorkerInit, "generation worker"));
  const generatorOf = (c: (typeof channels)[number]): BatchGenerateFn =>
    Object.assign((prompts: number[][], maxNewTokens: number) => c.request({ prompts, maxNewTokens }).then((r) => r.outs), { ready: c.ready });
  const releaseGemmPool = count > 0 ? gemmPoolYield() : () => {}; // the workers use the other cores
  return {
    generators: channels.flatMap((c) => [generatorOf(c), generatorOf(c)]),
    async close() {
      releaseGemmPool();
      await Promise.all(channels.map((c) => c.terminate()));
    },
  };
}
