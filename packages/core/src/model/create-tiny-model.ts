/**
 * A tiny random Llama with our byte-level tokenizer, for demos and tests: seeded, so the same
 * options always give byte-identical files. Initialisation follows transformers'
 * `LlamaPreTrainedModel._init_weights`: projections and embeddings ~ N(0, initializer_range²),
 * the padding row of the embedding zeroed, RMSNorm gains 1, biases 0.
 */
import path from "node:path";
import { InputError } from "../errors.js";
import type { TensorToWrite } from "../io/safetensors-write.js";
import { createByteLevelTokenizer } from "../tokenizer/byte-level-tokenizer.js";
import { createRng } from "../util/rng.js";
import { normalizeLlamaConfig, type ModelConfig } from "./config.js";
import { llamaExpectedTensors, LLAMA_EMBED } from "./llama.js";
import { generationConfigToHf, writeModelDir } from "./save-model.js";

export interface CreateTinyModelOptions {
  /** PRNG seed of the weights */
  seed: number;
  /** residual width C (default 64) */
  hidden?: number;
  /** decoder layers (default 2) */
  layers?: number;
  /** query heads (default 4) */
  heads?: number;
  /** key/value heads (default 2: grouped-query attention) */
  kvHeads?: number;
  /** MLP width (default: Llama's 8C/3 rounded up to a multiple of 32, 192 for C = 64) */
  intermediate?: number;
  /** positions (default 512) */
  maxPositions?: number;
  /** share the embedding with the lm_head (default false) */
  tieEmbeddings?: boolean;
  /** standard deviation of the random weights (default 0.02) */
  initializerRange?: number;
  /** replace an existing directory */
  overwrite?: boolean;
}

/** Number of ids of a tokenizer.json: one past the largest id of its vocab and added tokens. */
function tokenizerVocabSize(tokenizerJson: Record<string, unknown>): number {
  const model = tokenizerJson.model as { vocab: Record<string, number> };
  const added = (tokenizerJson.added_tokens as { id: number }[] | undefined) ?? [];
  return Math.max(...Object.values(model.vocab), ...added.map((t) => t.id)) + 1;
}

/**
 * Write a tiny random Llama (config.json, generation_config.json, model.safetensors and the
 * byte-level tokenizer files) into `dir`.
 * @returns the absolute directory and the normalised config
 */
export async function createTinyModel(dir: string, opts: CreateTinyModelOptions): Promise<{ dir: string; config: ModelConfig }> {
  const hidden = opts.hidden ?? 64;
  const heads = opts.heads ?? 4;
  const kvHeads = opts.kvHeads ?? 2;
  if (hidden % heads !== 0 || heads % kvHeads !== 0 || (hidden / heads) % 2 !== 0) {
    throw new InputError(`createTinyModel: hidden ${hidden}, heads ${heads}, kvHeads ${kvHeads} do not fit`, {
      hint: "hidden must be a multiple of heads with an even head size, and heads a multiple of kvHeads",
    });
  }
  const tok = createByteLevelTokenizer();
  const range = opts.initializerRange ?? 0.02;
  const hf: Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: tokenizerVocabSize(tok["tokenizer.json"]),
    hidden_size: hidden,
    intermediate_size: opts.intermediate ?? Math.ceil((8 * hidden) / 3 / 32) * 32,
    num_hidden_layers: opts.layers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: hidden / heads,
    hidden_act: "silu",
    max_position_embeddings: opts.maxPositions ?? 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: opts.tieEmbeddings ?? false,
    initializer_range: range,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 3,
    torch_dtype: "float32",
  };
  const config = normalizeLlamaConfig(hf, path.join(dir, "config.json"));
  const rng = createRng(opts.seed);
  const tensors = new Map<string, TensorToWrite>();
  for (const e of llamaExpectedTensors(config)) {
    if (e.tiedTo !== undefined) {
      continue;
    }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (e.shape.length === 1) {
      data.fill(e.name.endsWith(".bias") ? 0 : 1); // RMSNorm gains 1, biases 0
    } else {
      for (let i = 0; i < n; i++) {
        data[i] = rng.normal() * range;
      }
    }
    if (e.name === LLAMA_EMBED && config.padId !== null) {
      data.fill(0, config.padId * hidden, (config.padId + 1) * hidden);
    }
    tensors.set(e.name, { shape: e.shape, data });
  }
  const files = new Map<string, Record<string, unknown>>(Object.entries(tok));
  const abs = path.resolve(dir);
  await writeModelDir(abs, { config: hf, generationConfig: generationConfigToHf(config, null), tensors, files }, { overwrite: opts.overwrite });
  return { dir: abs, config };
}
