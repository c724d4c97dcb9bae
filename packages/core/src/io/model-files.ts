/**
 * Model weights of a Hugging Face model directory, in the file layout transformers uses:
 * `model.safetensors`, or shards `model-00001-of-0000N.safetensors` listed in
 * `model.safetensors.index.json` (`{ "metadata": { "total_size": N }, "weight_map": { name: shard } }`).
 * Tensors are keyed by their HF names (`model.layers.0.self_attn.q_proj.weight`).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { InputError, ModelLoadError, RuntimeFailure } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { DTYPE_BYTES, type FloatDtype } from "./safetensors-dtypes.js";
import { quoteName } from "./safetensors-header.js";
import { writeSafetensors, type TensorToWrite } from "./safetensors-write.js";
import { eachSafetensorSlice, readSafetensors, type LoadedTensor, type SafetensorSlice } from "./safetensors.js";

export const SAFE_WEIGHTS_NAME = "model.safetensors";
export const SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json";

/** transformers' default `max_shard_size="5GB"`, which it reads as 5 * 10^9 bytes. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** Real index files are ~100 KB even for 100B-parameter models (huggingface.js caps config files at 10 MB). */
const MAX_INDEX_BYTES = 25_000_000;

/** Well above any real sharded model; stops a crafted index from listing millions of shards. */
const MAX_SHARD_COUNT = 10_000;

/** transformers' shard file names: `model-00001-of-00003.safetensors`. */
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/**
 * Buffers that old transformers versions saved next to the parameters and that models
 * recompute (modern transformers ignores them on load): rotary inverse frequencies and the
 * GPT-2 / GPT-NeoX causal-mask buffers `attn.bias`, `attn.masked_bias`, `attention.bias`,
 * `attention.masked_bias` (the real biases live one level down, e.g. `attention.dense.bias`).
 */
export const IGNORED_BUFFER_PATTERNS: readonly RegExp[] = [/(^|\.)rotary_emb\.inv_freq$/, /(^|\.)(attn|attention)\.(bias|masked_bias)$/];

/** True for a name matching `IGNORED_BUFFER_PATTERNS`. */
export function isIgnoredBuffer(name: string): boolean {
  return IGNORED_BUFFER_PATTERNS.some((re) => re.test(name));
}

export interface ReadModelWeightsOptions {
  /** Names to leave out (default `isIgnoredBuffer`: rotary inv_freq and attention-mask buffers). */
  ignore?: (name: string) => boolean;
  /** Receives a debug line per skipped tensor (default: silent). */
  log?: Logger;
}

export interface WriteModelWeightsOptions {
  /** Storage dtype of float tensors (default "F32"). */
  dtype?: FloatDtype;
  /** Start a new shard before a file would exceed this many tensor bytes (default 5 * 10^9, as transformers). */
  maxShardBytes?: number;
  /** Extra `__metadata__` for every file; `format: "pt"` is always set, as transformers writes it. */
  metadata?: Record<string, string>;
}

export interface WrittenModelWeights {
  /** File names written in `dir`: the shards (or `model.safetensors`), then the index if sharded. */
  files: string[];
  /** Sum of the tensors' stored bytes (the index's `metadata.total_size`). */
  totalSize: number;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Parse `model.safetensors.index.json` into tensor name -> shard file name, rejecting paths. */
async function readIndex(indexFile: string): Promise<Map<string, string>> {
  let text: string;
  try {
    const fh = await open(indexFile, "r");
    try {
      const { size } = await fh.stat();
      if (size > MAX_INDEX_BYTES) {
        throw new ModelLoadError(`${indexFile}: ${size} bytes exceeds the ${MAX_INDEX_BYTES}-byte limit for an index file`);
      }
      text = await fh.readFile("utf8");
    } finally {
      await fh.close();
    }
  } catch (cause) {
    if (cause instanceof ModelLoadError) {
      throw cause;
    }
    throw new ModelLoadError(`${indexFile}: cannot read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelLoadError(`${indexFile}: not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
  const weightMap = typeof json === "object" && json !== null ? (json as Record<string, unknown>)["weight_map"] : undefined;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelLoadError(`${indexFile}: "weight_map" must be an object { tensor name: shard file }`);
  }
  const out = new Map<string, string>();
  const shards = new Set<string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || !shard.endsWith(".safetensors") || shard !== path.basename(shard) || shard.includes("\\")) {
      throw new ModelLoadError(`${indexFile}: weight_map[${quoteName(name)}] must be a .safetensors file name in the same directory, got ${JSON.stringify(shard)}`);
    }
    shards.add(shard);
    if (shards.size > MAX_SHARD_COUNT) {
      throw new ModelLoadError(`${indexFile}: lists more than ${MAX_SHARD_COUNT} shard files`);
    }
    out.set(name, shard);
  }
  return out;
}

