/**
 * `summary.json` of a run, and the measurements after training that fill it: the check of the
 * fingerprints (the reference's templates; with augmentation, also the held-out templates of
 * generated_data/augmentation_prompts_test.json) and the held-out harm measurement.
 */
import type * as tf from "@tensorflow/tfjs-core";
import { checkFingerprints, type TemplateResult } from "../check/check-fingerprints.js";
import { generate } from "../model/generate.js";
import type { Model } from "../model/load-model.js";
import { evaluateHeldout, type HeldoutMetrics } from "../quality/heldout-eval.js";
import type { FingerprintExample, PromptMode, TokenizerLike } from "../train/data.js";

export type TemplateSummary = { template: string; success_rate: number; fractional_success_rate: number; matches: number };

export interface FinetuneSummary {
  hash: string;
  mode: "fingerprint" | "sft";
  model: string;
  backend: string;
  /** worker threads that computed gradients beside the main thread (--workers; not in the hash) */
  workers: number;
  /** fingerprints trained (0 with --sft-data) */
  num_fingerprints: number;
  /** training rows: fingerprint examples, or SFT records kept */
  num_examples: number;
  epochs_run: number;
  stopped_because: string;
  best_epoch: number;
  final_loss: number;
  best_loss: number;
  /** the headline check (the plain "{}" template, or chat); null with --sft-data */
  success_rate: number | null;
  fractional_success_rate: number | null;
  templates: TemplateSummary[];
  /** with --use-augmentation-prompts: the check under the held-out templates */
  augmentation_check?: {
    templates_file: string;
    /** mean over the held-out templates */
    success_rate: number;
    min_success_rate: number;
    fractional_success_rate: number;
    templates: TemplateSummary[];
  };
  /** what training cost the model on held-out text (base = the model before this run) */
  heldout: {
    self_generated?: HeldoutMetrics & { samples: number; max_tokens: number; temperature: number };
    eval_text?: HeldoutMetrics & { file: string };
  };
  benign?: { proportion: number; kl_regularizer: number; kl_top_k: number; rows: number; per_micro_batch: number; final_benign_loss: number | null; final_kl: number | null };
  sft?: { file: string; records: number; rows: number; truncated: number; dropped: number };
  averaging_interval: "epoch" | "step";
  forgetting_regularizer_strength: number;
  wall_seconds: number;
  peak_rss_bytes: number;
}

export const summarizeTemplates = (results: TemplateResult[]): TemplateSummary[] =>
  results.map((r) => ({ template: r.template, success_rate: r.successRate, fractional_success_rate: r.fractionalSuccessRate, matches: r.matches }));

/** Check `examples` with `weights` under each mode (greedy, as oml-check does). */
export async function checkWith(model: Model, weights: Map<string, tf.Tensor>, tok: TokenizerLike, examples: readonly FingerprintExample[], modes: PromptMode[], padId: number): Promise<TemplateResult[]> {
  const view: Model = { ...model, weights };
  return checkFingerprints({
    examples,
    tokenizer: tok,
    modes,
    batchSize: 64,
    generate: (prompts, n) => generate(view, prompts, { maxNewTokens: n, eosIds: [], padId }),
  });
}

/** The augmentation_check section from a check under the held-out templates. */
export function augmentationSummary(file: string, results: TemplateResult[]): NonNullable<FinetuneSummary["augmentation_check"]> {
  const n = Math.max(results.length, 1);
  return {
    templates_file: file,
    success_rate: results.reduce((s, r) => s + r.successRate, 0) / n,
    min_success_rate: Math.min(...results.map((r) => r.successRate)),
    fractional_success_rate: results.reduce((s, r) => s + r.fractionalSuccessRate, 0) / n,
    templates: summarizeTemplates(results),
  };
}

/** The heldout section: CE before/after and KL on the self-generated samples and the user's text. */
export async function measureHeldout(
  model: Model,
  tuned: Map<string, tf.Tensor>,
  padId: number,
  self: { sequences: number[][]; samples: number; maxTokens: number } | null,
  text: { sequences: number[][]; file: string } | null,
): Promise<FinetuneSummary["heldout"]> {
  const out: FinetuneSummary["heldout"] = {};
  if (self && self.sequences.length > 0) {
    out.self_generated = { ...(await evaluateHeldout({ model, tuned, sequences: self.sequences, padId })), samples: self.samples, max_tokens: self.maxTokens, temperature: 1 };
  }
  if (text) {
    out.eval_text = { ...(await evaluateHeldout({ model, tuned, sequences: text.sequences, padId })), file: text.file };
  }
  return out;
}

/** One line for the end of a run: success, epochs and the held-out cost. */
export function summaryLine(s: FinetuneSummary): string {
  const epochs = `after ${s.epochs_run} epoch${s.epochs_run === 1 ? "" : "s"}`;
  const parts = [s.success_rate === null ? `SFT loss ${s.final_loss.toFixed(4)} ${epochs}` : `success rate ${s.success_rate.toFixed(1)}% ${epochs}`];
  if (s.augmentation_check) {
    parts.push(`${s.augmentation_check.success_rate.toFixed(1)}% under held-out system prompts (lowest ${s.augmentation_check.min_success_rate.toFixed(1)}%)`);
  }
  const h = (name: string, m: HeldoutMetrics): string =>
    `${name} CE ${m.ce_before.toFixed(4)} → ${m.ce_after.toFixed(4)} (${m.ce_relative_change >= 0 ? "+" : ""}${(100 * m.ce_relative_change).toFixed(1)}%), KL ${m.kl.toFixed(4)}`;
  if (s.heldout.self_generated) {
    parts.push(h("self-generated", s.heldout.self_generated));
  }
  if (s.heldout.eval_text) {
    parts.push(h("eval-text", s.heldout.eval_text));
  }
  return parts.join("; ");
}
