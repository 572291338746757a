#!/usr/bin/env python3
"""Your model: diagnose every layer and head of a PyTorch model's attention, then draw the heat map.

The five lines (attnscale.torch; DESIGN.md, PyTorch capture contract)::

    import attnscale.torch as at
    with at.capture(model) as cap:                          # records every attention call
        model(input_ids)
    result = cap.diagnose(policy="all", target_len=131072)  # every layer and head
    at.plot_heads(result, "heads.png")                      # median beta/beta_hat_k10 per head

This script runs them on a small randomly initialised Llama-style decoder (scripts/
dump_scores.py's TinyLlama: rotary embeddings, 8 query / 2 key heads, no download), or on a
Hugging Face model when transformers is installed (--hf NAME: loaded with eager attention, so
its softmax is where the capture records the logits), and prints one line per head: its
regime shares, best-fitting law and the policy recommended at the target length.

    PYTHONPATH=build/python python3 examples/your_model.py [--out out/your_model_heads.png]
        [--n 256] [--target-len 131072] [--hf NAME] [--text FILE]

Needs torch and NumPy (the library draws the figure itself: no matplotlib).
"""

import argparse
import os
import sys
import time

import torch

import attnscale.torch as at


def tiny_model(n, seed):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    import dump_scores

    torch.manual_seed(seed)
    model = dump_scores.TinyLlama(layers=2, heads=8, kv_heads=2, head_dim=16).eval()
    for name, p in model.named_parameters():  # queries and keys large enough to separate
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            torch.nn.init.normal_(p, std=2.0 / p.shape[1] ** 0.5)
    return model, torch.randint(0, 101, (1, n))


def hf_model(name, n, text):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="eager").eval()
    words = open(text).read() if text else " ".join(["The quick brown fox jumps."] * n)
    ids = tok(words, return_tensors="pt").input_ids[:, :n]
    return model, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/your_model_heads.png")
    ap.add_argument("--n", type=int, default=256, help="tokens (default 256)")
    ap.add_argument("--target-len", type=int, default=131072)
    ap.add_argument("--hf", metavar="NAME", help="a transformers model instead of the tiny one")
    ap.add_argument("--text", help="with --hf: a text file to feed")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    model, ids = hf_model(a.hf, a.n, a.text) if a.hf else tiny_model(a.n, a.seed)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)

    t0 = time.perf_counter()
    with torch.no_grad(), at.capture(model) as cap:
        model(ids)
    result = cap.diagnose(policy="all", target_len=a.target_len)
    at.plot_heads(result, a.out)
    elapsed = time.perf_counter() - t0

    def num(x):
        return "-" if x is None else f"{x:.3g}"

    for t in at.heads_table(result):
        print(f"{t['layer']} head {t['head']:2d}: sub {t['subcritical']:.2f} crit "
              f"{t['critical']:.2f} super {t['supercritical']:.2f} | ratio_median "
              f"{num(t['ratio_median'])} | law {t['best']} | at {a.target_len}: "
              f"{t['recommended_policy']} x{num(t['recommended_factor'])}")
    print(f"{len(cap.calls)} attention calls, {len(result['summary'])} heads in {elapsed:.2f} s; "
          f"wrote {a.out} and its .csv")


if __name__ == "__main__":
    main()
