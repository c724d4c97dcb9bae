/**
 * What the model-driven strategies need from a language model, whatever runs it: our tfjs
 * engine (`tfjs-causal-lm.ts`) or onnxruntime through @huggingface/transformers
 * (`onnx-causal-lm.ts`). Token ids in, logits or new ids out; the tokenizer is always ours
 * (loaded from the model directory), so both engines see the same ids.
 */
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export const ENGINE_NAMES = ["tfjs", "onnx"] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** How `generate` continues prompts. */
export interface CausalLmGenerateOptions {
  /** new tokens per prompt at most */
  maxNewTokens: number;
  /** 0 → greedy; > 0 samples */
  temperature: number;
  /** keep only the k most likely tokens when sampling (0 or undefined: all) */
  topK?: number;
  /** nucleus sampling threshold when sampling (1 or undefined: off) */
  topP?: number;
  /** seed of the sampler: same seed, same ids (per engine and backend) */
  seed: number;
  /** a row stops after any of these (default: the model's eos ids) */
  eosIds?: readonly number[];
}

export interface CausalLm {
  /** which engine runs it */
  readonly engine: EngineName;
  /** absolute model directory */
  readonly dir: string;
  /** the model's tokenizer (loaded from `dir`) */
  readonly tokenizer: Tokenizer;
  /** rows of the output layer (logits per position) */
  readonly vocabSize: number;
  /** the context length (config.json max_position_embeddings) */
  readonly maxPositions: number;
  /** ids that end generation (generation_config.json, else config.json) */
  readonly eosIds: readonly number[];
  /** generation_config.json's sampling defaults (transformers' when absent: top_k 50, top_p 1) */
  readonly sampling: { topK: number; topP: number };
  /**
   * Next-token logits after each prompt (prompts may differ in length: padding never leaks in).
   * @param prompts token ids per prompt, at least one each
   * @returns one Float32Array of `vocabSize` logits per prompt
   */
  nextTokenLogits(prompts: readonly (readonly number[])[]): Promise<Float32Array[]>;
  /**
   * Continue each prompt (batched, left padding, KV cache).
   * @returns the new ids per prompt, ending with the eos id that stopped the row if one did
   */
  generate(prompts: readonly (readonly number[])[], opts: CausalLmGenerateOptions): Promise<number[][]>;
  /** Release the weights / the session. */
  dispose(): Promise<void>;
}

/** transformers' GenerationConfig defaults for top_k / top_p, overridden by generation_config.json. */
export function samplingDefaults(generationConfig: Record<string, unknown> | null): { topK: number; topP: number } {
  const k = generationConfig?.top_k;
  const p = generationConfig?.top_p;
  return {
    topK: typeof k === "number" && Number.isInteger(k) && k >= 0 ? k : 50,
    topP: typeof p === "number" && p > 0 && p <= 1 ? p : 1,
  };
}
