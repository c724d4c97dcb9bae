/**
 * A data-parallel worker thread (data-parallel.ts starts it): its own tfjs backend and a
 * replica of the model, built from the shared weights buffer. Messages:
 *   { cmd: "weights" }              re-read the trainable weights from the shared buffer (no
 *                                   reply: messages run in order, so the next jobs see them)
 *   { id, cmd: "grads", jobs }      gradients of the jobs, summed into this worker's shared
 *                                   gradient buffer; replies { id, losses, names, ms }
 *   { cmd: "close" }                free everything and exit
 * Says { ready: true } once loaded; errors are replied as { id, error } (the thread stays
 * usable). The main thread's side is a WorkerChannel (worker-channel.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backend.js";
import type { Model } from "../model/load-model.js";
import type { GradsReply, WorkerInit, WorkerRequest } from "./data-parallel.js";
import { jobGradients } from "./gradient-job.js";

const init = workerData as WorkerInit;
const port = parentPort;
if (!port) {
  throw new Error("data-parallel-worker.js runs as a worker thread");
}

await initBackend(init.backend);
const weightsView = new Float32Array(init.weights);
const gradsView = new Float32Array(init.grads);
const vars = new Map<string, tf.Variable>();
const fixed = new Map<string, tf.Tensor>();
for (const e of init.layout) {
  const t = tf.tensor(weightsView.subarray(e.offset, e.offset + e.size), e.shape, "float32");
  if (e.trainable) {
    vars.set(e.name, tf.variable(t, true, `dp${init.index}/${e.name}`));
    t.dispose();
  } else {
    fixed.set(e.name, t);
  }
}
const model: Model = { config: init.config, weights: new Map<string, tf.Tensor>([...fixed, ...vars]), dir: "", generationConfig: null };

/** The worker's own memory of a tensor, when it can be written in place (only `t` holds it). */
function ownMemory(t: tf.Tensor): Float32Array | undefined {
  const b = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array; refCount?: (id: object) => number; readSync?: (id: object) => unknown };
  if (typeof b.refCount !== "function" || b.refCount(t.dataId) !== 1) {
    return undefined;
  }
  if (typeof b.typedArrayFromHeap === "function") {
    return b.typedArrayFromHeap(t); // wasm: a view of the heap
  }
  return undefined;
}

function readWeights(): void {
  for (const e of init.layout) {
    const v = vars.get(e.name);
    if (!v) {
      continue;
    }
    const mem = ownMemory(v);
    const src = weightsView.subarray(e.offset, e.offset + e.size);
    if (mem) {
      mem.set(src); // in place: what assign() would do, without a new tensor
    } else {
      tf.tidy(() => v.assign(tf.tensor(src, e.shape, "float32")));
    }
  }
}

let weightsError: unknown;

function handle(msg: Extract<WorkerRequest, { cmd: "grads" }>): GradsReply {
  if (weightsError !== undefined) {
    throw weightsError;
  }
  const t0 = performance.now();
  const { losses, grads } = jobGradients(model, vars, msg.jobs);
  const names: string[] = [];
  for (const e of init.layout) {
    const g = grads.get(e.name);
    if (g) {
      gradsView.set(ownMemory(g) ?? (g.dataSync() as Float32Array), e.offset); // a heap view: no intermediate copy
      names.push(e.name);
    }
  }
  tf.dispose([...grads.values()]);
  return { losses, names, ms: performance.now() - t0 };
}

port.on("message", (msg: WorkerRequest & { id?: number }) => {
  if (msg.cmd === "close") {
    tf.dispose([...vars.values(), ...fixed.values()]);
    port.close();
    return;
  }
  try {
    if (msg.cmd === "weights") {
      weightsError = undefined;
      try {
        readWeights();
      } catch (err) {
        weightsError = err; // reported with the next jobs
      }
      return;
    }
    port.postMessage({ id: msg.id, ...handle(msg) });
  } catch (err) {
    port.postMessage({ id: msg.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
});
port.postMessage({ ready: true });
