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
