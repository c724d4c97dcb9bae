/**
 * A generation worker thread (generate-workers.ts starts it): its own backend and replica of
 * the model; says { ready } once loaded, then answers { id, prompts, maxNewTokens } with
 * { id, outs } (or { id, error }), one batch at a time, in order. Terminated by its owner.
 */
import { parentPort, workerData } from "node:worker_threads";
import { initBackend } from "../backend.js";
import { generate } from "../model/generate.js";
import { loadModel } from "../model/load-model.js";
import type { GenerateReply, GenerateRequest, GenerateWorkerInit } from "./generate-workers.js";

const init = workerData as GenerateWorkerInit;
const port = parentPort;
if (!port) {
  throw new Error("generate-worker.js runs as a worker thread");
}
await initBackend(init.backend);
const model = await loadModel(init.modelDir);
// Warm up before saying ready: a fresh thread's first batches run cold code (JS not yet
// optimised, kernels compiled on first use) on a heap not yet grown, ~1.7–2× a warm batch on
// stories260K (node --no-liftoff did not shorten a cold first batch: the JS is what is cold); paid here,
// it overlaps the main thread's work instead of holding up the check's last batch. Measured on
// stories260K: warming with 32 rows left the first batch of 256 at 183 ms (warm: ~90), 64 rows
// at 103. Prompts of 24 tokens sharing 8 (the check templates' path), prefill and one decode step.
const V = model.config.vocabSize;
const warmup = Array.from({ length: Math.min(init.batchSize, 64) }, (_, b) => Array.from({ length: 24 }, (_, t) => (t < 8 ? t : 8 + ((b * 31 + t * 7) % 500)) % V));
await generate(model, warmup, { maxNewTokens: 2, eosIds: [], padId: init.padId });
port.postMessage({ ready: true } satisfies GenerateReply);
let queue: Promise<void> = Promise.resolve(); // one batch at a time, in arrival order
port.on("message", (req: GenerateRequest) => {
  queue = queue.then(async () => {
    try {
      const outs = await generate(model, req.prompts, { maxNewTokens: req.maxNewTokens, eosIds: [], padId: init.padId, temperature: init.temperature, seed: init.seed });
      port.postMessage({ id: req.id, outs } satisfies GenerateReply);
    } catch (err) {
      port.postMessage({ id: req.id, error: (err as Error).message } satisfies GenerateReply);
    }
  });
});
