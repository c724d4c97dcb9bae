/**
 * Model configuration: Hugging Face `config.json` fields are parsed as-is (zod, one schema per
 * architecture) and normalised ONCE into our `ModelConfig`; model code reads only `ModelConfig`.
 *
 * Llama semantics follow transformers' `LlamaConfig` (defaults, `head_dim` fallback,
 * `num_key_value_heads` fallback for old configs, `rope_scaling.type` → `rope_type`).
 */
import { z } from "zod";
import { ModelLoadError } from "../errors.js";

/** RoPE frequency scaling (transformers `modeling_rope_utils.py`). */
export type RopeScaling =
  /** positions divided by `factor` (kaiokendev) */
  | { type: "linear"; factor: number }
  /** NTK-aware base growth once the sequence is longer than `maxPositions` */
  | { type: "dynamic"; factor: number }
  /** Llama 3.1 wavelength-banded scaling */
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /**
   * LongRoPE (Phi-3 128k; HF `_compute_longrope_parameters`, old name "su"): θ_i divided by
   * shortFactor[i], or longFactor[i] once the sequence is longer than originalMaxPositions;
   * cos and sin are multiplied by attentionFactor. `type` keeps the spelling the file used.
   */
  | { type: "longrope" | "su"; shortFactor: number[]; longFactor: number[]; originalMaxPositions: number; attentionFactor: number; factor?: number };

/**
 * MLP activation, in HF spelling (`hidden_act` / `hidden_activation`): silu; gelu = exact erf
 * GELU; gelu_pytorch_tanh, gelu_new and gelu_fast = the tanh approximation (same formula).
 */
export type HiddenAct = "silu" | "gelu" | "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast";

/** Our normalised model configuration: every architecture maps its config.json onto this. */
export interface ModelConfig {
  /** HF `model_type`, the key of `model/registry.ts` */
  modelType: string;
  /** number of token ids (rows of the embedding) */
  vocabSize: number;
  /** residual stream width C */
  hidden: number;
  nLayers: number;
  /** query heads nh */
  nHeads: number;
  /** key/value heads (< nHeads for grouped-query attention) */
  nKvHeads: number;
  /** per-head width hs (not always hidden / nHeads) */
  headDim: number;
  /** how many leading dims of each head RoPE rotates (headDim × partial_rotary_factor; = headDim for llama) */
  rotaryDim: number;
  /** MLP inner width */
  intermediate: number;
  /** MLP activation (llama: silu-gated; gemma: tanh GELU-gated; gpt_neox: plain GELU) */
  hiddenAct: HiddenAct;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  normEps: number;
  /** lm_head shares the embedding matrix */
  tieEmbeddings: boolean;
  /** q/k/v/o projections carry biases */
  attentionBias: boolean;
  /** gate/up/down projections carry biases */
  mlpBias: boolean;
  maxPositions: number;
  bosId: number | null;
  /** generation stops at any of these (generation_config.json wins over config.json) */
  eosIds: number[];
  padId: number | null;
  /** the config.json object as read, so saving writes back the fields we do not model unchanged */
  hf: Record<string, unknown>;

  // Optional fields of other architectures; absent means the llama behaviour.
  /** q/k/v (but not o) projections carry biases (qwen2); absent: = attentionBias */
  qkvBias?: boolean;
  /** gpt_neox `use_parallel_residual`: x + attn(ln1(x)) + mlp(ln2(x)) instead of two residual steps */
  parallelResidual?: boolean;
  /**
   * Attention window of each layer (length nLayers): query at absolute index q sees keys
   * k > q − W (W keys, itself included; transformers' `sliding_window_overlay`), null = full
   * causal. Derived from mistral/qwen2/phi3 `sliding_window` or gemma2's alternating layers;
   * absent: every layer full.
   */
  layerWindows?: (number | null)[];
  /** gemma2 `attn_logit_softcapping`: scores → cap·tanh(scores / cap) before the mask; null = none */
  attnSoftcap?: number | null;
  /** gemma2 `final_logit_softcapping`: logits → cap·tanh(logits / cap); null = none */
  finalSoftcap?: number | null;
  /** gemma2 `query_pre_attn_scalar`: scores scaled by its −½ power instead of headDim^−½ */
  queryPreAttnScalar?: number;
}

