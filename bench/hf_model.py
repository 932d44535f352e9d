#!/usr/bin/env python3
"""Reference for bench_model on a GPU: the same Qwen2-shaped model in Hugging Face transformers.

Times forward and forward+backward (cross-entropy over every position, logits cast to float32, as
bench_model does) of a randomly initialised Qwen2ForCausalLM with the DeepSeek-R1-Distill-Qwen-1.5B
shape, and prints tokens/s and GFLOP/s with the same FLOP count as bench_model.

  python3 bench/hf_model.py [--seq 2048] [--batch 1] [--iters 5] [--dtype bfloat16] [--attn sdpa]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM


def forward_flops(c, B, T):
    H, I = c.hidden_size, c.intermediate_size
    hd = H // c.num_attention_heads
    q, kv = c.num_attention_heads * hd, c.num_key_value_heads * hd
    per_layer = H * q + 2 * H * kv + q * H + 3 * H * I
    mm_params = c.num_hidden_layers * per_layer + c.vocab_size * H
    attn = c.num_hidden_layers * 2.0 * 2.0 * T * T * q
    return B * (2.0 * mm_params * T + attn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--attn", default="sdpa", help="attn_implementation: sdpa, eager, ...")
    a = ap.parse_args()
    dtype = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
    cfg = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                      num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=False,
                      rope_theta=1e6, max_position_embeddings=4096, use_sliding_window=False)
    cfg._attn_implementation = a.attn
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(device="cuda", dtype=dtype)
    B, T = a.batch, a.seq
    ids = torch.randint(0, cfg.vocab_size, (B, T), device="cuda")
    targets = ids.roll(-1, 1).reshape(-1)
    n_params = sum(p.numel() for p in model.parameters())
    flops = forward_flops(cfg, B, T)
    tokens = B * T

    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            model(input_ids=ids)
        torch.cuda.synchronize()
        fwd_s = (time.perf_counter() - t0) / a.iters

    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits.view(-1, cfg.vocab_size).float(), targets)
        loss.backward()

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    torch.cuda.synchronize()
    fb_s = (time.perf_counter() - t0) / a.iters
    peak = torch.cuda.max_memory_allocated() / 2**30

    print(f"hf_model: torch {torch.__version__}, {torch.cuda.get_device_name()}, {a.dtype}, attn {a.attn}")
    print(f"1.5B  {n_params / 1e6:.1f}M params  B={B} T={T}")
    print(f"  forward          {tokens / fwd_s:9.0f} tokens/s  {flops / fwd_s / 1e9:9.1f} GFLOP/s")
    print(f"  forward+backward {tokens / fb_s:9.0f} tokens/s  {3 * flops / fb_s / 1e9:9.1f} GFLOP/s"
          f"  peak {peak:.1f} GiB")


if __name__ == "__main__":
    main()
