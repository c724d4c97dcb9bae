/**
 * Test helper: a direct, scalar float64 forward pass of one unpadded sequence, written from
 * transformers' modeling_*.py for each model_type and reading config.json's HF fields itself
 * (not our ModelConfig), so it shares no code with the engine. Slow (plain loops): tiny models only.
 *
 * Covers llama, mistral, qwen2, gemma, gemma2, phi3 and gpt_neox: RMSNorm (w or 1 + w),
 * LayerNorm, √C embedding scale, fused qkv ([q; k; v] rows for phi3, per-head [q, k, v] for
 * gpt_neox), partial rotary, LongRoPE (short factors, attention factor), GQA, sliding windows,
 * attention/final soft-capping, query_pre_attn_scalar, parallel residual, silu / gelu / tanh gelu.
 */
type Tensor = { shape: number[]; data: Float32Array };
type Vec = number[];

/** erf to ~1e-15: Taylor series below 3, continued fraction for erfc above. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = ax; // erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …))))
  for (let k = 80; k >= 1; k--) {
    f = ax + k / 2 / f;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const ACT: Record<string, (x: number) => number> = {
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_pytorch_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};
ACT.gelu_new = ACT.gelu_pytorch_tanh!;
ACT.gelu_fast = ACT.gelu_pytorch_tanh!;

/** y = W x (+ b), W (out, in) as stored. */
function lin(W: Tensor, x: Vec, b?: Tensor): Vec {
  const [o, i] = W.shape as [number, number];
  const y = new Array<number>(o).fill(0);
  for (let r = 0; r < o; r++) {
    let s = b ? (b.data[r] as number) : 0;
    for (let c = 0; c < i; c++) {
      s += (W.data[r * i + c] as number) * (x[c] as number);
    }
    y[r] = s;
  }
  return y;
}

const add = (a: Vec, b: Vec): Vec => a.map((v, i) => v + (b[i] as number));

function rmsNorm(x: Vec, g: Tensor, eps: number, gemma: boolean): Vec {
  const inv = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * inv * (gemma ? 1 + (g.data[i] as number) : (g.data[i] as number)));
}

function layerNorm(x: Vec, g: Tensor, b: Tensor, eps: number): Vec {
  const mean = x.reduce((s, v) => s + v, 0) / x.length;
  const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * (g.data[i] as number) + (b.data[i] as number));
}

/** rotate_half RoPE on the first rd dims of a head vector at position pos. */
function rope(h: Vec, pos: number, invFreq: Vec, scale: number): Vec {
  const rd = invFreq.length * 2;
  const out = [...h];
  for (let i = 0; i < rd / 2; i++) {
    const a = pos * (invFreq[i] as number);
    const c = Math.cos(a) * scale;
    const s = Math.sin(a) * scale;
    const x1 = h[i] as number;
    const x2 = h[i + rd / 2] as number;
    out[i] = x1 * c - x2 * s;
    out[i + rd / 2] = x2 * c + x1 * s;
  }
  return out;
}