// ---------------------------------------------------------------------------------------------
// zod helpers shared by every architecture

export const posInt = z.number().int().positive();
export const tokenId = z.number().int().nonnegative();
/** HF writes eos_token_id as an int or a list of ints. */
export const TokenIdsSchema = z.union([tokenId, z.array(tokenId)]).nullish();

/** Turn zod issues into one ModelLoadError naming the file and every bad field. */
export function configError(file: string, error: z.ZodError, fix: string): ModelLoadError {
  const fields = error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`);
  return new ModelLoadError(`${file}: invalid config (${fields.join("; ")})`, { hint: fix });
}

/** Normalise `eos_token_id` (int, list or null) to a list. */
export function toIdList(v: number | number[] | null | undefined): number[] {
  if (v === null || v === undefined) {
    return [];
  }
  return Array.isArray(v) ? [...v] : [v];
}

// ---------------------------------------------------------------------------------------------
// rope_scaling (shared by llama, mistral, qwen2, …)

export const RopeScalingSchema = z
  .looseObject({
    rope_type: z.string().optional(),
    /** BC: old configs call rope_type `type` */
    type: z.string().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().optional(),
    high_freq_factor: z.number().optional(),
    original_max_position_embeddings: posInt.optional(),
    /** longrope: per-frequency divisors up to / past the original length */
    short_factor: z.array(z.number().positive()).optional(),
    long_factor: z.array(z.number().positive()).optional(),
    /** longrope: cos/sin multiplier (default from the length ratio) */
    attention_factor: z.number().positive().optional(),
  })
  .nullish();

/** What LongRoPE needs besides rope_scaling itself (the model's lengths and rotary width). */
export interface LongRopeContext {
  /** max_position_embeddings */
  maxPositions: number;
  /** top-level original_max_position_embeddings (Phi-3), if any */
  originalMaxPositions?: number | null;
  /** rotary dims rd: short_factor and long_factor hold rd/2 values each */
  rotaryDim: number;
}

const SUPPORTED_ROPE_TYPES = ["default", "linear", "dynamic", "llama3"];

/**
 * `rope_scaling` → RopeScaling | null; an unknown or incomplete one is a ModelLoadError.
 * @param longrope pass it to accept rope_type "longrope" / "su" (architectures whose
 *   transformers class supports it, e.g. phi3)
 */
export function normalizeRopeScaling(raw: z.infer<typeof RopeScalingSchema>, file: string, longrope?: LongRopeContext): RopeScaling | null {
  if (!raw) {
    return null;
  }
  const ropeType = raw.rope_type ?? raw.type ?? "default";
  if (longrope && (ropeType === "longrope" || ropeType === "su")) {
    return normalizeLongRope(raw, ropeType, file, longrope);
  }
  const need = (field: "factor" | "low_freq_factor" | "high_freq_factor" | "original_max_position_embeddings"): number => {
    const v = raw[field];
    if (v === undefined) {
      throw new ModelLoadError(`${file}: rope_scaling.${field} is missing (required for rope_type "${ropeType}")`, {
        hint: `add "${field}" to rope_scaling, as the model's original config.json has it`,
      });
    }
    return v;
  };
  switch (ropeType) {
    case "default":
      return null;
    case "linear":
      return { type: "linear", factor: need("factor") };
    case "dynamic":
      return { type: "dynamic", factor: need("factor") };
    case "llama3": {
      const lowFreqFactor = need("low_freq_factor");
      const highFreqFactor = need("high_freq_factor");
      if (!(highFreqFactor > lowFreqFactor)) {
        throw new ModelLoadError(`${file}: rope_scaling.high_freq_factor (${highFreqFactor}) must be greater than low_freq_factor (${lowFreqFactor})`, {
          hint: "fix rope_scaling in config.json (Llama 3.1 uses low 1.0, high 4.0)",
        });
      }
      return { type: "llama3", factor: need("factor"), lowFreqFactor, highFreqFactor, originalMaxPositions: need("original_max_position_embeddings") };
    }
    default: {
      const supported = longrope ? [...SUPPORTED_ROPE_TYPES, "longrope", "su"] : SUPPORTED_ROPE_TYPES;
      throw new ModelLoadError(`${file}: rope_scaling.rope_type "${ropeType}" is not supported (supported: ${supported.join(", ")})`, {
        hint: "use a model whose rope_scaling is one of the supported types",
      });
    }
  }
}

