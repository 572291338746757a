#!/usr/bin/python3
"""Dump what attnscale.torch.capture records from a PyTorch model to .npy for `attnscale diagnose`.

The capture sees the logits the model really uses (post-rotary queries and keys, every scale,
the model's mask): see `attnscale.torch`. This script writes them, one directory per attention
call, for the command line or for inspection.

Library use, on your own model (PYTHONPATH=build/python:scripts):

    import dump_scores
    calls = dump_scores.dump(model, (input_ids,), "out/")      # runs the model once
    # or, after your own `with attnscale.torch.capture(model) as cap: ...`:
    calls = dump_scores.dump_capture(cap, "out/")
    for c in calls:
        print(c["command"])            # the matching `attnscale diagnose` command line

Each directory (the layer's qualified name; a layer called more than once gets "_<i>" for its
i-th call) holds, for batch element `batch` (default 0):
    q.npy     (heads, n, d)     post-rotary queries       } when the model's attention passes
    k.npy     (kv_heads, n, d)  post-rotary keys          } q and k (SDPA, attention_function)
    mask.npy  broadcastable to (heads, n, n): bool (True: seen) or additive float, when the
              call had a mask (is_causal: the (n, n) bool lower triangle)
    logits.npy (heads, n, n)    the logits with the mask applied (-inf where a bool mask is
              False); the model's own tensor on the softmax path (then the only file), formed
              in float64 from q and k otherwise
and out/index.json lists every call: layer, path, directory, scale, files, command.
bfloat16 tensors are written as float32 (exactly: every bfloat16 is a float32). The commands
are `attnscale diagnose --q q.npy --k k.npy --scale S [--mask mask.npy]` for q/k, and
`attnscale diagnose --scores logits.npy --masked-logits` for softmax-path logits: their
per-head records equal cap.diagnose(batch=batch)'s for that layer, bit for bit.

Command-line use builds a small randomly initialised Llama-style decoder (RMSNorm, rotary
embeddings, grouped-query attention, an additive torch.finfo(dtype).min causal mask; no
download) and dumps every layer:

    /usr/bin/python3 scripts/dump_scores.py --out DIR [--n 64] [--layers 2] [--heads 8]
        [--kv-heads 2] [--head-dim 16] [--dtype float32|float64|bfloat16]
        [--attention function|softmax] [--weights] [--seed 0]

--attention function (default): the attention modules call attnscale.torch.attention_function
("eager") exactly as transformers calls its attention functions (q.npy, k.npy, mask.npy,
logits.npy); softmax: eager attention written in the module, recorded at torch.softmax
(logits.npy only). --weights also writes weights.npy (heads, n, n): the attention weights the
model computed (softmax in float32, as transformers' eager attention).
"""
import argparse
import json
import math
import os
import re
import shlex
import sys

import numpy as np
import torch

try:
    import attnscale.torch as at
except ImportError:
    # Not installed or not on PYTHONPATH (or a sanitizer build's extension): the checkout's
    # python/attnscale/torch.py alone, which needs the compiled package only for diagnose.
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "attnscale_torch", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "python", "attnscale", "torch.py"))
    at = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(at)


