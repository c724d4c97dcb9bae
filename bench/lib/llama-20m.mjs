// The ~20M-parameter Llama of issue 9's benchmarks (vocab 32000, hidden 256, 4 layers,
// 4 heads, intermediate 704, untied lm_head) with seeded random weights and token ids,
// built in memory: no tokenizer or model directory needed.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const core = new URL("../../packages/core/", import.meta.url);
const require = createRequire(new URL("package.json", core));
/** tfjs-core as @oml-ts/core resolves it (one instance for the engine and the bench). */
export const tf = await import(pathToFileURL(require.resolve("@tensorflow/tfjs-core")).href);
/** A module of packages/core/dist (run `npx tsc -b packages/core` first). */
export const dist = (p) => import(new URL(`dist/${p}`, core).href);

export const HF_CONFIG_20M = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  vocab_size: 32000,
  hidden_size: 256,
  intermediate_size: 704,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  hidden_act: "silu",
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: "float32",
};

/** A linear congruential generator in [0, 1): deterministic and the same on every machine. */
export function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * The normalised config, every tensor (name → { shape, data }) with N(0, 0.02)-ish uniform
 * weights and unit norm gains, and (B, T) token ids. `hf`: another Llama config.json to build
 * the same way (default the 20M one).
 */
export async function llama20m({ seed = 1, batch = 8, seqLen = 64, hf = HF_CONFIG_20M } = {}) {
  const { normalizeLlamaConfig } = await dist("model/config.js");
  const { getArchitecture } = await dist("model/registry.js");
  const config = normalizeLlamaConfig(hf, "bench/llama-20m/config.json");
  const rnd = lcg(seed);
  const tensors = new Map();
  for (const e of getArchitecture("llama").expectedTensors(config)) {
    if (e.tiedTo !== undefined) continue;
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (e.shape.length === 1) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = (rnd() - 0.5) * 0.07; // std 0.02
    tensors.set(e.name, { shape: e.shape, data });
  }
  const ids = Array.from({ length: batch }, () => Array.from({ length: seqLen }, () => Math.floor(rnd() * config.vocabSize)));
  const params = [...tensors.values()].reduce((a, t) => a + t.data.length, 0);
  return { hf, config, tensors, ids, params };
}