/**
 * LongRoPE as transformers 4.4x `_compute_longrope_parameters` reads it: the original length is
 * the top-level original_max_position_embeddings (else rope_scaling's, as transformers 5
 * stores it, else max_position_embeddings); then factor = max / original (else
 * rope_scaling.factor) and attention_factor defaults to √(1 + ln factor / ln original), 1 when
 * factor ≤ 1.
 */
function normalizeLongRope(raw: NonNullable<z.infer<typeof RopeScalingSchema>>, ropeType: "longrope" | "su", file: string, ctx: LongRopeContext): RopeScaling {
  const half = ctx.rotaryDim / 2;
  const factors = (field: "short_factor" | "long_factor"): number[] => {
    const v = raw[field];
    if (v === undefined || v.length !== half) {
      throw new ModelLoadError(
        `${file}: rope_scaling.${field} ${v === undefined ? "is missing" : `has ${v.length} values`}; rope_type "${ropeType}" needs ${half} (rotary dims / 2)`,
        { hint: "restore rope_scaling from the model's original config.json" },
      );
    }
    return [...v];
  };
  const shortFactor = factors("short_factor");
  const longFactor = factors("long_factor");
  const topLevel = ctx.originalMaxPositions ?? undefined;
  const originalMaxPositions = topLevel ?? raw.original_max_position_embeddings ?? ctx.maxPositions;
  const factor = topLevel !== undefined ? ctx.maxPositions / topLevel : raw.factor;
  const attentionFactor = raw.attention_factor ?? (factor === undefined || factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions)));
  return { type: ropeType, shortFactor, longFactor, originalMaxPositions, attentionFactor, ...(raw.factor !== undefined ? { factor: raw.factor } : {}) };
}

/** RopeScaling → HF `rope_scaling` object (rope_type spelling, as transformers writes it today). */
export function ropeScalingToHf(s: RopeScaling | null): Record<string, unknown> | null {
  if (!s) {
    return null;
  }
  if (s.type === "longrope" || s.type === "su") {
    return { long_factor: s.longFactor, short_factor: s.shortFactor, type: s.type, ...(s.factor !== undefined ? { factor: s.factor } : {}) };
  }
  if (s.type === "llama3") {
    return {
      factor: s.factor,
      high_freq_factor: s.highFreqFactor,
      low_freq_factor: s.lowFreqFactor,
      original_max_position_embeddings: s.originalMaxPositions,
      rope_type: "llama3",
    };
  }
  return { factor: s.factor, rope_type: s.type };
}

// ---------------------------------------------------------------------------------------------
// llama (Llama 1/2/3/3.1/3.2, TinyLlama, SmolLM, llama2.c conversions)

