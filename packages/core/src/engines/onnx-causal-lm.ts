/**
 * A second engine for generation models too big for our wasm heap: ONNX causal LMs (e.g. an
 * `onnx-community/…` export, quantized) run by onnxruntime-node through
 * @huggingface/transformers. Only this file imports that package, and only dynamically, so the
 * other commands never load it.
 *
 * transformers.js path traps (docs/style.md §3): a path that reads like a hub id is looked up
 * under its package's `models/` directory, and its cache lives inside the package. We pass the
 * absolute directory, `local_files_only`, forbid remote models and move the cache dir.
 *
 * Token ids come from OUR tokenizer (loaded from the same directory), so both engines see the
 * same ids; transformers.js only runs the network and its sampler (seeded with its `random`).
 */
import { readdir, readFile, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { BackendError, ModelLoadError, RuntimeFailure } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { loadTokenizer } from "../tokenizer/load-tokenizer.js";
import { samplingDefaults, type CausalLm, type CausalLmGenerateOptions } from "./causal-lm.js";
import { leftPad } from "./tfjs-causal-lm.js";

type Transformers = typeof import("@huggingface/transformers");
type TfTensor = InstanceType<Transformers["Tensor"]>;

/**
 * ONNX weight files transformers.js can load for a decoder (`onnx/model{suffix}.onnx`), in our
 * order of preference: full precision first. dtype → file suffix.
 */
export const ONNX_DTYPE_FILES = [
  ["fp32", "model.onnx"],
  ["fp16", "model_fp16.onnx"],
  ["q8", "model_quantized.onnx"],
  ["int8", "model_int8.onnx"],
  ["uint8", "model_uint8.onnx"],
  ["q4", "model_q4.onnx"],
  ["q4f16", "model_q4f16.onnx"],
  ["bnb4", "model_bnb4.onnx"],
] as const;
export type OnnxDtype = (typeof ONNX_DTYPE_FILES)[number][0];

let transformersModule: Promise<Transformers> | undefined;

/**
 * Import @huggingface/transformers once (onnxruntime-node's CPU binary ships in its package).
 * @throws BackendError when the package or its native runtime cannot load
 */
export function importTransformers(): Promise<Transformers> {
  transformersModule ??= import("@huggingface/transformers").catch((cause: unknown) => {
    transformersModule = undefined;
    throw new BackendError(`the onnx engine cannot load @huggingface/transformers / onnxruntime-node: ${String((cause as Error).message ?? cause).split("\n")[0]}`, {
      hint: "reinstall the workspace (pnpm install), or use --engine tfjs",
      cause,
    });
  });
  return transformersModule;
}

/** The ONNX file of a directory to load, by the preference of ONNX_DTYPE_FILES. */
export async function pickOnnxFile(dir: string): Promise<{ dtype: OnnxDtype; file: string }> {
  const onnxDir = path.join(dir, "onnx");
  const names = new Set(await readdir(onnxDir).catch(() => [] as string[]));
  for (const [dtype, name] of ONNX_DTYPE_FILES) {
    if (names.has(name)) {
      return { dtype, file: path.join(onnxDir, name) };
    }
  }
  throw new ModelLoadError(`${dir}: no ONNX decoder found (expected onnx/model.onnx, onnx/model_quantized.onnx, onnx/model_q4.onnx, …)`, {
    hint: "use an ONNX export (e.g. an onnx-community/… repository, or optimum-cli export onnx --task text-generation-with-past), or --engine tfjs for safetensors models",
  });
}

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  const file = path.join(dir, "config.json");
  try {
    return JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelLoadError(`${file}: cannot read the model config (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, {
      hint: "pass a Hugging Face ONNX model directory (config.json, tokenizer.json, onnx/model*.onnx)",
      cause,
    });
  }
}

const int64 = (T: Transformers, rows: number[][], width: number): TfTensor =>
  new T.Tensor("int64", BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, width]);

/** Dispose every tensor of a model output object. */
function disposeOutputs(out: Record<string, unknown>): void {
  for (const v of Object.values(out)) {
    (v as { dispose?: () => void } | null)?.dispose?.();
  }
}

export interface LoadOnnxOptions {
  log?: Logger;
  /** transformers.js' file cache (default `<os tmp>/oml-ts-transformers-cache`) */
  cacheDir?: string;
}

/**
 * Load a local ONNX causal-LM directory.
 * @param dirArg the model directory (config.json, tokenizer files, onnx/model*.onnx)
 * @throws ModelLoadError when it is missing or has no ONNX decoder; BackendError when
 *   onnxruntime cannot start or rejects the graph
 */
export async function loadOnnxCausalLm(dirArg: string, opts: LoadOnnxOptions = {}): Promise<CausalLm> {
  const log = opts.log ?? silentLogger;
  const dir = path.resolve(dirArg);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ModelLoadError(`${dir}: no such model directory`, {
      hint: "--engine onnx needs a local directory (download the ONNX repository first, e.g. with huggingface-cli download)",
    });
  }
  const config = await readConfig(dir);
  const { dtype, file } = await pickOnnxFile(dir);
  const tokenizer = await loadTokenizer(dir);
  const T = await importTransformers();
  T.env.allowRemoteModels = false;
  T.env.allowLocalModels = true;
  T.env.cacheDir = opts.cacheDir ?? path.join(os.tmpdir(), "oml-ts-transformers-cache");
  let model: Awaited<ReturnType<Transformers["AutoModelForCausalLM"]["from_pretrained"]>>;
  try {
    model = await T.AutoModelForCausalLM.from_pretrained(dir, { local_files_only: true, dtype, device: "cpu" });
  } catch (cause) {
    throw new BackendError(`${file}: onnxruntime cannot load this model: ${String((cause as Error).message ?? cause).split("\n")[0]}`, {
      hint: "check that it is a causal-LM export with input_ids/attention_mask inputs and logits output (text-generation-with-past)",
      cause,
    });
  }
  log.info({ dir, file, dtype }, `onnx model: ${path.relative(dir, file)}`);

  const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined);
  const vocabSize = num(config.vocab_size) ?? tokenizer.vocabSize;
  const maxPositions = num(config.max_position_embeddings) ?? num(config.n_positions) ?? num(config.max_sequence_length) ?? 2048;
  const genConfig = await readFile(path.join(dir, "generation_config.json"), "utf8")
    .then((t) => JSON.parse(t) as Record<string, unknown>)
    .catch(() => null);
  const eosIds = [...tokenizer.eosIds];
  const padId = tokenizer.padTokenId ?? eosIds[0] ?? 0;

  const sessions = (model as unknown as { sessions?: Record<string, { inputNames?: string[] }> }).sessions ?? {};
  const wantsLogitsToKeep = Object.values(sessions).some((sess) => sess.inputNames?.includes("num_logits_to_keep") ?? false);

  const nextTokenLogits = async (prompts: readonly (readonly number[])[]): Promise<Float32Array[]> => {
    if (prompts.length === 0) {
      return [];
    }
    const { ids, mask, length } = leftPad(prompts, padId);
    const feeds: Record<string, TfTensor> = { input_ids: int64(T, ids, length), attention_mask: int64(T, mask, length) };
    if (wantsLogitsToKeep) {
      // newer exports compute only the last `num_logits_to_keep` positions (then S = 1 below)
      feeds.num_logits_to_keep = new T.Tensor("int64", BigInt64Array.of(1n), []);
    }
    const out = (await model(feeds)) as Record<string, unknown>;
    try {
      const logits = out.logits as TfTensor | undefined;
      if (!logits || logits.dims.length !== 3) {
        throw new RuntimeFailure(`${file}: the model returned no (batch, sequence, vocab) logits`);
      }
      const [, S, V] = logits.dims as [number, number, number];
      const data = logits.data as Float32Array;
      // left padding: every row's last real token is at the last position
      return prompts.map((_, b) => Float32Array.from(data.subarray((b * S + S - 1) * V, (b * S + S) * V)));
    } finally {
      disposeOutputs(out);
    }
  };

  const generate = async (prompts: readonly (readonly number[])[], o: CausalLmGenerateOptions): Promise<number[][]> => {
    if (prompts.length === 0 || o.maxNewTokens === 0) {
      return prompts.map(() => []);
    }
    const { ids, mask, length } = leftPad(prompts, padId);
    const stop = new Set(o.eosIds ?? eosIds);
    const sample = o.temperature > 0;
    T.random.seed(o.seed);
    const result = (await model.generate({
      input_ids: int64(T, ids, length),
      attention_mask: int64(T, mask, length),
      max_new_tokens: o.maxNewTokens,
      do_sample: sample,
      ...(sample ? { temperature: o.temperature, top_k: o.topK ?? 0, top_p: o.topP ?? 1 } : {}),
      eos_token_id: [...stop],
      pad_token_id: padId,
    } as Parameters<typeof model.generate>[0])) as TfTensor;
    const width = result.dims[1] as number;
    const data = result.data as BigInt64Array;
    result.dispose();
    return prompts.map((_, b) => {
      const row: number[] = [];
      for (let i = length; i < width; i++) {
        const id = Number(data[b * width + i]);
        row.push(id);
        if (stop.has(id)) {
          break;
        }
      }
      return row;
    });
  };

  return {
    engine: "onnx",
    dir,
    tokenizer,
    vocabSize,
    maxPositions,
    eosIds,
    sampling: samplingDefaults(genConfig),
    nextTokenLogits,
    generate,
    dispose: async () => {
      await model.dispose();
    },
  };
}
