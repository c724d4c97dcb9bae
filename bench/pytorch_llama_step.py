#!/usr/bin/env python3
"""A plain-PyTorch Llama training step, the reference side of bench/train-step-vs-pytorch.mjs.

No transformers: embedding, RMSNorm, rotary embeddings in HF's rotate_half layout, causal
multi-head attention, SwiGLU MLP, final norm, untied lm_head, mean cross-entropy over every
shifted position, torch.optim.AdamW. The same maths as our engine, written the usual way.

Driven over stdin/stdout, one JSON object per line, so the benchmark can alternate it with
our step in one run:
  {"cmd": "init", "config": {...}, "weights": "/tmp/.../model.safetensors",
   "ids": [[...], ...], "lr": 1e-4, "weight_decay": 0.01, "threads": 2}
      -> {"ok": true, "params": N, "threads": 2, "torch": "1.13.0"}
  {"cmd": "steps", "n": 3}   -> {"ms": [...], "loss": [...]}   (wall ms per step)
  {"cmd": "quit"}
Weights come from a float32 safetensors file written by the benchmark, so both sides start
from the same parameters and their first losses can be compared.
"""
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        start, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32).reshape(info["shape"])
    return out


class Llama(torch.nn.Module):
    def __init__(self, c, weights):
        super().__init__()
        self.c = c
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v.clone()) for k, v in weights.items()})
        hd = c["hidden_size"] // c["num_attention_heads"]
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.register_buffer("inv_freq", inv, persistent=False)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def rms(self, x, name):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"])
        return x * self.w(name)

    def forward(self, ids):
        c = self.c
        B, T = ids.shape
        nh = c["num_attention_heads"]
        hd = c["hidden_size"] // nh
        x = F.embedding(ids, self.w("model.embed_tokens.weight"))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), self.inv_freq)
        emb = torch.cat([freqs, freqs], -1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]

        def rope(t):
            t1, t2 = t[..., : hd // 2], t[..., hd // 2 :]
            return t * cos + torch.cat([-t2, t1], -1) * sin

        mask = torch.full((T, T), float("-inf")).triu(1)
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = self.rms(x, f"{p}.input_layernorm.weight")
            q = F.linear(h, self.w(f"{p}.self_attn.q_proj.weight")).view(B, T, nh, hd).transpose(1, 2)
            k = F.linear(h, self.w(f"{p}.self_attn.k_proj.weight")).view(B, T, nh, hd).transpose(1, 2)
            v = F.linear(h, self.w(f"{p}.self_attn.v_proj.weight")).view(B, T, nh, hd).transpose(1, 2)
            q, k = rope(q), rope(k)
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd) + mask, -1)
            y = (att @ v).transpose(1, 2).reshape(B, T, nh * hd)
            x = x + F.linear(y, self.w(f"{p}.self_attn.o_proj.weight"))
            h = self.rms(x, f"{p}.post_attention_layernorm.weight")
            g = F.linear(h, self.w(f"{p}.mlp.gate_proj.weight"))
            u = F.linear(h, self.w(f"{p}.mlp.up_proj.weight"))
            x = x + F.linear(F.silu(g) * u, self.w(f"{p}.mlp.down_proj.weight"))
        x = self.rms(x, "model.norm.weight")
        return F.linear(x, self.w("lm_head.weight"))


def main():
    model = opt = ids = None
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "init":
            torch.set_num_threads(msg.get("threads", 2))
            torch.manual_seed(0)
            model = Llama(msg["config"], read_safetensors(msg["weights"]))
            ids = torch.tensor(msg["ids"], dtype=torch.long)
            opt = torch.optim.AdamW(model.parameters(), lr=msg["lr"], weight_decay=msg["weight_decay"])
            n = sum(p.numel() for p in model.parameters())
            reply = {"ok": True, "params": n, "threads": torch.get_num_threads(), "torch": torch.__version__}
        elif msg["cmd"] == "steps":
            ms, losses = [], []
            for _ in range(msg["n"]):
                t0 = time.perf_counter()
                logits = model(ids)
                V = logits.shape[-1]
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ms.append((time.perf_counter() - t0) * 1000)
                losses.append(loss.item())
            reply = {"ms": ms, "loss": losses}
        elif msg["cmd"] == "quit":
            return
        else:
            reply = {"error": f"unknown command {msg['cmd']}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