/** HF LlamaConfig fields we read; defaults are transformers' LlamaConfig defaults. */
export const LlamaConfigSchema = z.looseObject({
  model_type: z.literal("llama"),
  vocab_size: posInt,
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  /** absent in pre-GQA configs (Llama 1/2 7B, transformers < 4.31): = num_attention_heads */
  num_key_value_heads: posInt.nullish(),
  /** absent before transformers 4.44: = hidden_size / num_attention_heads */
  head_dim: posInt.nullish(),
  hidden_act: z.literal("silu", { error: 'only "silu" is supported for llama' }).default("silu"),
  max_position_embeddings: posInt.default(2048),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: RopeScalingSchema,
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  tie_word_embeddings: z.boolean().default(false),
  bos_token_id: tokenId.nullish(),
  eos_token_id: TokenIdsSchema,
  pad_token_id: tokenId.nullish(),
});
export type LlamaHfConfig = z.infer<typeof LlamaConfigSchema>;

/** Parse and normalise a llama config.json object. `file` names it in errors. */
export function normalizeLlamaConfig(raw: Record<string, unknown>, file: string): ModelConfig {
  const parsed = LlamaConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw configError(file, parsed.error, "fix or restore the field(s) from the model's original config.json");
  }
  const c = parsed.data;
  const nKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % nKvHeads !== 0) {
    throw new ModelLoadError(`${file}: num_attention_heads (${c.num_attention_heads}) is not a multiple of num_key_value_heads (${nKvHeads})`, {
      hint: "restore num_key_value_heads from the model's original config.json",
    });
  }
  let headDim = c.head_dim;
  if (headDim === undefined || headDim === null) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      throw new ModelLoadError(`${file}: head_dim is missing and hidden_size (${c.hidden_size}) is not a multiple of num_attention_heads (${c.num_attention_heads})`, {
        hint: "add head_dim to config.json",
      });
    }
    headDim = c.hidden_size / c.num_attention_heads;
  }
  if (headDim % 2 !== 0) {
    throw new ModelLoadError(`${file}: head_dim ${headDim} is odd; rotary embeddings need an even head_dim`, { hint: "fix head_dim in config.json" });
  }
  return {
    modelType: "llama",
    vocabSize: c.vocab_size,
    hidden: c.hidden_size,
    nLayers: c.num_hidden_layers,
    nHeads: c.num_attention_heads,
    nKvHeads,
    headDim,
    rotaryDim: headDim,
    intermediate: c.intermediate_size,
    hiddenAct: c.hidden_act,
    ropeTheta: c.rope_theta,
    ropeScaling: normalizeRopeScaling(c.rope_scaling, file),
    normEps: c.rms_norm_eps,
    tieEmbeddings: c.tie_word_embeddings,
    attentionBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    maxPositions: c.max_position_embeddings,
    bosId: c.bos_token_id ?? null,
    eosIds: toIdList(c.eos_token_id),
    padId: c.pad_token_id ?? null,
    hf: { ...raw },
  };
}

/** [HF field, ModelConfig field] pairs that llamaConfigToHf writes back. */
const LLAMA_HF_FIELDS: [string, keyof ModelConfig][] = [
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
  ["attention_bias", "attentionBias"],
  ["mlp_bias", "mlpBias"],
  ["tie_word_embeddings", "tieEmbeddings"],
  ["bos_token_id", "bosId"],
  ["pad_token_id", "padId"],
];

/**
 * ModelConfig → HF llama config.json object. Starts from `config.hf` (the file we loaded, keys
 * in their order); a field whose normalised value did not change is left exactly as loaded
 * (absent stays absent, `type` stays `type`), a changed one is written in today's HF spelling.
 * `eos_token_id` keeps config.json's own value (generation_config.json may list more ids).
 */
export function llamaConfigToHf(config: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.hf, model_type: "llama" };
  out.architectures ??= ["LlamaForCausalLM"];
  let loaded: ModelConfig | undefined;
  try {
    loaded = normalizeLlamaConfig(config.hf, "config.json");
  } catch {
    loaded = undefined; // a config built from scratch: write every field
  }
  for (const [hfKey, key] of LLAMA_HF_FIELDS) {
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
