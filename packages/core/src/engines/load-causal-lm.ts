/**
 * Open a generation model with the chosen engine: `tfjs` (ours; a local directory or a hub id,
 * safetensors weights) or `onnx` (onnxruntime through @huggingface/transformers, loaded lazily;
 * a local directory with `onnx/model*.onnx`). Pair with `lm.dispose()`.
 */
import { resolveModelDir, type ResolveModelOptions } from "../hub/index.js";
import { silentLogger, type Logger } from "../log.js";
import type { CausalLm, EngineName } from "./causal-lm.js";
import { loadTfjsCausalLm } from "./tfjs-causal-lm.js";

export interface LoadCausalLmOptions {
  /** default "tfjs"; the tfjs backend must be started (initBackend) before */
  engine?: EngineName;
  log?: Logger;
  /** hub download progress (tfjs engine, hub ids) */
  onDownload?: ResolveModelOptions["onProgress"];
  /** onnx engine: transformers.js' file cache (default: a directory under the OS temp dir) */
  onnxCacheDir?: string;
}

/**
 * Load a causal language model.
 * @param idOrPath a local model directory, or (tfjs engine) a hub id such as org/name
 * @throws ModelLoadError / HubModelError / TokenizerError naming what is missing
 */
export async function loadCausalLm(idOrPath: string, opts: LoadCausalLmOptions = {}): Promise<CausalLm> {
  const log = opts.log ?? silentLogger;
  if ((opts.engine ?? "tfjs") === "onnx") {
    const { loadOnnxCausalLm } = await import("./onnx-causal-lm.js");
    return loadOnnxCausalLm(idOrPath, { log, cacheDir: opts.onnxCacheDir });
  }
  const dir = await resolveModelDir(idOrPath, { log, onProgress: opts.onDownload });
  return loadTfjsCausalLm(dir, { log });
}
