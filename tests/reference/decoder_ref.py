#!/usr/bin/python3
"""Independent float64 reference for the Qwen2 / Llama-3 / Qwen3 decoders (Python 3 + numpy only).

Written from the architectures' definitions, not from safekey's C++, so that a shared mistake is
unlikely: token embedding -> N x [RMSNorm -> GQA self-attention with rotary embeddings and a causal
mask -> residual -> RMSNorm -> SwiGLU MLP -> residual] -> RMSNorm -> lm_head (or the tied embedding).
Family switches read from config.json:
  qwen2  q/k/v projections carry a bias; head_dim = hidden_size / num_attention_heads
  llama  optional attention_bias / mlp_bias; rope_scaling "llama3" (Llama-3.1 frequency bands)
  qwen3  RMSNorm over head_dim on every query and key head (q_norm / k_norm) before RoPE; head_dim key
Every computation runs in float64, including RoPE angles, so the output is the exact math up to
float64 rounding (~1e-16 relative); a float32 implementation is compared with it at a tolerance
that models float32 error only.

Usage (writes a safetensors file with F64 `logits` [T, V], F64 `hidden_states` [T, H] after the
final norm, and I64 `input_ids` [T]):
  decoder_ref.py --model DIR --ids 1,2,3 --out OUT.safetensors
  decoder_ref.py --model DIR --random-ids 8192 --seed 7 --out OUT.safetensors
  decoder_ref.py --model DIR --ids ... --key-mask 0,0,1,... --out OUT.npy    (.npy: logits only)
Options: --positions 0,100,8191 keeps only those rows of the outputs (attention still covers every
earlier position); --key-mask hides keys whose entry is 0 from every query (a query with no visible
key gets some finite output; no compared value depends on it).
Random ids are numpy.random.default_rng(seed).integers(0, vocab_size, T).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ---- safetensors: 8-byte little-endian header length N, N bytes of JSON, then raw data ----------

_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
           "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}


def read_safetensors(path):
    """Returns {name: float64 or integer ndarray} for one .safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "BF16":
            # bfloat16 is the upper half of a float32: shift the 16 bits into place.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(raw, dtype=_DTYPES[dt])
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"{path}: tensor {name}: {arr.size} values for shape {shape}")
        arr = arr.reshape(shape)
        out[name] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr.copy()
    return out


def write_safetensors(path, tensors):
    """Writes {name: ndarray} (float64 -> F64, int64 -> I64) in the standard layout."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype("<f8") if a.dtype.kind == "f" else a.astype("<i8")
        raw = a.tobytes()
        header[name] = {"dtype": "F64" if a.dtype.kind == "f" else "I64", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def load_weights(model_dir):
    """Single file or an HF sharded folder (model.safetensors.index.json)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for name in files:
        w.update(read_safetensors(os.path.join(model_dir, name)))
    return w


# ---- configuration ----------------------------------------------------------------------------

class Config:
    def __init__(self, c):
        self.family = c["model_type"]
        if self.family not in ("qwen2", "llama", "qwen3"):
            raise ValueError(f"unsupported model_type {self.family}")
        self.vocab = c["vocab_size"]
        self.hidden = c["hidden_size"]
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        # Qwen2 has no head_dim key; Llama and Qwen3 may set it independently of hidden/heads.
        hd = c.get("head_dim") if self.family != "qwen2" else None
        self.head_dim = hd or self.hidden // self.heads
        self.eps = c["rms_norm_eps"]
        self.theta = float(c.get("rope_theta", 10000.0))
        self.rope_scaling = c.get("rope_scaling")
        self.tied = bool(c.get("tie_word_embeddings", False))
        if c.get("hidden_act", "silu") != "silu":
            raise ValueError("only the SiLU-gated MLP is defined here")
        if c.get("use_sliding_window", False):
            raise ValueError("sliding-window attention is not part of this reference")
        # Which linear layers carry a bias, by family definition.
        self.attn_bias = {"qwen2": ("q_proj", "k_proj", "v_proj")}.get(self.family, ())
        if self.family in ("llama", "qwen3") and c.get("attention_bias", False):
            self.attn_bias = ("q_proj", "k_proj", "v_proj", "o_proj")
        self.mlp_bias = self.family == "llama" and bool(c.get("mlp_bias", False))
        self.qk_norm = self.family == "qwen3"


