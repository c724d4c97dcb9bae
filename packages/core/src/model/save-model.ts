/**
 * Saving a model as a Hugging Face directory that transformers (and loadModel) can load:
 * config.json, generation_config.json, safetensors weights, and the tokenizer files of the
 * source directory. Atomic: everything is written into `<dir>.tmp-<random>`, then renamed.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { CoreError, FileExistsError, RuntimeFailure } from "../errors.js";
import { writeModelWeights } from "../io/model-files.js";
import type { FloatDtype } from "../io/safetensors-dtypes.js";
import type { TensorToWrite } from "../io/safetensors-write.js";
import { silentLogger, type Logger } from "../log.js";
import { weightValues } from "../util/weight-values.js";
import { toIdList, type ModelConfig } from "./config.js";
import type { Model } from "./load-model.js";
import { getArchitecture, type Weights } from "./registry.js";

/** Tokenizer files transformers may keep next to a model; copied through when present. */
export const TOKENIZER_FILE_NAMES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "chat_template.json",
] as const;

const TORCH_DTYPE: Record<FloatDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

export interface SaveModelOptions {
  /** storage dtype of the weights (default F32); config.json's torch_dtype follows it */
  dtype?: FloatDtype;
  /** tensors to save instead of the model's own, by HF name (e.g. trained tf.Variables) */
  weights?: Weights;
  /** replace an existing directory (default: FileExistsError) */
  overwrite?: boolean;
  log?: Logger;
}

/** What writeModelDir puts in a directory. */
export interface ModelDirContents {
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
  tensors: ReadonlyMap<string, TensorToWrite>;
  /** extra files: name → JSON object (written with 2-space indent) or raw bytes */
  files?: ReadonlyMap<string, Record<string, unknown> | Uint8Array>;
  /** files copied from another directory: name → source path */
  copies?: ReadonlyMap<string, string>;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Write a model directory atomically: build it in `<dir>.tmp-<random>`, then rename it into
 * place (an existing directory is moved aside first and removed last, with `overwrite`).
 */
export async function writeModelDir(dir: string, contents: ModelDirContents, opts: { dtype?: FloatDtype; overwrite?: boolean } = {}): Promise<void> {
  const target = path.resolve(dir);
  if (!opts.overwrite && (await exists(target))) {
    throw new FileExistsError(target, { hint: "choose a new output directory, or pass overwrite (--force) to replace it" });
  }
  const suffix = randomBytes(4).toString("hex");
  const tmp = `${target}.tmp-${suffix}`;
  try {
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, "config.json"), json(contents.config));
    await writeFile(path.join(tmp, "generation_config.json"), json(contents.generationConfig));
    for (const [name, value] of contents.files ?? []) {
      await writeFile(path.join(tmp, name), value instanceof Uint8Array ? value : json(value));
    }
    for (const [name, source] of contents.copies ?? []) {
      await copyFile(source, path.join(tmp, name));
    }
    await writeModelWeights(tmp, contents.tensors, { dtype: opts.dtype ?? "F32" });
    if (await exists(target)) {
      const old = `${target}.old-${suffix}`;
      await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, target);
    }
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    if (cause instanceof CoreError) {
      throw cause;
    }
    throw new RuntimeFailure(`${target}: cannot save the model (${(cause as Error).message})`, {
      hint: "check that the parent directory is writable and the disk has room",
      cause,
    });
  }
}

/**
 * generation_config.json: the loaded one, with eos_token_id updated only if it changed; for a
 * model without one, what transformers derives from config.json (bos, eos, pad).
 */
export function generationConfigToHf(config: ModelConfig, loaded: Record<string, unknown> | null): Record<string, unknown> {
  const eos = config.eosIds.length === 1 ? config.eosIds[0] : config.eosIds;
  if (loaded) {
    const out = { ...loaded };
    if (JSON.stringify(toIdList(loaded.eos_token_id as number | number[] | null | undefined)) !== JSON.stringify(config.eosIds)) {
      out.eos_token_id = eos;
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  if (config.bosId !== null) {
    out.bos_token_id = config.bosId;
  }
  if (config.eosIds.length > 0) {
    out.eos_token_id = eos;
  }
  if (config.padId !== null) {
    out.pad_token_id = config.padId;
  }
  return out;
}

/**
 * The tensors to save, in the architecture's order (then any extra ones), each read as it is
 * written, without a copy where the backend allows it (no second copy of the model in memory).
 */
function tensorsToWrite(model: Model, override?: Weights): Map<string, TensorToWrite> {
  const names = getArchitecture(model.config.modelType)
    .expectedTensors(model.config)
    .map((e) => e.name);
  const out = new Map<string, TensorToWrite>();
  for (const name of names) {
    const t = override?.get(name) ?? model.weights.get(name);
    if (t) {
      out.set(name, { shape: t.shape, data: () => weightValues(t) });
    }
  }
  return out;
}

/**
 * Save a model as a Hugging Face directory.
 * @param model the model (config, weights and the source dir whose tokenizer files are copied)
 * @param dir output directory; must not exist unless `overwrite`
 */
export async function saveModel(model: Model, dir: string, opts: SaveModelOptions = {}): Promise<void> {
  const log = opts.log ?? silentLogger;
  const dtype = opts.dtype ?? "F32";
  const config = getArchitecture(model.config.modelType).configToHf(model.config);
  const dtypeKey = "dtype" in config && !("torch_dtype" in config) ? "dtype" : "torch_dtype";
  config[dtypeKey] = TORCH_DTYPE[dtype];
  const copies = new Map<string, string>();
  for (const name of TOKENIZER_FILE_NAMES) {
    const source = path.join(model.dir, name);
    if (await exists(source)) {
      copies.set(name, source);
    }
  }
  const tensors = tensorsToWrite(model, opts.weights);
  await writeModelDir(dir, { config, generationConfig: generationConfigToHf(model.config, model.generationConfig), tensors, copies }, { dtype, overwrite: opts.overwrite });
  log.info({ dir: path.resolve(dir), dtype, tensors: tensors.size, tokenizerFiles: [...copies.keys()] }, "model saved");
}