/**
 * Load the weights of a model directory, widened to float32: `model.safetensors` if present
 * (transformers' order), else every shard of `model.safetensors.index.json`. Buffers such as
 * `*.rotary_emb.inv_freq` are skipped (see `ignore`). Throws ModelLoadError when there are no
 * safetensors weights (saying so when only `pytorch_model.bin` exists), when a shard is missing
 * or lacks a tensor its index lists; SafetensorsFormatError for a malformed file.
 * @param dir model directory
 * @param options `ignore` (names to skip) and `log`
 */
export async function readModelWeights(dir: string, options: ReadModelWeightsOptions = {}): Promise<Map<string, LoadedTensor>> {
  const ignore = options.ignore ?? isIgnoredBuffer;
  const log = options.log ?? silentLogger;
  const keep = (name: string): boolean => {
    if (ignore(name)) {
      log.debug({ tensor: name }, "skipping buffer");
      return false;
    }
    return true;
  };
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  if (await isFile(single)) {
    return readSafetensors(single, { filter: keep });
  }
  const indexFile = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (await isFile(indexFile)) {
    const weightMap = await readIndex(indexFile);
    const out = new Map<string, LoadedTensor>();
    for (const shard of new Set(weightMap.values())) {
      const shardFile = path.join(dir, shard);
      if (!(await isFile(shardFile))) {
        throw new ModelLoadError(`${shardFile}: listed in ${SAFE_WEIGHTS_INDEX_NAME} but missing`, { hint: "download the model again" });
      }
      const tensors = await readSafetensors(shardFile, { filter: (name) => weightMap.get(name) === shard && keep(name) });
      for (const [name, t] of tensors) {
        out.set(name, t);
      }
    }
    for (const [name, shard] of weightMap) {
      if (!out.has(name) && !ignore(name)) {
        throw new ModelLoadError(`${path.join(dir, shard)}: has no tensor ${quoteName(name)}, which ${SAFE_WEIGHTS_INDEX_NAME} places there`);
      }
    }
    return out;
  }
  if ((await isFile(path.join(dir, "pytorch_model.bin"))) || (await isFile(path.join(dir, "pytorch_model.bin.index.json")))) {
    throw new ModelLoadError(`${dir}: has only pytorch_model.bin weights; convert it to safetensors`, {
      hint: `python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('${dir}').save_pretrained('${dir}', safe_serialization=True)"`,
    });
  }
  throw new ModelLoadError(`${dir}: no ${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME}`, { hint: "point at a Hugging Face model directory with safetensors weights" });
}

/** The weight files of a model directory as readModelWeights reads them (the single file, or the index's shards). */
export async function modelWeightFiles(dir: string): Promise<string[]> {
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  if (await isFile(single)) {
    return [single];
  }
  const indexFile = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (await isFile(indexFile)) {
    return [...new Set((await readIndex(indexFile)).values())].map((shard) => path.join(dir, shard));
  }
  return [];
}

/**
 * The float weights of a model directory (those `filter` keeps) in slices of at most
 * `sliceElements` values widened to float32 through one reused buffer (eachSafetensorSlice),
 * from the same files and shards as readModelWeights reads them; e.g. to stream a model's
 * weights through a computation without holding a copy of any tensor.
 */
export async function eachModelWeightSlice(dir: string, options: { filter: (name: string) => boolean; sliceElements: number }, fn: SafetensorSlice): Promise<void> {
  const keep = (name: string): boolean => !isIgnoredBuffer(name) && options.filter(name);
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  if (await isFile(single)) {
    await eachSafetensorSlice(single, { filter: keep, sliceElements: options.sliceElements }, fn);
    return;
  }
  const indexFile = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (!(await isFile(indexFile))) {
    throw new ModelLoadError(`${dir}: no ${SAFE_WEIGHTS_NAME} or ${SAFE_WEIGHTS_INDEX_NAME}`, { hint: "point at a Hugging Face model directory with safetensors weights" });
  }
  const weightMap = await readIndex(indexFile);
  for (const shard of new Set(weightMap.values())) {
    const filter = (name: string): boolean => weightMap.get(name) === shard && keep(name);
    await eachSafetensorSlice(path.join(dir, shard), { filter, sliceElements: options.sliceElements }, fn);
  }
}

