/**
 * Loading a Hugging Face model directory (config.json, generation_config.json, safetensors
 * weights) into tf tensors. Pair loadModel / disposeModel.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ModelLoadError } from "../errors.js";
import { readModelWeights, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from "../io/model-files.js";
import { silentLogger, type Logger } from "../log.js";
import { toIdList, TokenIdsSchema, type ModelConfig } from "./config.js";
import { getArchitecture, type Weights } from "./registry.js";
import { buildWeights, disposeWeights, type RawTensor } from "./weights.js";

/** A loaded model: normalised config, weights by HF name, and where it came from. */
export interface Model {
  config: ModelConfig;
  weights: Weights;
  /** absolute directory it was loaded from (tokenizer files live there too) */
  dir: string;
  /** generation_config.json as read, or null when the directory has none */
  generationConfig: Record<string, unknown> | null;
}

export interface LoadModelOptions {
  /** receives progress and warnings (unexpected tensors); default silent */
  log?: Logger;
}

/** Read a JSON object file; missing → undefined when optional, else ModelLoadError. */
async function readJsonObject(file: string, optional: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    if (optional && (cause as NodeJS.ErrnoException).code === "ENOENT") {
      return undefined;
    }
    throw new ModelLoadError(`${file}: cannot read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, {
      hint: "pass a Hugging Face model directory (config.json, model.safetensors, tokenizer.json)",
      cause,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (cause) {
    throw new ModelLoadError(`${file}: not valid JSON (${(cause as Error).message})`, { hint: "restore the file from the model's source", cause });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ModelLoadError(`${file}: expected a JSON object`, { hint: "restore the file from the model's source" });
  }
  return value as Record<string, unknown>;
}

/**
 * The weight tensors of a model directory: `model.safetensors` or the shards of its index
 * (io/model-files.ts), and the file to name in shape errors.
 */
async function readWeightTensors(dir: string, log: Logger): Promise<{ tensors: Map<string, RawTensor>; file: string }> {
  const tensors = await readModelWeights(dir, { log });
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  const file = existsSync(single) ? single : path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  return { tensors, file };
}

/**
 * Parse config.json (+ generation_config.json) of a directory into a ModelConfig.
 * generation_config.json's eos_token_id (and pad_token_id) win, as in transformers' generate.
 */
export async function loadModelConfig(dir: string): Promise<{ config: ModelConfig; generationConfig: Record<string, unknown> | null }> {
  const configFile = path.join(dir, "config.json");
  const raw = (await readJsonObject(configFile, false)) as Record<string, unknown>;
  const config = getArchitecture(raw.model_type, configFile).normalizeConfig(raw, configFile);
  const genFile = path.join(dir, "generation_config.json");
  const gen = (await readJsonObject(genFile, true)) ?? null;
  if (gen) {
    const eos = TokenIdsSchema.safeParse(gen.eos_token_id);
    if (!eos.success) {
      throw new ModelLoadError(`${genFile}: eos_token_id must be a token id or a list of ids`, { hint: "fix or delete generation_config.json" });
    }
    if (eos.data !== undefined && eos.data !== null) {
      config.eosIds = toIdList(eos.data);
    }
    if (typeof gen.pad_token_id === "number" && config.padId === null) {
      config.padId = gen.pad_token_id;
    }
  }
  return { config, generationConfig: gen };
}

/**
 * Load a model directory: config, then weights with every expected tensor's shape checked.
 * @param dir model directory (resolved to an absolute path)
 */
export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<Model> {
  const log = opts.log ?? silentLogger;
  const abs = path.resolve(dir);
  const { config, generationConfig } = await loadModelConfig(abs);
  const arch = getArchitecture(config.modelType);
  const { tensors, file } = await readWeightTensors(abs, log);
  const weights = buildWeights(arch, config, tensors, file, log);
  log.debug({ dir: abs, modelType: config.modelType, tensors: weights.size }, "model loaded");
  return { config, weights, dir: abs, generationConfig };
}

/** Release a model's tensors. */
export function disposeModel(model: Model): void {
  disposeWeights(model.weights);
}