def _float_array(x, bf16):
    """A numpy array for a .npy file: int16 bfloat16 bits widened to float32 (exactly)."""
    x = np.asarray(x)
    if bf16 and x.dtype == np.int16:
        return (x.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return x


def _dirname(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("#", "_"))


def dump_capture(cap, out_dir, batch=0, logits=True, weights=None):
    """Write the calls recorded by ``cap`` (an attnscale.torch.capture) under out_dir.

    batch: the batch element written (heads, n, ...). logits: also write logits.npy for q/k
    calls (an n x n array per head, formed in float64). weights: optional {call index:
    (batch, heads, n, n) tensor} written as weights.npy. Returns the list written to
    out_dir/index.json: one dict per call with layer, path, dir, scale (None for logits),
    files and command (the `attnscale diagnose` command line, a str).
    """
    os.makedirs(out_dir, exist_ok=True)
    index = []
    inputs = cap.layer_inputs(batch)
    for c, layer in zip(cap.calls, inputs):
        d = os.path.join(out_dir, _dirname(layer["name"]))
        os.makedirs(d, exist_ok=True)
        bf16 = layer.get("dtype") == "bfloat16"
        files = {}

        def save(key, arr):
            files[key] = os.path.join(d, key + ".npy")
            np.save(files[key], _float_array(arr, bf16))

        if "scores" in layer:
            save("logits", layer["scores"])
            cmd = ["diagnose", "--scores", files["logits"], "--masked-logits"]
        else:
            save("q", layer["q"])
            save("k", layer["k"])
            cmd = ["diagnose", "--q", files["q"], "--k", files["k"],
                   "--scale", repr(layer["scale"])]
            if "mask" in layer:
                save("mask", layer["mask"])
                cmd += ["--mask", files["mask"]]
            if layer.get("causal"):
                cmd += ["--causal"]
            if logits:
                files["logits"] = os.path.join(d, "logits.npy")
                np.save(files["logits"], cap.logits(c.index)[batch].numpy())
        if weights is not None and c.index in weights:
            files["weights"] = os.path.join(d, "weights.npy")
            np.save(files["weights"], weights[c.index][batch].detach().to(torch.float64)
                    .cpu().numpy())
        index.append({"layer": layer["name"], "path": c.path, "dir": d,
                      "scale": layer.get("scale"), "files": files,
                      "command": "attnscale " + shlex.join(cmd)})
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    return index


def dump(model, inputs, out_dir, layers=None, batch=0, logits=True, **kwargs):
    """Run ``model(*inputs, **kwargs)`` once under attnscale.torch.capture(model, layers) (in
    torch.no_grad) and write what it recorded (see dump_capture). Returns dump_capture's
    list."""
    with torch.no_grad(), at.capture(model, layers=layers) as cap:
        model(*inputs, **kwargs)
    return dump_capture(cap, out_dir, batch=batch, logits=logits)


# ----------------------------------------------------------------------------
# A small Llama-style decoder (transformers' LlamaModel, written out), random weights.

class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class Rotary(torch.nn.Module):
    """cos, sin (batch, n, head_dim) of the positions, computed in float32 as transformers'
    LlamaRotaryEmbedding does."""

    def __init__(self, head_dim, theta=10000.0):
        super().__init__()
        inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float()
                               / head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class Attention(torch.nn.Module):
    def __init__(self, hidden, heads, kv_heads, head_dim, attention):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.num_key_value_groups = heads // kv_heads
        self.scaling = head_dim ** -0.5
        self.is_causal = True
        self.q_proj = torch.nn.Linear(hidden, heads * head_dim, bias=False)
        self.k_proj = torch.nn.Linear(hidden, kv_heads * head_dim, bias=False)
        self.v_proj = torch.nn.Linear(hidden, kv_heads * head_dim, bias=False)
        self.o_proj = torch.nn.Linear(heads * head_dim, hidden, bias=False)
        self.attention = attention
        self.attention_interface = at.attention_function("eager")
        self.weights = None  # a list when the attention weights are kept

    def forward(self, x, cos, sin, mask):
        shape = (*x.shape[:-1], -1, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        if self.attention == "function":
            out, w = self.attention_interface(self, q, k, v, mask, dropout=0.0,
                                              scaling=self.scaling)
        else:
            kr = at.repeat_kv(k, self.num_key_value_groups)
            vr = at.repeat_kv(v, self.num_key_value_groups)
            logits = torch.matmul(q, kr.transpose(2, 3)) * self.scaling + mask
            w = torch.softmax(logits, dim=-1, dtype=torch.float32).to(q.dtype)
            out = torch.matmul(w, vr).transpose(1, 2).contiguous()
        if self.weights is not None:
            self.weights.append(w.detach())
        return self.o_proj(out.reshape(*x.shape[:-1], -1))


class DecoderLayer(torch.nn.Module):
    def __init__(self, hidden, heads, kv_heads, head_dim, attention):
        super().__init__()
        self.input_layernorm = RMSNorm(hidden)
        self.self_attn = Attention(hidden, heads, kv_heads, head_dim, attention)
        self.post_attention_layernorm = RMSNorm(hidden)
        self.gate_proj = torch.nn.Linear(hidden, 2 * hidden, bias=False)
        self.up_proj = torch.nn.Linear(hidden, 2 * hidden, bias=False)
        self.down_proj = torch.nn.Linear(2 * hidden, hidden, bias=False)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(torch.nn.functional.silu(self.gate_proj(h)) * self.up_proj(h))


class TinyLlama(torch.nn.Module):
    """A Llama-style decoder: layers named layers.<i>.self_attn."""

    def __init__(self, vocab=101, layers=2, heads=8, kv_heads=2, head_dim=16,
                 attention="function"):
        super().__init__()
        hidden = heads * head_dim
        self.embed_tokens = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList(
            DecoderLayer(hidden, heads, kv_heads, head_dim, attention) for _ in range(layers))
        self.norm = RMSNorm(hidden)
        self.rotary_emb = Rotary(head_dim)

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        b, n = input_ids.shape
        pos = torch.arange(n)[None].expand(b, n)
        cos, sin = self.rotary_emb(x, pos)
        mask = torch.full((n, n), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)
        mask = mask[None, None].expand(b, 1, n, n)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.norm(x)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--n", type=int, default=64, help="sequence length (default 64)")
    ap.add_argument("--layers", type=int, default=2, help="decoder layers (default 2)")
    ap.add_argument("--heads", type=int, default=8, help="query heads (default 8)")
    ap.add_argument("--kv-heads", type=int, default=2, help="key/value heads (default 2)")
    ap.add_argument("--head-dim", type=int, default=16, help="head dimension (default 16)")
    ap.add_argument("--dtype", choices=["float32", "float64", "bfloat16"], default="float32")
    ap.add_argument("--attention", choices=["function", "softmax"], default="function",
                    help="attention_function (q, k, mask) or eager softmax (logits)")
    ap.add_argument("--weights", action="store_true", help="also write weights.npy")
    ap.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    a = ap.parse_args(argv)
    if (a.n < 1 or a.layers < 1 or a.kv_heads < 1 or a.heads % a.kv_heads
            or a.head_dim < 2 or a.head_dim % 2):
        ap.error("need n, layers, kv-heads >= 1, kv-heads dividing heads, an even head-dim")
    torch.manual_seed(a.seed)
    model = TinyLlama(layers=a.layers, heads=a.heads, kv_heads=a.kv_heads,
                      head_dim=a.head_dim, attention=a.attention)
    for name, p in model.named_parameters():  # queries and keys large enough to separate
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            torch.nn.init.normal_(p, std=2.0 / math.sqrt(p.shape[1]))
    model = model.to(getattr(torch, a.dtype)).eval()
    attn = [m for m in model.modules() if isinstance(m, Attention)]
    for m in attn:
        m.weights = [] if a.weights else None
    ids = torch.randint(0, 101, (1, a.n))
    with torch.no_grad(), at.capture(model) as cap:
        model(ids)
    weights = None
    if a.weights:
        seen = {}
        weights = {}
        for c in cap.calls:
            m = model.get_submodule(c.layer)
            i = seen.get(c.layer, 0)
            seen[c.layer] = i + 1
            weights[c.index] = m.weights[i]
    index = dump_capture(cap, a.out, weights=weights)
    print(f"wrote {len(index)} attention calls under {a.out} (index.json); diagnose them with:")
    for c in index:
        print("  " + c["command"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