/** Stored bytes of one tensor (shape validity is checked later by writeSafetensors). */
function storedBytes(t: TensorToWrite, dtype: FloatDtype): number {
  if (t.ints !== undefined && t.dtype !== undefined) {
    return t.ints.length * DTYPE_BYTES[t.dtype];
  }
  return t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
}

/**
 * Group names into shards exactly as huggingface_hub's `split_state_dict_into_shards_factory`:
 * in insertion order, a new shard starts when the next tensor would overflow the current one,
 * and a tensor larger than the limit gets a shard of its own.
 */
function planShards(sizes: [string, number][], maxShardBytes: number): string[][] {
  const shards: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  for (const [name, bytes] of sizes) {
    if (bytes > maxShardBytes) {
      shards.push([name]);
      continue;
    }
    if (currentBytes + bytes > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  if (current.length > 0) {
    shards.push(current);
  }
  return shards;
}

/** The index as transformers writes it: `json.dumps(index, indent=2, sort_keys=True) + "\n"`. */
function formatIndex(totalSize: number, weightMap: Map<string, string>): string {
  const names = [...weightMap.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = names.map((n) => `    ${JSON.stringify(n)}: ${JSON.stringify(weightMap.get(n))}`);
  return `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${lines.join(",\n")}\n  }\n}\n`;
}

async function writeTextAtomic(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx");
    try {
      await fh.writeFile(text, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (cause) {
    await unlink(tmp).catch(() => undefined);
    throw new RuntimeFailure(`${file}: cannot write (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
}

/**
 * Write model weights in transformers' layout: one `model.safetensors` when the tensors fit in
 * `maxShardBytes`, else shards `model-0000i-of-0000N.safetensors` plus
 * `model.safetensors.index.json`. Every file carries `__metadata__ {"format": "pt"}`, which
 * transformers' `from_pretrained` requires. Weight files of an earlier save that the new
 * layout does not use (old shards, a stale index or single file) are removed afterwards.
 * @param dir model directory (created if missing)
 * @param tensors HF name -> tensor; shard assignment follows insertion order
 * @param options `dtype`, `maxShardBytes`, extra `metadata`
 */
export async function writeModelWeights(
  dir: string,
  tensors: ReadonlyMap<string, TensorToWrite>,
  options: WriteModelWeightsOptions = {},
): Promise<WrittenModelWeights> {
  const dtype = options.dtype ?? "F32";
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) {
    throw new InputError(`${dir}: maxShardBytes must be a positive number of bytes, got ${maxShardBytes}`);
  }
  const metadata = { ...options.metadata, format: "pt" };
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new RuntimeFailure(`${dir}: cannot create directory (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause });
  }
  const sizes: [string, number][] = [...tensors].map(([name, t]) => [name, storedBytes(t, dtype)]);
  const totalSize = sizes.reduce((a, [, b]) => a + b, 0);
  const shards = planShards(sizes, maxShardBytes);
  const files: string[] = [];
  if (shards.length <= 1) {
    await writeSafetensors(path.join(dir, SAFE_WEIGHTS_NAME), tensors, { dtype, metadata });
    files.push(SAFE_WEIGHTS_NAME);
  } else {
    const weightMap = new Map<string, string>();
    for (const [i, names] of shards.entries()) {
      const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
      const part = new Map(names.map((n) => [n, tensors.get(n) as TensorToWrite]));
      await writeSafetensors(path.join(dir, file), part, { dtype, metadata });
      for (const n of names) {
        weightMap.set(n, file);
      }
      files.push(file);
    }
    await writeTextAtomic(path.join(dir, SAFE_WEIGHTS_INDEX_NAME), formatIndex(totalSize, weightMap));
    files.push(SAFE_WEIGHTS_INDEX_NAME);
  }
  // Drop weight files of an earlier save: a stale model.safetensors would shadow new shards.
  const written = new Set(files);
  for (const name of await readdir(dir)) {
    const isWeightFile = name === SAFE_WEIGHTS_NAME || name === SAFE_WEIGHTS_INDEX_NAME || SHARD_NAME.test(name);
    if (isWeightFile && !written.has(name)) {
      await unlink(path.join(dir, name)).catch(() => undefined);
    }
  }
  return { files, totalSize };
}
