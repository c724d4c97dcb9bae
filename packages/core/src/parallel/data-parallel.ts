/**
 * Data parallelism over worker threads, for machines where tfjs runs one thread (wasm in
 * Node): the main thread and `workers` worker threads each compute the gradients of a share
 * of the jobs (gradient-job.ts) on their own backend and model replica; the workers' sums
 * come back through SharedArrayBuffers and are added to the main thread's, which keeps the
 * one optimizer. Pair createDataParallel / disposeDataParallel.
 *
 *   main thread                        worker k
 *   gradients(jobs): post its share ─▶ jobGradients(share) → its shared gradient buffer
 *   jobGradients(own share)            reply { losses }
 *   + each worker's buffer (tf.add)
 *   → { loss, grads }   (optimizer step on the main thread's variables)
 *   setWeights(vars) ─ shared weights buffer ─▶ re-read before the next jobs
 *
 * Jobs are dealt to threads by counted tokens, largest first, in a fixed order, and the sums
 * are added in thread order, so results are deterministic; against one thread they differ
 * by float32 rounding only (the same per-job gradients summed in another order).
 * Memory: one replica (weights + activations) per worker, plus 4 bytes per parameter shared
 * for the weights and 4 per trainable parameter and worker for the gradients.
 */
import os from "node:os";
import * as tf from "@tensorflow/tfjs-core";
import type { BackendName } from "../backend.js";
import { InputError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import type { Model } from "../model/load-model.js";
import { countedTokens, jobGradients, type GradientJob } from "./gradient-job.js";
import { WorkerChannel } from "./worker-channel.js";
import { workerUrl } from "./worker-url.js";
import { gemmPoolYield } from "../kernels/gemm-pool.js";

/** One tensor's place in the shared buffers (float offsets). */
export interface LayoutEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  trainable: boolean;
}

/** workerData of data-parallel-worker.ts. */
export interface WorkerInit {
  index: number;
  backend: BackendName;
  config: ModelConfig;
  layout: LayoutEntry[];
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

export type WorkerRequest = { cmd: "weights" } | { cmd: "grads"; jobs: GradientJob[] } | { cmd: "close" };
/** The answer to { cmd: "grads" } (worker-channel.ts adds the id, and carries errors). */
export type GradsReply = { losses: number[]; names: string[]; ms: number };

export interface DataParallelOptions {
  /** the main thread's model: config, and every tensor forward() reads that is not in `vars` */
  model: Model;
  /** the trainable variables by HF name (the main thread computes with these) */
  vars: Map<string, tf.Variable>;
  /** worker threads besides the main thread (default: available cores − 1, at least 1) */
  workers?: number;
  /** the workers' backend (default "wasm") */
  backend?: "wasm" | "cpu";
}

/** Where a gradients() call spent its wall time (ms), to see imbalance and overhead. */
export interface DataParallelTimings {
  /** the main thread's own jobs */
  main: number;
  /** each worker's jobs, as the worker measured them */
  workers: number[];
  /** waiting for the workers after the main thread's jobs */
  wait: number;
  /** adding the workers' gradients in */
  sum: number;
}

export interface DataParallel {
  /** number of threads computing: the workers and the main thread */
  readonly threads: number;
  /**
   * Loss (Σ of the jobs' losses), each job's loss, and the summed gradients by name, as
   * tensors on the main thread's backend (the caller disposes them).
   */
  gradients(jobs: readonly GradientJob[]): Promise<{ loss: number; losses: number[]; grads: Map<string, tf.Tensor>; timings: DataParallelTimings }>;
  /** Send the current trainable weights to the workers (after an optimizer step, averaging, a restore). */
  setWeights(vars?: Map<string, tf.Variable>): void;
}

interface Thread {
  channel: WorkerChannel<WorkerRequest, GradsReply>;
  grads: Float32Array;
}

/** Deal jobs to `n` threads: largest first, each to the least loaded (ties: lowest index). */
export function assignJobs(jobs: readonly GradientJob[], n: number): number[][] {
  const load = new Array<number>(n).fill(0);
  const out: number[][] = Array.from({ length: n }, () => []);
  const cost = jobs.map((j) => Math.max(countedTokens(j.batch), 1) + j.batch.B * j.batch.T * 1e-3);
  const order = jobs.map((_, i) => i).sort((a, b) => (cost[b] as number) - (cost[a] as number) || a - b);
  for (const i of order) {
    let best = 0;
    for (let k = 1; k < n; k++) {
      if ((load[k] as number) < (load[best] as number)) {
        best = k;
      }
    }
    (out[best] as number[]).push(i);
    load[best] = (load[best] as number) + (cost[i] as number);
  }
  return out.map((ids) => ids.sort((a, b) => a - b));
}

interface MemoryBackend {
  typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
  refCount?: (dataId: object) => number;
}

/** A float32 tensor's values without a copy where the backend allows it (wasm: a heap view). */
function readableMemory(t: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as MemoryBackend;
  return typeof b.typedArrayFromHeap === "function" ? b.typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
}

/** The memory of a tensor nothing else shares (wasm), to add into in place; else undefined. */
function writableMemory(t: tf.Tensor): Float32Array | undefined {
  const b = tf.backend() as unknown as MemoryBackend;
  return typeof b.typedArrayFromHeap === "function" && typeof b.refCount === "function" && b.refCount(t.dataId) === 1 ? b.typedArrayFromHeap(t) : undefined;
}

function addInto(dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < dst.length; i++) {
    dst[i] = (dst[i] as number) + (src[i] as number);
  }
}

