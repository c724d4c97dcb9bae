/**
 * How much memory a model needs before any weight loads, and whether it fits the backend.
 *
 * Where the bytes live in our engine (all float32):
 * - tfjs heap (the wasm backend's is capped at 4 GiB, 32-bit addresses): weights; while
 *   training also the gradients, the gradient accumulator and the activations kept for the
 *   backward pass.
 * - JS heap, outside tfjs: AdamW's two moments (train/adamw.ts keeps them in Float32Arrays),
 *   the averaging anchor w0 (train/averaging.ts) and the best weights seen.
 * Activations are an estimate (per layer: the residual stream, q/k/v/attention output, the
 * attention scores and probabilities, the MLP's three intermediate tensors; plus the logits
 * and their softmax), good to a small factor, which is what deciding "fits or not" needs.
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
  /** keep the averaging anchor w0 (training with forgetting strength > 0) */
  anchor?: boolean;
}

export interface MemoryPlan {
  parameters: number;
  mode: MemoryPlanParams["mode"];
  bytes: {
    weights: number;
    gradients: number;
    optimizer: number;
    anchor: number;
    best: number;
    activations: number;
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

/** Bytes of activations one forward (train: kept for backward) of B × T tokens holds. */
function activationBytes(c: ModelConfig, B: number, T: number, mode: MemoryPlanParams["mode"]): number {
  const tokens = B * T;
  const perLayer = tokens * (4 * c.hidden + (c.nHeads + 2 * c.nKvHeads) * c.headDim + 3 * c.intermediate) + 2 * B * c.nHeads * T * T;
  const logits = tokens * c.vocabSize * (mode === "train" ? 3 : 1);
  const layers = mode === "train" ? c.nLayers : 1; // inference frees each layer's tensors
  return 4 * (perLayer * layers + logits);
}

export function planMemory(config: ModelConfig, p: MemoryPlanParams): MemoryPlan {
  const parameters = countParameters(config);
  const w = 4 * parameters;
  const train = p.mode === "train";
  const bytes = {
    weights: w,
    gradients: train ? 2 * w : 0, // this step's gradients + the accumulator
    optimizer: train ? 2 * w : 0,
    anchor: train && p.anchor ? w : 0,
    best: train ? w : 0,
    activations: activationBytes(config, p.batchSize, p.seqLen, p.mode),
    tfjsHeap: 0,
    total: 0,
  };
  bytes.tfjsHeap = bytes.weights + bytes.gradients + bytes.activations;
  bytes.total = bytes.tfjsHeap + bytes.optimizer + bytes.anchor + bytes.best;
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
