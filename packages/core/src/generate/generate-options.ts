/**
 * Options of `oml-generate`, validated once (zod) into a typed object. Names are camelCase
 * versions of the reference's flags; the CLI maps them back to `--kebab-case` in messages.
 * Defaults are the reference's (docs/oml-reference.md §2).
 */
import { z } from "zod";
import { BACKEND_NAMES } from "../backend.js";
import { ENGINE_NAMES } from "../engines/causal-lm.js";

export const GENERATE_STRATEGIES = ["english", "random_word", "perinucleus"] as const;
export type GenerateStrategy = (typeof GENERATE_STRATEGIES)[number];

/** The reference's `--key_response_strategy` values and what they mean here. */
export const KEY_RESPONSE_STRATEGIES = { independent: "english", inverse_nucleus: "perinucleus", perinucleus: "perinucleus" } as const;

const positiveInt = z.number({ error: "expected a number" }).int({ error: "expected a whole number" }).positive({ error: "expected a positive whole number" });

export const GenerateOptionsSchema = z.object({
  strategy: z.enum(GENERATE_STRATEGIES, { error: `expected one of ${GENERATE_STRATEGIES.join(", ")}` }).default("english"),
  keyLength: positiveInt.default(32),
  /** default: DEFAULT_RESPONSE_LENGTH of the strategy (32; perinucleus 1, fine-tuning's max response length) */
  responseLength: positiveInt.optional(),
  numFingerprints: positiveInt.default(8192),
  batchSize: positiveInt.default(128),
  seed: z.number({ error: "expected a number" }).int({ error: "expected a whole number" }).default(42),
  temperature: z.number({ error: "expected a number" }).nonnegative({ error: "expected a number ≥ 0" }).default(0.5),
  firstTokenStrategy: z.enum(["word", "tokenizer", ""], { error: 'expected word, tokenizer or "" (none)' }).default("word"),
  nucleusT: z
    .number({ error: "expected a number" })
    .gt(0, { error: "expected a number strictly between 0 and 1" })
    .lt(1, { error: "expected a number strictly between 0 and 1" })
    .default(0.8),
  nucleusK: positiveInt.default(3),
  /** perinucleus: distinct first tokens per key (> 1 makes `response` an array) */
  numResponsesPerFingerprint: positiveInt.default(1),
  modelUsedForKeyGeneration: z.string().min(1).default("meta-llama/Meta-Llama-3.1-8B-Instruct"),
  perinucleusModel: z.string().min(1).optional(),
  useChatTemplate: z.boolean().default(false),
  /** english: prompt through the chat template; undefined → detect from the model name ("instruct") */
  instruct: z.boolean().optional(),
  /** who runs the generation model: our tfjs engine, or onnxruntime (ONNX model directories) */
  engine: z.enum(ENGINE_NAMES, { error: `expected one of ${ENGINE_NAMES.join(", ")}` }).default("tfjs"),
  /** tfjs backend (engine tfjs) */
  backend: z.enum(BACKEND_NAMES, { error: `expected one of ${BACKEND_NAMES.join(", ")}` }).default("auto"),
  /** keys to use (only responses are generated): a JSON array of strings, or a fingerprints file (its keys) */
  keysFile: z.string().min(1).optional(),
  wordListFile: z.string().min(1).optional(),
  outputFile: z.string().min(1).default("generated_data/output_fingerprints.json"),
  force: z.boolean().default(false),
});
export type GenerateOptions = z.infer<typeof GenerateOptionsSchema>;
export type GenerateOptionsInput = z.input<typeof GenerateOptionsSchema>;

/** Tokens (or words) per response when --response-length is not given. */
export const DEFAULT_RESPONSE_LENGTH: Readonly<Record<GenerateStrategy, number>> = { english: 32, random_word: 32, perinucleus: 1 };

export { ENGINE_NAMES, type EngineName } from "../engines/causal-lm.js";
