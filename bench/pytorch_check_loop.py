#!/usr/bin/env python3
"""The reference's check loop at its cheapest, the PyTorch side of bench/check-loop-pytorch.mjs.

OML 1.0's check_fingerprints.py calls transformers' model.generate on one tokenized prompt at a
time (batch 1, greedy, max_new_tokens = response length, KV cache). transformers is not
installable here, so this runs what generate does at minimum: one prefill forward of the prompt
filling a KV cache, argmax of the last logits, then one cached decode step per further token.
No tokenization, no generate() bookkeeping (logits processors, stopping criteria, cache
objects): the timing is a LOWER bound of the reference's.

Llama as in transformers' LlamaForCausalLM: GQA (repeat_kv), rotate_half RoPE, RMSNorm,
SwiGLU, lm_head tied to the embedding when the checkpoint has none (stories260K).

  /usr/bin/python3 bench/pytorch_check_loop.py IN.json OUT.json
IN: {"model": dir, "prompts": [[ids]], "max_new": [n], "threads": 2, "reps": 1, "warmup": 64}
OUT: {"seconds": [...], "cpu_seconds": [...], "machine_busy_seconds": [...], "generated": [[ids]], ...}
machine_busy_seconds: CPU time of the whole machine (/proc/stat) during each timed loop, so the
benchmark can tell how much of it other jobs took.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_llama_step import read_safetensors  # noqa: E402  (same header parsing, no safetensors package)


def machine_busy():
    """CPU seconds the whole machine has been busy (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    return (t[0] + t[1] + t[2] + t[5] + t[6] + t[7]) / os.sysconf("SC_CLK_TCK")


class CachedLlama:
    """Inference only: weights as plain tensors, a list of (k, v) per layer as the cache."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w.setdefault("lm_head.weight", self.w["model.embed_tokens.weight"])  # tied embeddings
        self.nh, self.nkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c.get("head_dim") or c["hidden_size"] // self.nh
        self.layers, self.eps = c["num_hidden_layers"], c["rms_norm_eps"]
        # cos/sin for every position once, as transformers' rotary embedding caches them.
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        freqs = torch.outer(torch.arange(c["max_position_embeddings"], dtype=torch.float32), inv)
        emb = torch.cat([freqs, freqs], -1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def rms(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name]

    def forward(self, ids, cache, pos):
        """ids (1, T) at positions pos..pos+T-1; cache: list of (k, v) or None per layer, updated."""
        T, nh, nkv, hd, w = ids.shape[1], self.nh, self.nkv, self.hd, self.w
        x = F.embedding(ids, w["model.embed_tokens.weight"])
        cos, sin = self.cos[pos : pos + T], self.sin[pos : pos + T]

        def rope(t):
            t1, t2 = t[..., : hd // 2], t[..., hd // 2 :]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        # causal within the new tokens; every cached position (pos of them) is visible
        mask = torch.cat([torch.zeros(T, pos), torch.full((T, T), float("-inf")).triu(1)], 1) if T > 1 else None
        for i in range(self.layers):
            p = f"model.layers.{i}"
            h = self.rms(x, f"{p}.input_layernorm.weight")
            q = rope(F.linear(h, w[f"{p}.self_attn.q_proj.weight"]).view(1, T, nh, hd).transpose(1, 2))
            k = rope(F.linear(h, w[f"{p}.self_attn.k_proj.weight"]).view(1, T, nkv, hd).transpose(1, 2))
            v = F.linear(h, w[f"{p}.self_attn.v_proj.weight"]).view(1, T, nkv, hd).transpose(1, 2)
            if cache[i] is not None:  # DynamicCache: concatenate along the sequence
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)  # repeat_kv
            s = q @ k.transpose(-2, -1) / math.sqrt(hd)
            att = torch.softmax(s + mask if mask is not None else s, -1)
            x = x + F.linear((att @ v).transpose(1, 2).reshape(1, T, nh * hd), w[f"{p}.self_attn.o_proj.weight"])
            h = self.rms(x, f"{p}.post_attention_layernorm.weight")
            g = F.linear(h, w[f"{p}.mlp.gate_proj.weight"])
            x = x + F.linear(F.silu(g) * F.linear(h, w[f"{p}.mlp.up_proj.weight"]), w[f"{p}.mlp.down_proj.weight"])
        # lm_head on the last position only (what generate uses)
        return F.linear(self.rms(x[:, -1], "model.norm.weight"), w["lm_head.weight"])

    def generate(self, prompt, max_new):
        """Greedy, batch 1: prefill, argmax, then one cached step per further token."""
        cache = [None] * self.layers
        ids = torch.tensor([prompt], dtype=torch.long)
        out, pos = [], 0
        for _ in range(max_new):
            nxt = int(self.forward(ids, cache, pos).argmax(-1))
            out.append(nxt)
            pos += ids.shape[1]
            ids = torch.tensor([[nxt]], dtype=torch.long)
        return out


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    model = CachedLlama(job["model"])
    prompts, max_new = job["prompts"], job["max_new"]
    with torch.inference_mode():
        for p, n in list(zip(prompts, max_new))[: job.get("warmup", 64)]:  # warm-up: allocator, first kernels
            model.generate(p, n)
        seconds, cpu, busy = [], [], []
        for _ in range(job.get("reps", 1)):
            b0, c0, t0 = machine_busy(), time.process_time(), time.perf_counter()
            generated = [model.generate(p, n) for p, n in zip(prompts, max_new)]
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            busy.append(machine_busy() - b0)
    with open(sys.argv[2], "w") as f:
        json.dump({"seconds": seconds, "cpu_seconds": cpu, "machine_busy_seconds": busy, "generated": generated, "threads": torch.get_num_threads(), "torch": torch.__version__}, f)


if __name__ == "__main__":
    main()
