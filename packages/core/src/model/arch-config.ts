/**
 * config.json helpers shared by the architectures of model/*.ts: parsing with one error that
 * names the file and fields, the head layout (kv heads, head_dim, rotary dims), RoPE fields in
 * both spellings (transformers 4: `rope_theta` + `rope_scaling`; transformers 5:
 * `rope_parameters` holding rope_type, rope_theta and partial_rotary_factor), and writing a
 * ModelConfig back as config.json with every unchanged field exactly as loaded.
 */
import { z } from "zod";
import { ModelLoadError } from "../errors.js";
import { configError, normalizeRopeScaling, RopeScalingSchema, ropeScalingToHf, type LongRopeContext, type ModelConfig, type RopeScaling } from "./config.js";

/** transformers 5's `rope_parameters`: rope_scaling's fields plus rope_theta and partial_rotary_factor. */
export const RopeParametersSchema = z
  .looseObject({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    partial_rotary_factor: z.number().positive().max(1).optional(),
  })
  .nullish();

/** Parse a config.json object with an architecture's schema; zod issues → one ModelLoadError. */
export function parseHfConfig<S extends z.ZodType>(schema: S, raw: Record<string, unknown>, file: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw configError(file, parsed.error, "fix or restore the field(s) from the model's original config.json");
  }
  return parsed.data;
}

/** What resolveHeadLayout reads. */
export interface HeadFields {
  hidden: number;
  nHeads: number;
  /** num_key_value_heads after the architecture's own default */
  nKvHeads: number;
  /** head_dim if the config has one */
  headDim?: number | null;
  /** fraction of each head RoPE rotates (1 = all) */
  partialRotary: number;
}

/**
 * Check and complete the head layout: nHeads a multiple of nKvHeads, head_dim defaulting to
 * hidden / nHeads, rotary dims int(head_dim · partial_rotary_factor) (as transformers
 * computes them) even and positive.
 */
export function resolveHeadLayout(file: string, f: HeadFields): { nKvHeads: number; headDim: number; rotaryDim: number } {
  if (f.nHeads % f.nKvHeads !== 0) {
    throw new ModelLoadError(`${file}: num_attention_heads (${f.nHeads}) is not a multiple of num_key_value_heads (${f.nKvHeads})`, {
      hint: "restore num_key_value_heads from the model's original config.json",
    });
  }
  let headDim = f.headDim ?? undefined;
  if (headDim === undefined) {
    if (f.hidden % f.nHeads !== 0) {
      throw new ModelLoadError(`${file}: head_dim is missing and hidden_size (${f.hidden}) is not a multiple of num_attention_heads (${f.nHeads})`, {
        hint: "add head_dim to config.json",
      });
    }
    headDim = f.hidden / f.nHeads;
  }
  const rotaryDim = Math.floor(headDim * f.partialRotary);
  if (rotaryDim <= 0 || rotaryDim % 2 !== 0) {
    throw new ModelLoadError(`${file}: rotary dims ${rotaryDim} (head_dim ${headDim} × ${f.partialRotary}) must be even and positive`, {
      hint: "fix head_dim or the partial rotary factor in config.json",
    });
  }
  return { nKvHeads: f.nKvHeads, headDim, rotaryDim };
}

/** The RoPE fields of a config in either spelling. */
export interface RopeFields {
  rope_theta?: number | null;
  rope_scaling?: z.infer<typeof RopeScalingSchema>;
  rope_parameters?: z.infer<typeof RopeParametersSchema>;
}

/** rope_theta: the top-level field, else rope_parameters.rope_theta, else the architecture's default. */
export function ropeTheta(f: RopeFields, fallback: number): number {
  return f.rope_theta ?? f.rope_parameters?.rope_theta ?? fallback;
}

/** partial_rotary_factor: `top` (the architecture's own field), else rope_parameters', else the default. */
export function partialRotaryFactor(f: RopeFields, top: number | null | undefined, fallback: number): number {
  return top ?? f.rope_parameters?.partial_rotary_factor ?? fallback;
}

/** rope_scaling, else a non-default rope_parameters, normalised (longrope only with `longrope`). */
export function ropeScalingOf(f: RopeFields, file: string, longrope?: LongRopeContext): RopeScaling | null {
  const params = f.rope_parameters;
  let fromParams: z.infer<typeof RopeScalingSchema> = null;
  if (!f.rope_scaling && params && (params.rope_type ?? params.type ?? "default") !== "default") {
    const parsed = RopeScalingSchema.safeParse(params);
    if (!parsed.success) {
      throw configError(file, parsed.error, "fix rope_parameters from the model's original config.json");
    }
    fromParams = parsed.data;
  }
  return normalizeRopeScaling(f.rope_scaling ?? fromParams, file, longrope);
}

/** One config.json field written back from a ModelConfig field. */
export type HfField = [hfKey: string, key: keyof ModelConfig];

/**
 * ModelConfig → config.json object. Starts from `config.hf` (the file we loaded, keys in
 * their order); a field whose normalised value did not change is left exactly as loaded
 * (absent stays absent, an old spelling stays), a changed one is written in today's spelling.
 * `eos_token_id` keeps config.json's own value (generation_config.json may list more ids).
 * @param normalize the architecture's normalizeConfig, to see what the loaded file meant
 */
export function configToHfWith(
  config: ModelConfig,
  spec: { modelType: string; architecture: string; fields: HfField[]; normalize: (raw: Record<string, unknown>, file: string) => ModelConfig },
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.hf, model_type: spec.modelType };
  out.architectures ??= [spec.architecture];
  let loaded: ModelConfig | undefined;
  try {
    loaded = spec.normalize(config.hf, "config.json");
  } catch {
    loaded = undefined; // a config built from scratch: write every field
  }
  for (const [hfKey, key] of spec.fields) {
    const ours = config[key];
    if (loaded && JSON.stringify(loaded[key]) === JSON.stringify(ours)) {
      continue;
    }
    out[hfKey] = key === "ropeScaling" ? ropeScalingToHf(config.ropeScaling) : ours;
  }
  if (!("eos_token_id" in out) && config.eosIds.length > 0) {
    out.eos_token_id = config.eosIds.length === 1 ? config.eosIds[0] : config.eosIds;
  }
  return out;
}

/** [HF field, ModelConfig field] pairs every Llama-style architecture writes back. */
export const LLAMA_LIKE_HF_FIELDS: HfField[] = [
  ["vocab_size", "vocabSize"],
  ["hidden_size", "hidden"],
  ["intermediate_size", "intermediate"],
  ["num_hidden_layers", "nLayers"],
  ["num_attention_heads", "nHeads"],
  ["num_key_value_heads", "nKvHeads"],
  ["head_dim", "headDim"],
  ["hidden_act", "hiddenAct"],
  ["max_position_embeddings", "maxPositions"],
  ["rms_norm_eps", "normEps"],
  ["rope_theta", "ropeTheta"],
  ["rope_scaling", "ropeScaling"],
  ["tie_word_embeddings", "tieEmbeddings"],
  ["bos_token_id", "bosId"],
  ["pad_token_id", "padId"],
];
