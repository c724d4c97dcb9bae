/**
 * How much memory a model needs before any weight loads, and whether it fits the backend.
 *
 * Where the bytes live in our engine while training (all float32; bench/README.md, "Memory"):
 * - tfjs heap (the wasm backend's is capped at 4 GiB, 32-bit addresses; the GPU's memory with
 *   tfjs-node-gpu): the weights (the trained variables: the loaded tensors are freed once the
 *   variables hold them), the gradients (one set with a micro-batch per optimizer step; with
 *   more, the accumulator's sums and the next micro-batch's gradients) and the activations kept
 *   for the backward pass.
 * - JS heap, outside tfjs: AdamW's two moments (train/adamw.ts keeps them in Float32Arrays)
 *   and the benign rows' KL targets.
 * - Not in memory: the averaging anchor w0 is read back from the model's safetensors files
 *   (train/anchor.ts) and the best weights seen are written to the run's .partial directory
 *   (finetune/best-weights.ts).
 * Activations are an estimate (activationBytes): for training, fitted to measured peaks of
 * Llama-shaped models within 5%; for inference, good to a small factor. Either is what deciding
 * "fits or not" needs.
 */
import { WASM_HEAP_LIMIT_BYTES, type BackendName } from "../backend.js";
import { BackendError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { getArchitecture } from "../model/registry.js";

export interface MemoryPlanParams {
  mode: "train" | "infer";
  /** rows per forward pass */
  batchSize: number;
  /** tokens per row */
  seqLen: number;
  /** micro-batches summed per optimizer step (> 1: the accumulator's sums are held beside a micro-batch's gradients); default 1 */
  accumulation?: number;
  /** a second forward in the same training step (the benign rows), whose activations are kept too */
  second?: { batchSize: number; seqLen: number };
  /** bytes kept outside tfjs for the benign rows' KL targets */
  klTargetBytes?: number;
}

export interface MemoryPlan {
  parameters: number;
  mode: MemoryPlanParams["mode"];
  bytes: {
    weights: number;
    /** a micro-batch's gradients, and with accumulation the sums beside them */
    gradients: number;
    /** AdamW's two moments */
    optimizer: number;
    activations: number;
    klTargets: number;
    /** what the tfjs backend holds (the part the wasm cap applies to) */
    tfjsHeap: number;
    total: number;
  };
  /** does tfjsHeap fit the wasm backend's 4 GiB (with 10% headroom) */
  fitsWasm: boolean;
}

export function countParameters(config: ModelConfig): number {
  return getArchitecture(config.modelType)
    .expectedTensors(config)
    .filter((t) => !t.optional || !config.tieEmbeddings)
    .reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Bytes of activations one forward of B × T tokens holds.
 * - train (kept for the backward pass, and the backward's own transients): fitted to the peak
 *   of live tfjs buffers during one forward + backward, less one set of gradients
 *   (bench/plan-activations.mjs: five Llama shapes × four batch shapes on wasm, within 5%):
 *   per layer 6 × B·T·(4h + (nH + 2·nKV)·hd + 3·I) + 7 × B·nH·T² floats (the attention
 *   scores, masked, softmaxed, and their gradients), + 3 × B·T·V (logits, their softmax and
 *   gradient), + 2 × V·h with tied embeddings (the transposed embedding and its gradient).
 * - infer: one layer's tensors at a time (each is freed after it), plus the logits.
 */
function activationBytes(c: ModelConfig, B: number, T: number, mode: MemoryPlanParams["mode"]): number {
  const tokens = B * T;
  const linear = tokens * (4 * c.hidden + (c.nHeads + 2 * c.nKvHeads) * c.headDim + 3 * c.intermediate);
  const attention = B * c.nHeads * T * T;
  if (mode === "train") {
    return 4 * ((6 * linear + 7 * attention) * c.nLayers + 3 * tokens * c.vocabSize + (c.tieEmbeddings ? 2 * c.vocabSize * c.hidden : 0));
  }
  return 4 * (linear + 2 * attention + tokens * c.vocabSize);
}

export function planMemory(config: ModelConfig, p: MemoryPlanParams): MemoryPlan {
  const parameters = countParameters(config);
  const w = 4 * parameters;
  const train = p.mode === "train";
  const bytes = {
    weights: w,
    gradients: train ? ((p.accumulation ?? 1) > 1 ? 2 * w : w) : 0,
    optimizer: train ? 2 * w : 0,
    activations: activationBytes(config, p.batchSize, p.seqLen, p.mode) + (p.second ? activationBytes(config, p.second.batchSize, p.second.seqLen, p.mode) : 0),
    klTargets: train ? (p.klTargetBytes ?? 0) : 0,
    tfjsHeap: 0,
    total: 0,
  };
  bytes.tfjsHeap = bytes.weights + bytes.gradients + bytes.activations;
  bytes.total = bytes.tfjsHeap + bytes.optimizer + bytes.klTargets;
  return { parameters, mode: p.mode, bytes, fitsWasm: bytes.tfjsHeap <= 0.9 * WASM_HEAP_LIMIT_BYTES };
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * The backend to start for a plan: `wasm` that would not fit becomes `cpu` when the user
 * left the choice to us (`auto`), and is a clear error when they asked for wasm.
 */
export function backendForPlan(requested: BackendName, plan: MemoryPlan): { backend: BackendName; allowWasm: boolean } {
  if (plan.fitsWasm) {
    return { backend: requested, allowWasm: true };
  }
  const need = formatBytes(plan.bytes.tfjsHeap);
  if (requested === "wasm") {
    throw new BackendError(`this model needs about ${need} in the tfjs heap to ${plan.mode === "train" ? "train" : "run"}, more than the wasm backend's 4 GiB`, {
      code: "OUT_OF_MEMORY",
      hint: "use --backend cpu or tensorflow (or --backend auto to fall back), or a smaller --batch-size",
    });
  }
  return { backend: requested, allowWasm: false };
}
