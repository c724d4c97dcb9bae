/**
 * What an `oml-finetune` run needs in memory, from the options and config.json alone (no
 * weights, no tokenizer):
 * - `finetuneMemoryPlan`: the rows of a training step and the memory plan
 *   (plan/memory-plan.ts). The real run plans with it before any weight loads.
 * - `planFinetune`: `oml-finetune --dry-run`. Resolves the model (for a hub id only config.json
 *   is downloaded), reads its config.json (and `--sft-data`), plans, and says which backend the
 *   run would start and which backends the plan fits. Loads nothing else, writes nothing.
 *
 * Without the tokenizer, row lengths are upper bounds: a fingerprint row is BOS + the key
 * (`--max-key-length` tokens at most) + the response (`--max-response-length`, + EOS with
 * `--keep-eos-in-response`); an augmentation template adds at most its UTF-8 bytes (byte-level
 * BPE and byte-fallback sentencepiece give at most one token per byte), the chat template an
 * assumed CHAT_TEMPLATE_TOKENS. An SFT row is at most its record's UTF-8 bytes + special tokens,
 * cut to `--sft-max-length` and the model's context.
 */
import os from "node:os";
import path from "node:path";
import { nativeTensorflowPackage, WASM_HEAP_LIMIT_BYTES, type BackendName } from "../backend.js";
import { DEFAULT_AUGMENTATION_PROMPTS, loadAugmentationPrompts } from "../data/data-files.js";
import { BackendError, InputError } from "../errors.js";
import { resolveFirstAvailable, resolveModelDir, type ResolveModelOptions } from "../hub/index.js";
import { silentLogger, type Logger } from "../log.js";
import type { ModelConfig } from "../model/config.js";
import { loadModelConfig } from "../model/load-model.js";
import { backendForPlan, formatBytes, planMemory, type MemoryPlan } from "../plan/memory-plan.js";
import { BENIGN_PROMPT_TOKENS, BENIGN_RESPONSE_TOKENS } from "../quality/benign-rows.js";
import { readSftData, type SftRecord } from "../quality/sft-data.js";
import { formatFlagPath, formatZodError } from "../util/zod-issues.js";
import { familyHubIds, FinetuneOptionsSchema, type FinetuneOptions, type FinetuneOptionsInput } from "./finetune-options.js";
import { spareCores } from "../parallel/data-parallel.js";
import { resolveRun, resolveWorkers, type FinetuneMode, type ResolvedRun } from "./run-config.js";

/** Tokens assumed for the chat template around a key or prompt (system turn, role headers). */
export const CHAT_TEMPLATE_TOKENS = 64;
/** Tokens of a benign prompt's first word: generated_data/word_list.txt's longest word has 10 characters, + a word-start piece. */
export const BENIGN_WORD_TOKENS = 11;
/** Share of the wasm heap the tfjs heap may fill (as memory-plan.ts's fitsWasm: fragmentation; the heap never shrinks). */
export const WASM_HEAP_SHARE = 0.9;
/**
 * Share of RAM the plan's total may fill. The plan counts what a run holds; the peak RSS of real
 * runs was 44% above it on a 20M-parameter Llama and 8% above on a 134M one (wasm, 8 × 18-token
 * rows, one micro-batch a step; bench/README.md, "Memory plan"): the runtime (~90 MiB with the
 * wasm backend started), the tokenizer, the loader's arrays and the allocators' slack.
 */
export const RAM_SHARE = 0.75;

export function parseFinetuneOptions(input: FinetuneOptionsInput): FinetuneOptions {
  const parsed = FinetuneOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new InputError(formatZodError(parsed.error, formatFlagPath));
  }
  return parsed.data;
}

/** The model directory of a run: `modelPath` (a directory or hub id), else the family's first available hub id. */
export async function resolveFinetuneModel(o: FinetuneOptions, opts: ResolveModelOptions & { log: Logger }): Promise<{ dir: string; source: string }> {
  if (o.modelPath) {
    return { dir: await resolveModelDir(o.modelPath, opts), source: o.modelPath };
  }
  const r = await resolveFirstAvailable(familyHubIds(o.modelFamily, o.modelSize), opts);
  return { dir: r.dir, source: r.id };
}