/** The reference logits (T, V) of `ids` for a config.json object and its tensors. */
export function referenceLogits(hf: Record<string, unknown>, w: ReadonlyMap<string, Tensor>, ids: number[]): number[][] {
  const num = (k: string, d?: number): number => (typeof hf[k] === "number" ? (hf[k] as number) : (d as number));
  const W = (name: string): Tensor => {
    const t = w.get(name);
    if (!t) {
      throw new Error(`reference: no tensor ${name}`);
    }
    return t;
  };
  const type = hf.model_type as string;
  const neox = type === "gpt_neox";
  const gemma = type === "gemma" || type === "gemma2";
  const C = num("hidden_size");
  const nh = num("num_attention_heads");
  const nkv = neox ? nh : num("num_key_value_heads", nh);
  const hs = num("head_dim", C / nh);
  const L = num("num_hidden_layers");
  const eps = neox ? num("layer_norm_eps", 1e-5) : num("rms_norm_eps", 1e-6);
  const act = ACT[(gemma ? (hf.hidden_activation as string | undefined) ?? "gelu_pytorch_tanh" : (hf.hidden_act as string | undefined) ?? "silu") as string]!;
  const partial = neox ? num("rotary_pct", 0.25) : num("partial_rotary_factor", 1);
  const rd = Math.floor(hs * partial);
  const theta = neox ? num("rotary_emb_base", 10000) : num("rope_theta", 10000);
  const rs = hf.rope_scaling as { short_factor?: number[]; type?: string; rope_type?: string } | null | undefined;
  const longrope = rs && ["longrope", "su"].includes(rs.type ?? rs.rope_type ?? "");
  const invFreq = Array.from({ length: rd / 2 }, (_, i) => 1 / ((longrope ? (rs.short_factor?.[i] as number) : 1) * theta ** ((2 * i) / rd)));
  let ropeScale = 1;
  if (longrope) {
    const orig = num("original_max_position_embeddings");
    const factor = num("max_position_embeddings") / orig;
    ropeScale = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
  }
  const scaling = type === "gemma2" ? num("query_pre_attn_scalar", 256) ** -0.5 : 1 / Math.sqrt(hs);
  const attnCap = type === "gemma2" ? (hf.attn_logit_softcapping as number | null | undefined) ?? null : null;
  const finalCap = type === "gemma2" ? (hf.final_logit_softcapping as number | null | undefined) ?? null : null;
  const windowOf = (i: number): number | null => {
    const sw = hf.sliding_window as number | null | undefined;
    if (type === "gemma2") return i % 2 === 0 ? (sw ?? null) : null;
    if (type === "mistral" || type === "phi3") return sw ?? null;
    if (type === "qwen2") return hf.use_sliding_window === true && i >= num("max_window_layers", 28) ? (sw ?? null) : null;
    return null;
  };
  const p = (i: number, rest: string): string => (neox ? `gpt_neox.layers.${i}.${rest}` : `model.layers.${i}.${rest}`);
  const norm = (x: Vec, name: string): Vec => (neox ? layerNorm(x, W(`${name}.weight`), W(`${name}.bias`), eps) : rmsNorm(x, W(`${name}.weight`), eps, gemma));
  const bias = (name: string): Tensor | undefined => w.get(name);

  const T = ids.length;
  const embed = W(neox ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight");
  let xs: Vec[] = ids.map((id) => Array.from(embed.data.subarray(id * C, (id + 1) * C)));
  if (gemma) {
    const normalizer = Math.fround(Math.sqrt(C));
    xs = xs.map((x) => x.map((v) => v * normalizer));
  }
  for (let l = 0; l < L; l++) {
    // q/k/v per position, split into heads, RoPE applied
    const qs: Vec[][] = [];
    const ks: Vec[][] = [];
    const vs: Vec[][] = [];
    const hIn = xs.map((x) => norm(x, p(l, "input_layernorm")));
    for (let t = 0; t < T; t++) {
      let q: Vec, k: Vec, v: Vec;
      if (neox) {
        const all = lin(W(p(l, "attention.query_key_value.weight")), hIn[t]!, bias(p(l, "attention.query_key_value.bias")));
        // per head h: [q (hs), k (hs), v (hs)]
        q = [];
        k = [];
        v = [];
        for (let h = 0; h < nh; h++) {
          q.push(...all.slice(h * 3 * hs, h * 3 * hs + hs));
          k.push(...all.slice(h * 3 * hs + hs, h * 3 * hs + 2 * hs));
          v.push(...all.slice(h * 3 * hs + 2 * hs, h * 3 * hs + 3 * hs));
        }
      } else if (type === "phi3") {
        const all = lin(W(p(l, "self_attn.qkv_proj.weight")), hIn[t]!);
        q = all.slice(0, nh * hs);
        k = all.slice(nh * hs, (nh + nkv) * hs);
        v = all.slice((nh + nkv) * hs);
      } else {
        q = lin(W(p(l, "self_attn.q_proj.weight")), hIn[t]!, bias(p(l, "self_attn.q_proj.bias")));
        k = lin(W(p(l, "self_attn.k_proj.weight")), hIn[t]!, bias(p(l, "self_attn.k_proj.bias")));
        v = lin(W(p(l, "self_attn.v_proj.weight")), hIn[t]!, bias(p(l, "self_attn.v_proj.bias")));
      }
      qs.push(Array.from({ length: nh }, (_, h) => rope(q.slice(h * hs, (h + 1) * hs), t, invFreq, ropeScale)));
      ks.push(Array.from({ length: nkv }, (_, h) => rope(k.slice(h * hs, (h + 1) * hs), t, invFreq, ropeScale)));
      vs.push(Array.from({ length: nkv }, (_, h) => v.slice(h * hs, (h + 1) * hs)));
    }
    const window = windowOf(l);
    const attnOut: Vec[] = [];
    for (let t = 0; t < T; t++) {
      const merged: number[] = [];
      for (let h = 0; h < nh; h++) {
        const g = Math.floor(h / (nh / nkv)); // repeat_kv: query head h reads kv head h / nrep
        const seen = Array.from({ length: t + 1 }, (_, s) => s).filter((s) => window === null || s > t - window);
        let scores = seen.map((s) => qs[t]![h]!.reduce((acc, qv, d) => acc + qv * (ks[s]![g]![d] as number), 0) * scaling);
        if (attnCap !== null) scores = scores.map((s) => attnCap * Math.tanh(s / attnCap));
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hs; d++) {
          merged.push(seen.reduce((acc, s, j) => acc + ((e[j] as number) / z) * (vs[s]![g]![d] as number), 0));
        }
      }
      const o = neox ? lin(W(p(l, "attention.dense.weight")), merged, bias(p(l, "attention.dense.bias"))) : lin(W(p(l, "self_attn.o_proj.weight")), merged, bias(p(l, "self_attn.o_proj.bias")));
      attnOut.push(o);
    }
    const mlp = (x: Vec): Vec => {
      if (neox) {
        return lin(W(p(l, "mlp.dense_4h_to_h.weight")), lin(W(p(l, "mlp.dense_h_to_4h.weight")), x, bias(p(l, "mlp.dense_h_to_4h.bias"))).map(act), bias(p(l, "mlp.dense_4h_to_h.bias")));
      }
      let gate: Vec, up: Vec;
      if (type === "phi3") {
        const gu = lin(W(p(l, "mlp.gate_up_proj.weight")), x);
        gate = gu.slice(0, gu.length / 2);
        up = gu.slice(gu.length / 2);
      } else {
        gate = lin(W(p(l, "mlp.gate_proj.weight")), x, bias(p(l, "mlp.gate_proj.bias")));
        up = lin(W(p(l, "mlp.up_proj.weight")), x, bias(p(l, "mlp.up_proj.bias")));
      }
      return lin(W(p(l, "mlp.down_proj.weight")), gate.map((g, i) => act(g) * (up[i] as number)), bias(p(l, "mlp.down_proj.bias")));
    };
    xs = xs.map((x, t) => {
      const a = attnOut[t]!;
      if (neox) {
        if (hf.use_parallel_residual ?? true) {
          return add(add(x, a), mlp(norm(x, p(l, "post_attention_layernorm"))));
        }
        const x1 = add(x, a);
        return add(x1, mlp(norm(x1, p(l, "post_attention_layernorm"))));
      }
      if (type === "gemma2") {
        const x1 = add(x, norm(a, p(l, "post_attention_layernorm")));
        return add(x1, norm(mlp(norm(x1, p(l, "pre_feedforward_layernorm"))), p(l, "post_feedforward_layernorm")));
      }
      const x1 = add(x, a);
      return add(x1, mlp(norm(x1, p(l, "post_attention_layernorm"))));
    });
  }
  const tied = hf.tie_word_embeddings ?? (gemma ? true : false);
  const head = neox ? (tied ? embed : W("embed_out.weight")) : tied ? embed : W("lm_head.weight");
  return xs.map((x) => {
    const h = neox ? layerNorm(x, W("gpt_neox.final_layer_norm.weight"), W("gpt_neox.final_layer_norm.bias"), eps) : rmsNorm(x, W("model.norm.weight"), eps, gemma);
    const logits = lin(head, h);
    return finalCap === null ? logits : logits.map((z) => finalCap * Math.tanh(z / finalCap));
  });
}
