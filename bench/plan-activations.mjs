#!/usr/bin/env node
// The memory plan's training activations (plan/memory-plan.ts) against a measurement: the peak
// of live tfjs buffer bytes during one forward + backward (the training loss, as
// train-model.ts computes it), less one set of gradients (the plan counts those apart), for
// five Llama shapes × four batch shapes. tf.memory().numBytes counts every tensor handle
// (reshapes and views too), so live buffers are counted here by dataId.
//
//   npx tsc -b packages/core && node bench/plan-activations.mjs [--backend wasm]
import { parseArgs } from "node:util";
import { dist, lcg, tf } from "./lib/llama-20m.mjs";

const { values: args } = parseArgs({ options: { backend: { type: "string", default: "wasm" } } });
const { initBackend } = await dist("backend.js");
const { forward } = await dist("model/forward.js");
const { maskedCrossEntropy } = await dist("train/loss.js");
const { normalizeLlamaConfig } = await dist("model/config.js");
const { getArchitecture } = await dist("model/registry.js");
const { planMemory } = await dist("plan/memory-plan.js");
await initBackend(args.backend);

// Live buffer bytes: +size when a dataId first appears, −size when the engine forgets it.
const engine = tf.engine();
const buffers = new Map();
let live = 0;
let peak = 0;
const track = engine.trackTensor.bind(engine);
const dispose = engine.disposeTensor.bind(engine);
engine.trackTensor = (a, backend) => {
  track(a, backend);
  if (!buffers.has(a.dataId)) {
    const n = a.size * 4;
    buffers.set(a.dataId, n);
    live += n;
    peak = Math.max(peak, live);
  }
};
engine.disposeTensor = (a) => {
  const id = a.dataId;
  dispose(a);
  if (!engine.state.tensorInfo.has(id) && buffers.has(id)) {
    live -= buffers.get(id);
    buffers.delete(id);
  }
};

const llama = (o) => ({ model_type: "llama", max_position_embeddings: 1024, ...o });
const SHAPES = {
  stories260K: llama({ vocab_size: 512, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, tie_word_embeddings: true }),
  "20M": llama({ vocab_size: 32000, hidden_size: 256, intermediate_size: 704, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4, tie_word_embeddings: false }),
  "deep (12 layers)": llama({ vocab_size: 1000, hidden_size: 128, intermediate_size: 344, num_hidden_layers: 12, num_attention_heads: 4, num_key_value_heads: 4, tie_word_embeddings: false }),
  "tied, V 16000": llama({ vocab_size: 16000, hidden_size: 192, intermediate_size: 512, num_hidden_layers: 3, num_attention_heads: 6, num_key_value_heads: 2, tie_word_embeddings: true }),
  "wide (h 512, GQA)": llama({ vocab_size: 4000, hidden_size: 512, intermediate_size: 1376, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2, tie_word_embeddings: false }),
};
const MB = 1e6;
console.log(`| model | parameters | B × T | measured MB | plan MB | plan / measured |`);
console.log(`|---|---:|---|---:|---:|---:|`);
for (const [name, hf] of Object.entries(SHAPES)) {
  const config = normalizeLlamaConfig(hf, `${name}/config.json`);
  const rnd = lcg(1);
  const vars = new Map();
  for (const e of getArchitecture("llama").expectedTensors(config)) {
    if (e.optional && config.tieEmbeddings) continue;
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (e.shape.length === 1) data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = (rnd() - 0.5) * 0.07;
    vars.set(e.name, tf.variable(tf.tensor(data, e.shape), true, `${name}/${e.name}`));
  }
  const model = { config, weights: new Map(vars), dir: "", generationConfig: null };
  for (const [B, T] of [[8, 18], [8, 64], [16, 128], [2, 384]]) {
    const ids = tf.tensor2d(Int32Array.from({ length: B * T }, () => Math.floor(rnd() * config.vocabSize)), [B, T], "int32");
    const mask = tf.ones([B, T], "int32");
    const before = live;
    peak = live;
    const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(forward(model, ids, { attentionMask: mask, weights: model.weights }), ids), [...vars.values()]);
    tf.dispose([value, ...Object.values(grads)]);
    const plan = planMemory(config, { mode: "train", batchSize: B, seqLen: T });
    const measured = peak - before - plan.bytes.weights;
    console.log(`| ${name} | ${plan.parameters.toLocaleString("en-US")} | ${B} × ${T} | ${(measured / MB).toFixed(1)} | ${(plan.bytes.activations / MB).toFixed(1)} | ${(plan.bytes.activations / measured).toFixed(2)} |`);
    tf.dispose([ids, mask]);
  }
  tf.dispose([...vars.values()]);
}
