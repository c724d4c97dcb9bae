/**
 * The two kinds of training task of `oml-finetune`, from their files to a TrainTask:
 * fingerprints (the reference's dataset, docs/oml-reference.md §3) and ordinary SFT data
 * (`--sft-data`, quality/sft-data.ts). Also the files a run keeps about its data.
 */
import { DEFAULT_AUGMENTATION_PROMPTS, loadAugmentationPrompts, loadWordList } from "../data/data-files.js";
import { InputError } from "../errors.js";
import type { Fingerprint } from "../fingerprints/schema.js";
import type { Logger } from "../log.js";
import type { Model } from "../model/load-model.js";
import { encodeSftData, type SftRecord } from "../quality/sft-data.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { buildFingerprintExamples, promptIds, type FingerprintExample, type PromptMode } from "../train/data.js";
import { createRng } from "../util/rng.js";
import type { FinetuneOptions } from "./finetune-options.js";
import { canonicalStrategy } from "./run-config.js";
import { fingerprintTask } from "./train-fingerprints.js";
import type { TrainTask } from "./train-model.js";

export interface PreparedTask {
  task: TrainTask;
  /** the fingerprints trained (fingerprint mode) */
  examples?: FingerprintExample[];
  /** what became of the SFT records (SFT mode) */
  sft?: { file: string; records: number; rows: number; truncated: number; dropped: number };
  /** files written into the run directory (mode 0600: they hold secrets), by name */
  files: [string, string][];
}

interface PrepareParams {
  o: FinetuneOptions;
  file: string;
  tok: Tokenizer;
  model: Model;
  mode: PromptMode;
  log: Logger;
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Fingerprints → examples → the fingerprint task, plus fingerprints.json and train_dataset.csv. */
export async function prepareFingerprintTask(p: PrepareParams & { fingerprints: readonly Fingerprint[]; padId: number }): Promise<PreparedTask> {
  const { o, tok, file } = p;
  const strategy = canonicalStrategy(o.fingerprintGenerationStrategy);
  const examples = buildFingerprintExamples(p.fingerprints, tok, {
    numFingerprints: o.numFingerprints,
    dataSplit: o.dataSplit,
    maxKeyLength: o.maxKeyLength,
    maxResponseLength: o.maxResponseLength,
    strategy,
    keepEos: o.keepEosInResponse,
    words: strategy === "english_random_response" ? await loadWordList() : undefined,
    rng: createRng(o.seed),
    file,
  });
  if (p.fingerprints.length > o.numFingerprints) {
    p.log.warn({ file, available: p.fingerprints.length, used: o.numFingerprints }, `using ${o.numFingerprints} of the ${p.fingerprints.length} fingerprints in the file`);
  }
  const longest = Math.max(...examples.map((ex) => promptIds(tok, ex, p.mode).length + ex.responseIds.length));
  if (longest > p.model.config.maxPositions) {
    throw new InputError(`a key + response is ${longest} tokens, more than the model's context of ${p.model.config.maxPositions}`, {
      hint: "lower --max-key-length or --max-response-length",
    });
  }
  const augmentation = o.useAugmentationPrompts ? await loadAugmentationPrompts(DEFAULT_AUGMENTATION_PROMPTS.train) : undefined;
  const trained = examples.map((ex) => ({
    key: ex.key,
    response: ex.response,
    effective_key: ex.key,
    key_ids: ex.keyIds,
    response_ids: ex.responseIds,
    source_index: ex.index,
    prompt_mode: o.useChatTemplate ? "chat" : "plain",
  }));
  return {
    task: fingerprintTask({ model: p.model, tokenizer: tok, examples, mode: p.mode, augmentationTemplates: augmentation, padId: p.padId, checkBatchSize: Math.max(o.batchSize, 64) }),
    examples,
    files: [
      ["fingerprints.json", `${JSON.stringify(trained, null, 4)}\n`],
      ["train_dataset.csv", `index,key,response\n${examples.map((ex) => [ex.index, ex.key, ex.response].map(csvCell).join(",")).join("\n")}\n`],
    ],
  };
}

/** SFT records → rows (cut to --sft-max-length and the model's context) → a task with no check. */
export function prepareSftTask(p: PrepareParams & { records: readonly SftRecord[] }): PreparedTask {
  const maxLength = Math.min(p.o.sftMaxLength, p.model.config.maxPositions);
  const { rows, truncated, dropped } = encodeSftData(p.tok, p.records, { mode: p.mode, maxLength });
  if (truncated > 0) {
    p.log.warn({ file: p.file, truncated, maxLength }, `${truncated} of ${p.records.length} SFT records are longer than ${maxLength} tokens and were cut`);
  }
  if (dropped > 0) {
    p.log.warn({ file: p.file, dropped }, `${dropped} SFT records had nothing left to learn after the cut and were dropped`);
  }
  if (rows.length === 0) {
    throw new InputError(`${p.file}: no SFT record has a token to learn within ${maxLength} tokens`, { hint: "raise --sft-max-length or shorten the prompts" });
  }
  return {
    task: { size: rows.length, row: (i) => rows[i] as (typeof rows)[number] },
    sft: { file: p.file, records: p.records.length, rows: rows.length, truncated, dropped },
    files: [],
  };
}