def rope_frequencies(cfg):
    """Angular frequency of each rotary pair, float64 [head_dim/2]."""
    d = cfg.head_dim
    freq = cfg.theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    rs = cfg.rope_scaling
    kind = None if rs is None else rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return freq
    if kind != "llama3":
        raise ValueError(f"unsupported rope scaling {kind}")
    # Llama 3.1: wavelengths shorter than original_context/high_freq_factor are kept, longer than
    # original_context/low_freq_factor are divided by `factor`, and the band between blends the two
    # linearly in original_context/wavelength.
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    ctx = rs["original_max_position_embeddings"]
    out = np.empty_like(freq)
    for i, f in enumerate(freq):
        wavelength = 2 * math.pi / f
        if wavelength < ctx / hi:
            out[i] = f
        elif wavelength > ctx / lo:
            out[i] = f / factor
        else:
            s = (ctx / wavelength - lo) / (hi - lo)
            out[i] = (1 - s) * f / factor + s * f
    return out


# ---- the model --------------------------------------------------------------------------------

def rms_norm(x, w, eps):  # x [..., D], w [D]
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate(x, cos, sin):
    """HF checkpoint layout: pair (i, i + d/2) rotates by angle i. x [heads, T, d], cos/sin [T, d/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class Decoder:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = Config(json.load(f))
        self.w = load_weights(model_dir)
        self.freq = rope_frequencies(self.cfg)
        self._check_names()

    def _check_names(self):
        """The file must hold exactly the tensors the family defines (a missing bias is an error)."""
        c, want = self.cfg, {"model.embed_tokens.weight", "model.norm.weight"}
        if not c.tied:
            want.add("lm_head.weight")
        for i in range(c.layers):
            p = f"model.layers.{i}."
            want |= {p + "input_layernorm.weight", p + "post_attention_layernorm.weight"}
            for m in ("q_proj", "k_proj", "v_proj", "o_proj"):
                want.add(p + f"self_attn.{m}.weight")
                if m in c.attn_bias:
                    want.add(p + f"self_attn.{m}.bias")
            for m in ("gate_proj", "up_proj", "down_proj"):
                want.add(p + f"mlp.{m}.weight")
                if c.mlp_bias:
                    want.add(p + f"mlp.{m}.bias")
            if c.qk_norm:
                want |= {p + "self_attn.q_norm.weight", p + "self_attn.k_norm.weight"}
        have = set(self.w) - ({"lm_head.weight"} if c.tied else set())
        if have != want:
            raise ValueError(f"weights differ from the {c.family} definition: missing "
                             f"{sorted(want - have)}, unexpected {sorted(have - want)}")

    def linear(self, x, name):  # torch.nn.Linear convention: weight [out, in]
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        return y if b is None else y + b

    def attention(self, x, i, cos, sin, visible_key, rows):
        """x [T, H] -> [R, H] for the query rows `rows` (R <= T); keys and values cover all T."""
        c, p = self.cfg, f"model.layers.{i}.self_attn."
        T, d = x.shape[0], c.head_dim
        q = self.linear(x[rows], p + "q_proj").reshape(len(rows), c.heads, d).transpose(1, 0, 2)
        k = self.linear(x, p + "k_proj").reshape(T, c.kv_heads, d).transpose(1, 0, 2)
        v = self.linear(x, p + "v_proj").reshape(T, c.kv_heads, d).transpose(1, 0, 2)
        if c.qk_norm:  # per head, over head_dim, before the rotation
            q = rms_norm(q, self.w[p + "q_norm.weight"], c.eps)
            k = rms_norm(k, self.w[p + "k_norm.weight"], c.eps)
        q = rotate(q, cos[rows], sin[rows])  # q [heads, R, d]
        k = rotate(k, cos, sin)  # k [kv_heads, T, d]
        group = c.heads // c.kv_heads  # query head h reads kv head h // group
        out = np.empty((c.heads, len(rows), d))
        # Query blocks keep the score matrix small; a block only needs keys up to its last row.
        block = 256
        for b0 in range(0, len(rows), block):
            r = rows[b0:b0 + block]
            n_keys = r[-1] + 1
            allowed = (np.arange(n_keys)[None, :] <= r[:, None]) & visible_key[None, :n_keys]
            # A row with no visible key gets uniform weights over its keys: finite, as needed; no
            # compared value depends on it (HF 4.51 eager spreads it over all T keys instead).
            dead = ~allowed.any(axis=1)
            for h in range(c.heads):
                kh, vh = k[h // group, :n_keys], v[h // group, :n_keys]
                s = q[h, b0:b0 + len(r)] @ kh.T / math.sqrt(d)  # [block, n_keys]
                s = np.where(allowed, s, -np.inf)
                s[dead] = 0.0
                e = np.exp(s - s.max(axis=1, keepdims=True))
                out[h, b0:b0 + len(r)] = (e / e.sum(axis=1, keepdims=True)) @ vh
        merged = out.transpose(1, 0, 2).reshape(len(rows), c.heads * d)
        return self.linear(merged, p + "o_proj")

    def mlp(self, x, i):  # SwiGLU: down(silu(gate(x)) * up(x))
        p = f"model.layers.{i}.mlp."
        g = self.linear(x, p + "gate_proj")
        return self.linear(g / (1 + np.exp(-g)) * self.linear(x, p + "up_proj"), p + "down_proj")

    def forward(self, ids, key_mask=None, positions=None):
        """ids [T] -> (logits [R, V], hidden [R, H]) for rows `positions` (default: all)."""
        c, T = self.cfg, len(ids)
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= c.vocab:
            raise ValueError(f"token ids must lie in [0, {c.vocab})")
        visible = np.ones(T, bool) if key_mask is None else np.asarray(key_mask) == 1
        angle = np.arange(T, dtype=np.float64)[:, None] * self.freq[None, :]  # [T, d/2]
        cos, sin = np.cos(angle), np.sin(angle)
        all_rows = np.arange(T)
        x = self.w["model.embed_tokens.weight"][ids]  # [T, H]
        for i in range(c.layers):
            # The last layer only needs the requested rows; earlier layers feed every key.
            rows = all_rows if (positions is None or i + 1 < c.layers) else np.asarray(positions)
            p = f"model.layers.{i}."
            a = self.attention(rms_norm(x, self.w[p + "input_layernorm.weight"], c.eps), i, cos, sin,
                               visible, rows)
            x = x[rows] + a
            x = x + self.mlp(rms_norm(x, self.w[p + "post_attention_layernorm.weight"], c.eps), i)
        if c.layers == 0 and positions is not None:
            x = x[np.asarray(positions)]
        h = rms_norm(x, self.w["model.norm.weight"], c.eps)
        head = self.w["model.embed_tokens.weight"] if c.tied else self.w["lm_head.weight"]
        return h @ head.T, h


def parse_ints(text):
    return [int(t) for t in text.split(",") if t.strip() != ""]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="HF folder: config.json + model.safetensors")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--ids", help="comma-separated token ids")
    g.add_argument("--random-ids", type=int, metavar="T", help="T uniform random ids (with --seed)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random-ids (default 0)")
    ap.add_argument("--key-mask", help="comma-separated 0/1 per position; 0 hides that key")
    ap.add_argument("--positions", help="comma-separated rows to keep (default: all)")
    ap.add_argument("--out", required=True, help="OUT.safetensors (logits, hidden_states, input_ids) "
                    "or OUT.npy (logits)")
    a = ap.parse_args(argv)
    m = Decoder(a.model)
    if a.ids is not None:
        ids = np.asarray(parse_ints(a.ids), dtype=np.int64)
    else:
        ids = np.random.default_rng(a.seed).integers(0, m.cfg.vocab, a.random_ids, dtype=np.int64)
    mask = parse_ints(a.key_mask) if a.key_mask else None
    if mask is not None and len(mask) != len(ids):
        ap.error(f"--key-mask has {len(mask)} entries, --ids has {len(ids)}")
    pos = parse_ints(a.positions) if a.positions else None
    if pos is not None and (min(pos) < 0 or max(pos) >= len(ids)):
        ap.error("--positions must lie in [0, T)")
    logits, hidden = m.forward(ids, mask, pos)
    if a.out.endswith(".npy"):
        np.save(a.out, logits)
    else:
        write_safetensors(a.out, {"logits": logits, "hidden_states": hidden, "input_ids": ids})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