/** What the plan needs of the run's data files. */
export interface FinetunePlanData {
  /** `--sft-data`'s records (SFT mode) */
  sftRecords?: readonly SftRecord[];
  /** the training augmentation templates (with --use-augmentation-prompts, without the chat template) */
  augmentationTemplates?: readonly string[];
}

/** The forwards of one training micro-batch. */
export interface FinetuneRows {
  /** task rows per micro-batch */
  batchSize: number;
  /** of which one thread computes at a time (batchSize, or its share with worker threads) */
  threadRows: number;
  /** tokens per task row, at most */
  seqLen: number;
  /** what bounds seqLen */
  seqLenFrom: string;
  /** task rows (fingerprints, or SFT records) and micro-batches an epoch */
  taskRows: number;
  microBatches: number;
  /** micro-batches summed per optimizer step (--gradient-accumulation, as the run resolves it) */
  accumulation: number;
  /** the benign rows' forward in the same step; null without a benign mix */
  benign: { batchSize: number; seqLen: number; pool: number; klTopK: number | null } | null;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

function taskRowLength(o: FinetuneOptions, run: ResolvedRun, config: ModelConfig, data: FinetunePlanData): { seqLen: number; from: string } {
  const context = config.maxPositions;
  const cap = (n: number, from: string): { seqLen: number; from: string } => (n > context ? { seqLen: context, from: `the model's context ${context}` } : { seqLen: n, from });
  if (run.mode === "sft") {
    const records = data.sftRecords ?? [];
    const longest = Math.max(0, ...records.map((r) => ("text" in r ? utf8Bytes(r.text) : utf8Bytes(r.prompt) + utf8Bytes(r.response))));
    // BOS, EOS, and a word-start piece for the prompt and for the response.
    const bound = longest + 4 + (o.useChatTemplate ? CHAT_TEMPLATE_TOKENS : 0);
    if (bound <= o.sftMaxLength) {
      return cap(bound, `the longest --sft-data record (${longest} UTF-8 bytes)${o.useChatTemplate ? " + the chat template" : ""}`);
    }
    return cap(o.sftMaxLength, `--sft-max-length ${o.sftMaxLength}`);
  }
  const response = o.maxResponseLength + (o.keepEosInResponse ? 1 : 0);
  const tail = `--max-key-length ${o.maxKeyLength} + --max-response-length ${o.maxResponseLength}${o.keepEosInResponse ? " + EOS" : ""}`;
  if (o.useChatTemplate) {
    return cap(CHAT_TEMPLATE_TOKENS + o.maxKeyLength + response, `chat template (${CHAT_TEMPLATE_TOKENS} assumed) + ${tail}`);
  }
  const templates = o.useAugmentationPrompts ? (data.augmentationTemplates ?? []) : [];
  if (templates.length > 0) {
    const extra = Math.max(...templates.map((t) => utf8Bytes(t.replace("{}", ""))));
    return cap(2 + extra + o.maxKeyLength + response, `BOS + longest augmentation template (${extra} bytes) + ${tail}`);
  }
  return cap(1 + o.maxKeyLength + response, `BOS + ${tail}`);
}

/** The micro-batch's rows: task rows, and the benign rows of the mix. */
export function finetuneRows(o: FinetuneOptions, run: ResolvedRun, config: ModelConfig, data: FinetunePlanData = {}): FinetuneRows {
  const taskRows = run.mode === "sft" ? (data.sftRecords?.length ?? 0) : o.numFingerprints;
  const { seqLen, from } = taskRowLength(o, run, config, data);
  const microBatches = Math.max(1, Math.ceil(taskRows / o.batchSize));
  let benign: FinetuneRows["benign"] = null;
  if (run.benignPerMicroBatch > 0) {
    const prompt = (o.useChatTemplate ? CHAT_TEMPLATE_TOKENS : 1) + BENIGN_WORD_TOKENS + BENIGN_PROMPT_TOKENS;
    benign = {
      batchSize: run.benignPerMicroBatch,
      seqLen: Math.min(prompt + BENIGN_RESPONSE_TOKENS, config.maxPositions),
      pool: microBatches * run.benignPerMicroBatch,
      klTopK: o.klRegularizer > 0 ? Math.min(o.klTopK, config.vocabSize) : null,
    };
  }
  const batchSize = Math.max(1, Math.min(o.batchSize, taskRows));
  const accumulation = Math.min(o.gradientAccumulation ?? (run.mode === "sft" ? 1 : microBatches), microBatches); // as run-finetune.ts
  return { batchSize, threadRows: batchSize, seqLen, seqLenFrom: from, taskRows, microBatches, accumulation, benign };
}

/**
 * The rows of a training step and its memory plan; the real run decides the backend with it
 * (workers 0: worker threads only shrink the main thread's share of a micro-batch).
 * With `workers` > 0, each thread computes ⌈B / (workers + 1)⌉ rows of a micro-batch and each
 * worker adds, outside the main thread's heap, a replica (weights and gradients in its own tfjs
 * heap, its share's activations) and a shared gradient buffer; the weights are shared once.
 */
export function finetuneMemoryPlan(
  o: FinetuneOptions,
  run: ResolvedRun,
  config: ModelConfig,
  data: FinetunePlanData = {},
  workers = 0,
): { rows: FinetuneRows; memory: MemoryPlan; workerBytes: number } {
  const all = finetuneRows(o, run, config, data);
  const rows = workers > 0 ? { ...all, threadRows: Math.ceil(all.batchSize / (workers + 1)) } : all;
  const b = rows.benign;
  // A KL target per answer position: k token ids and log-probabilities, the rest mass, the row index.
  const klTargetBytes = b && b.klTopK !== null ? b.pool * BENIGN_RESPONSE_TOKENS * (8 * b.klTopK + 8) : 0;
  const memory = planMemory(config, {
    mode: "train",
    batchSize: rows.threadRows,
    seqLen: rows.seqLen,
    accumulation: rows.accumulation,
    second: b ? { batchSize: b.batchSize, seqLen: b.seqLen } : undefined,
    klTargetBytes,
  });
  let workerBytes = 0;
  if (workers > 0) {
    const w = memory.bytes.weights;
    const replica = planMemory(config, { mode: "train", batchSize: rows.threadRows, seqLen: rows.seqLen });
    workerBytes = w + workers * (3 * w + replica.bytes.activations);
  }
  return { rows, memory, workerBytes };
}

/** The training augmentation templates when the run uses them (the plan's row length needs them). */
export async function planAugmentationTemplates(o: FinetuneOptions): Promise<string[] | undefined> {
  return o.useAugmentationPrompts && !o.useChatTemplate ? loadAugmentationPrompts(DEFAULT_AUGMENTATION_PROMPTS.train) : undefined;
}

export type PlanBackendName = "wasm" | "cpu" | "tensorflow-cpu" | "tensorflow-gpu";

/** One backend against the plan. */
export interface BackendFit {
  backend: PlanBackendName;
  /** null: depends on memory we cannot see (the GPU's) */
  fits: boolean | null;
  /** where the tfjs heap lives */
  heapIn: "wasm" | "RAM" | "GPU";
  /** usable bytes of the wasm heap (WASM_HEAP_SHARE of 4 GiB); null in RAM (counted there) or on a GPU (unknown) */
  heapLimit: number | null;
  /** bytes of RAM the run needs (the tfjs heap included unless it is on the GPU) */
  ramNeeds: number;
  /** usable RAM (RAM_SHARE of this machine's) */
  ramLimit: number;
}

export interface FinetunePlan {
  /** the model as named (path, hub id, or the family's hub id) and its resolved directory */
  model: string;
  dir: string;
  modelType: string;
  mode: FinetuneMode;
  /** forgetting strength λ (> 0: averaging toward w0, read back from the model's files) */
  lambda: number;
  parameters: number;
  rows: FinetuneRows;
  /** worker threads the run would start (--workers, as the run resolves it) */
  workers: number;
  /** `workers`: the workers' replicas, gradient buffers and the shared weights (in RAM; counted in `total`) */
  bytes: MemoryPlan["bytes"] & { workers: number };
  /** this machine's RAM */
  ramBytes: number;
  backends: BackendFit[];
  /** the backend the run would start */
  backend: {
    requested: BackendName;
    /** null: the run would stop with `error` before loading anything */
    chosen: "tensorflow" | "wasm" | "cpu" | null;
    /** the package behind it (e.g. @tensorflow/tfjs-node) */
    source: string | null;
    why: string;
    error?: string;
  };
  /** does the plan fit the chosen backend (null: depends on the GPU's memory) */
  fits: boolean | null;
  /** one line: fits or does not fit, and why */
  verdict: string;
}

export interface PlanFinetuneHooks {
  log?: Logger;
  /** RAM to plan against (default os.totalmem()) */
  ramBytes?: number;
  /** which native tensorflow package loads (default: try to import them) */
  nativeTensorflow?: () => Promise<string | undefined>;
  /** cores beside the main thread, for --workers auto (default spareCores()) */
  spareCores?: number;
}

function backendFits(memory: MemoryPlan, bytes: FinetunePlan["bytes"], ramBytes: number): BackendFit[] {
  const b = bytes;
  const ramLimit = RAM_SHARE * ramBytes;
  const inRam = b.total <= ramLimit;
  return [
    { backend: "wasm", fits: memory.fitsWasm && inRam, heapIn: "wasm", heapLimit: WASM_HEAP_SHARE * WASM_HEAP_LIMIT_BYTES, ramNeeds: b.total, ramLimit },
    { backend: "cpu", fits: inRam, heapIn: "RAM", heapLimit: null, ramNeeds: b.total, ramLimit },
    { backend: "tensorflow-cpu", fits: inRam, heapIn: "RAM", heapLimit: null, ramNeeds: b.total, ramLimit },
    { backend: "tensorflow-gpu", fits: b.total - b.tfjsHeap <= ramLimit ? null : false, heapIn: "GPU", heapLimit: null, ramNeeds: b.total - b.tfjsHeap, ramLimit },
  ];
}

/** "fits wasm: tfjs heap 7.4 MiB of 3.6 GiB, RAM 11.4 MiB of 21.1 GiB" and the like. */
function verdictOf(fit: BackendFit, heap: number, name: string): string {
  const parts = [
    fit.heapIn === "wasm" ? `tfjs heap ${formatBytes(heap)} of ${formatBytes(fit.heapLimit as number)}` : fit.heapIn === "GPU" ? `GPU memory ${formatBytes(heap)}` : "",
    `RAM ${formatBytes(fit.ramNeeds)} of ${formatBytes(fit.ramLimit)}`,
  ].filter((p) => p !== "");
  if (fit.fits === null) {
    return `fits ${name} if the GPU has ${formatBytes(heap)} free (${parts.join(", ")})`;
  }
  return `${fit.fits ? "fits" : "does not fit"} ${name}: ${parts.join(", ")}`;
}

/** The backend the run would start, as backendForPlan + initBackend decide it. */
async function chooseBackend(requested: BackendName, memory: MemoryPlan, native: () => Promise<string | undefined>): Promise<FinetunePlan["backend"]> {
  let allowWasm: boolean;
  try {
    ({ allowWasm } = backendForPlan(requested, memory));
  } catch (err) {
    if (!(err instanceof BackendError)) {
      throw err;
    }
    return { requested, chosen: null, source: null, why: "--backend wasm, and the tfjs heap does not fit wasm's 4 GiB", error: err.hint ? `${err.message} (${err.hint})` : err.message };
  }
  if (requested === "tensorflow" || requested === "auto") {
    const pkg = await native();
    if (pkg) {
      return { requested, chosen: "tensorflow", source: pkg, why: requested === "auto" ? `${pkg} loads` : "--backend tensorflow" };
    }
    if (requested === "tensorflow") {
      return {
        requested,
        chosen: null,
        source: null,
        why: "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads",
        error: "the tensorflow backend is not available (neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node loads)",
      };
    }
    return allowWasm
      ? { requested, chosen: "wasm", source: "@tensorflow/tfjs-backend-wasm", why: "no native tensorflow loads; the tfjs heap fits wasm's 4 GiB" }
      : { requested, chosen: "cpu", source: "@tensorflow/tfjs-backend-cpu", why: "no native tensorflow loads; the tfjs heap does not fit wasm's 4 GiB" };
  }
  return requested === "wasm"
    ? { requested, chosen: "wasm", source: "@tensorflow/tfjs-backend-wasm", why: "--backend wasm" }
    : { requested, chosen: "cpu", source: "@tensorflow/tfjs-backend-cpu", why: "--backend cpu" };
}

/**
 * `oml-finetune --dry-run`: the memory plan of the run these options describe, the backend it
 * would start and whether it fits. Reads config.json (and `--sft-data`, and the augmentation
 * templates when used); loads no weights and writes nothing (a hub id downloads config.json only).
 * @throws InputError for bad options or data; ModelLoadError / HubModelError when the model cannot be found
 */
export async function planFinetune(input: FinetuneOptionsInput, hooks: PlanFinetuneHooks = {}): Promise<FinetunePlan> {
  const log = hooks.log ?? silentLogger;
  const o = parseFinetuneOptions(input);
  const run = resolveRun(o);
  const data: FinetunePlanData = {
    sftRecords: run.mode === "sft" ? await readSftData(path.resolve(o.sftData as string)) : undefined,
    augmentationTemplates: await planAugmentationTemplates(o),
  };
  const model = await resolveFinetuneModel(o, { log, configOnly: true });
  const { config } = await loadModelConfig(model.dir);
  const single = finetuneMemoryPlan(o, run, config, data);
  const backend = await chooseBackend(o.backend, single.memory, hooks.nativeTensorflow ?? (() => nativeTensorflowPackage(log)));
  const { workers } = resolveWorkers(o.workers, {
    backend: backend.chosen ?? o.backend,
    benign: single.rows.benign !== null,
    spareCores: hooks.spareCores ?? spareCores(),
    parameters: single.memory.parameters,
    tokensPerMicroBatch: single.rows.batchSize * single.rows.seqLen,
  });
  const { rows, memory, workerBytes } = workers > 0 ? finetuneMemoryPlan(o, run, config, data, workers) : single;
  const bytes = { ...memory.bytes, workers: workerBytes, total: memory.bytes.total + workerBytes };
  const ramBytes = hooks.ramBytes ?? os.totalmem();
  const backends = backendFits(memory, bytes, ramBytes);
  const fitOf = (name: PlanBackendName): BackendFit => backends.find((f) => f.backend === name) as BackendFit;
  let fit: BackendFit | undefined;
  if (backend.chosen === "tensorflow") {
    fit = fitOf(backend.source === "@tensorflow/tfjs-node-gpu" ? "tensorflow-gpu" : "tensorflow-cpu");
  } else if (backend.chosen) {
    fit = fitOf(backend.chosen);
  }
  const fits = fit ? fit.fits : false;
  const verdict = fit ? verdictOf(fit, bytes.tfjsHeap, fit.backend.replace("-", " ")) : `does not fit: ${backend.error ?? backend.why}`;
  return {
    model: model.source,
    dir: model.dir,
    modelType: config.modelType,
    mode: run.mode,
    lambda: run.lambda,
    parameters: memory.parameters,
    rows,
    workers,
    bytes,
    ramBytes,
    backends,
    backend,
    fits,
    verdict,
  };
}