/** Cores besides the one the main thread runs on: what `workers` defaults to ("auto"). */
export function spareCores(): number {
  return Math.max(0, (os.availableParallelism?.() ?? os.cpus().length) - 1);
}

/** The worker script, from src/ (tests, after a build) and dist/ alike. */
const WORKER_URL = workerUrl("data-parallel-worker", "parallel/data-parallel-worker.js");

/**
 * Start the workers, each with a replica of `model` (weights copied through shared memory).
 */
export async function createDataParallel(opts: DataParallelOptions): Promise<DataParallel> {
  const workers = opts.workers ?? Math.max(1, spareCores());
  if (!Number.isInteger(workers) || workers < 1) {
    throw new InputError(`createDataParallel: workers = ${workers} must be a positive integer`);
  }
  const { model, vars } = opts;
  const all = new Map<string, tf.Tensor>(model.weights);
  for (const [name, v] of vars) {
    all.set(name, v);
  }
  const layout: LayoutEntry[] = [];
  let total = 0;
  for (const [name, t] of all) {
    if (t.dtype !== "float32") {
      throw new InputError(`createDataParallel: tensor ${name} is ${t.dtype}; only float32 weights are supported`);
    }
    layout.push({ name, shape: t.shape, offset: total, size: t.size, trainable: vars.has(name) });
    total += t.size;
  }
  const byName = new Map(layout.map((e) => [e.name, e]));
  const weights = new SharedArrayBuffer(total * 4);
  const weightsView = new Float32Array(weights);
  for (const e of layout) {
    weightsView.set((all.get(e.name) as tf.Tensor).dataSync() as Float32Array, e.offset);
  }
  const threads: Thread[] = [];
  const releaseGemmPool = gemmPoolYield(); // the workers use the other cores
  const closeAll = async (): Promise<void> => {
    releaseGemmPool();
    await Promise.all(
      threads.map(async (t) => {
        t.channel.post({ cmd: "close" });
        await t.channel.terminate();
      }),
    );
  };
  try {
    for (let index = 0; index < workers; index++) {
      const grads = new SharedArrayBuffer(total * 4);
      const init: WorkerInit = { index, backend: opts.backend ?? "wasm", config: model.config, layout, weights, grads };
      threads.push({ channel: new WorkerChannel(WORKER_URL, init, `data-parallel worker ${index}`), grads: new Float32Array(grads) });
    }
    for (const t of threads) {
      await t.channel.ready;
      if (t.channel.failure) {
        throw t.channel.failure;
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  const dp: DataParallel & { close: () => Promise<void> } = {
    threads: workers + 1,
    async gradients(jobs) {
      const shares = assignJobs(jobs, workers + 1); // share 0: the main thread
      const replies = threads.map((t, k) => {
        const share = shares[k + 1] as number[];
        return share.length > 0 ? t.channel.request({ cmd: "grads", jobs: share.map((i) => jobs[i] as GradientJob) }) : undefined;
      });
      // the main thread's share runs while the workers compute theirs
      const t0 = performance.now();
      const own = jobGradients(model, vars, (shares[0] as number[]).map((i) => jobs[i] as GradientJob));
      const timings: DataParallelTimings = { main: performance.now() - t0, workers: threads.map(() => 0), wait: 0, sum: 0 };
      const losses = new Array<number>(jobs.length).fill(0);
      (shares[0] as number[]).forEach((i, j) => (losses[i] = own.losses[j] as number));
      const grads = own.grads;
      try {
        for (const [k, pending] of replies.entries()) {
          if (!pending) {
            continue;
          }
          const t1 = performance.now();
          const r = await pending;
          const t2 = performance.now();
          timings.wait += t2 - t1;
          timings.workers[k] = r.ms;
          (shares[k + 1] as number[]).forEach((i, j) => (losses[i] = r.losses[j] as number));
          const view = (threads[k] as Thread).grads;
          for (const name of r.names) {
            const e = byName.get(name) as LayoutEntry;
            const theirs = view.subarray(e.offset, e.offset + e.size);
            const prev = grads.get(name);
            const mine = prev ? writableMemory(prev) : undefined;
            if (mine) {
              addInto(mine, theirs); // in place: the main thread's sum is ours alone
            } else {
              const t = tf.tensor(theirs, e.shape, "float32");
              grads.set(name, prev ? tf.add(prev, t) : t);
              if (prev) {
                tf.dispose([prev, t]);
              }
            }
          }
          timings.sum += performance.now() - t2;
        }
      } catch (err) {
        tf.dispose([...grads.values()]);
        await Promise.allSettled(replies);
        throw err;
      }
      return { loss: losses.reduce((a, l) => a + l, 0), losses, grads, timings };
    },
    setWeights(v = vars) {
      for (const e of layout) {
        const t = v.get(e.name);
        if (t) {
          weightsView.set(readableMemory(t), e.offset);
        }
      }
      for (const t of threads) {
        t.channel.post({ cmd: "weights" });
      }
    },
    close: closeAll,
  };
  return dp;
}

/** Stop the workers. */
export async function disposeDataParallel(dp: DataParallel): Promise<void> {
  await (dp as DataParallel & { close: () => Promise<void> }).close();
}
