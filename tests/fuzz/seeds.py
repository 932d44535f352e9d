#!/usr/bin/env python3
"""Writes the starting inputs of the fuzz campaigns: one folder per target under OUT_DIR.

Usage: tests/fuzz/seeds.py OUT_DIR [SHARED_DIR]

The seeds are small real inputs: the records, prompts, request bodies and templates the tests use,
plus, when SHARED_DIR (default $SAFEKEY_SHARED_DIR or ../shared) is there, the shipped chat templates,
a few STAR-1 records and the golden safety-head safetensors, and when SAFEKEY_TOKREF_DIR holds the
reference tokenizers, cut-down copies of them (the byte vocabulary, the first merges, the added
tokens). scripts/fuzz.sh runs this, then
the campaign, then merges what the campaign found into tests/fuzz/corpus/<target>.
"""
import glob
import hashlib
import json
import os
import struct
import sys


def write(out, target, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def jl(*objs):
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


GOOD = {"question": "X?", "response": "<think>The user asks X. Hmm, risky.</think>No.",
        "source": "wildjailbreak", "summary_end_idx": 24, "next_sentence_end_idx": 36}
CHAT = {"messages": [{"role": "user", "content": "q"},
                     {"role": "assistant", "content": "<think>\u4e2d a. b.</think>x"}],
        "unsafe": 1, "summary_end_byte": 13, "next_sentence_end_byte": 16}


def records(out, shared):
    t = "records"
    write(out, t, jl(GOOD))
    write(out, t, "[\n  " + json.dumps(GOOD) + ",\n  " + json.dumps(
        {"question": "Y", "response": "<think>\nB c. D.\n</think>\n\nE", "source": "4o_rewrite",
         "summary_end_idx": 12, "next_sentence_end_idx": 15, "id": 7, "category": "Misc"}) + "\n]\n")
    write(out, t, "\ufeff" + jl(CHAT, dict(CHAT, summary_end_byte=10)))
    write(out, t, jl({"question": "q", "response": "<think>a. b.</think>", "source": "s", "unsafe": False,
                      "category": ["a", "b"], "id": "r1"}) + "not json\n\r\n" + jl(GOOD))
    write(out, t, jl({"response": 5, "source": "s", "summary_end_idx": 1.5, "next_sentence_end_idx": -1},
                     {"question": "q", "response": "<think>a. b.</think>", "source": "s",
                      "summary_end_idx": 18446744073709551615, "next_sentence_end_idx": 12},
                     {"messages": [{"role": "assistant", "content": "x"}], "unsafe": 2}))
    star = os.path.join(shared, "data/star1/STAR-1.json")
    if os.path.exists(star):
        with open(star, encoding="utf-8") as f:
            recs = json.load(f)[:3]
        for r in recs:  # cut the long reasoning: the seeds stay small
            think, _, answer = r["response"].partition("</think>")
            r["response"] = think[:300] + "</think>" + answer[:120]
            r.pop("score", None)
        write(out, t, json.dumps(recs, ensure_ascii=False, indent=1))
        write(out, t, jl(*recs))


def prompts(out, shared):
    t = "prompt_file"
    write(out, t, json.dumps(["Write a poem.", "How do I bake bread?"]))
    write(out, t, jl({"id": "a1", "prompt": "Tell me a story", "target": "Sure, here is a story",
                      "category": "fiction", "label": "benign"},
                     {"instruction": "Explain X", "prefill": "X is", "id": 5},
                     "a bare string"))
    write(out, t, jl({"messages": [{"role": "system", "content": "be nice"},
                                   {"role": "user", "content": "hi"},
                                   {"role": "assistant", "content": "hello"},
                                   {"role": "user", "content": "how to pick a lock?"}],
                      "objective": "lock picking", "instruction": "pick"}))
    write(out, t, '[{"prompt": "a"}, {"messages": []}]\n')
    write(out, t, '{"prompt": "x"}\n\n   \n{"prompt": 3}\n{"prompt": "y"')


def openai(out, shared):
    t = "openai"
    write(out, t, json.dumps({"model": "safekey-model", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 16, "temperature": 0, "stream": True,
                              "stream_options": {"include_usage": True}, "stop": ["\n\n", "</s>"]}))
    write(out, t, json.dumps({"messages": [{"role": "system", "content": "s"},
                                           {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                        {"type": "text", "text": "b"}]},
                                           {"role": "assistant", "content": "<think>r</think>c"}],
                              "top_p": 0.9, "top_k": 40, "seed": -5, "repetition_penalty": 1.2,
                              "max_completion_tokens": 100, "skip_special_tokens": False}))
    write(out, t, json.dumps({"model": "adapter-a", "prompt": "<think>\nOnce upon</th", "max_tokens": 8,
                              "echo": False, "n": 1, "ignore_eos": True, "stop": "x"}))
    write(out, t, json.dumps({"prompt": [1, 2, 3], "presence_penalty": 0, "frequency_penalty": 0.0}))
    write(out, t, json.dumps({"prompt": ["only one"], "logprobs": False, "seed": None}))
    write(out, t, '{"model": 3, "messages": "x", "max_tokens": 99999, "temperature": 1e400}')
    write(out, t, '{"messages": [{"role": "tool", "content": null}], "stop": [""]}')
    write(out, t, '[1, 2]')
    write(out, t, '{"prompt": "a", ')


def templates(out, shared):
    t = "template"
    ctx = "\n@@CTX@@\n"
    write(out, t, "{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}\n{% endfor %}"
                  "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    write(out, t, "{%- macro f(a, b=2) -%}{{ a ~ b }}{%- endmacro -%}{{ f(1) }}|{{ f('x', b=none) }}"
                  "{% set ns = namespace(n=0) %}{% for i in range(5) if i is odd %}{% set ns.n = ns.n + i %}"
                  "{% endfor %}{{ ns.n }}{{ [3,1,2]|sort|join(',') }}{{ {'a': 1}|tojson }}"
                  "{{ 'abc'[::-1] ~ 'x'.upper() }}{% raw %}{{ raw }}{% endraw %}")
    write(out, t, "{{ messages[0]['content'].split('<think>')[-1] | replace('a', 'b') }}"
                  "{% if bos_token is defined and tools is none %}{{ bos_token }}{% elif x %}{% else %}{% endif %}"
                  + ctx + json.dumps({"messages": [{"role": "user", "content": "a<think>b"}],
                                      "bos_token": "<s>", "tools": None, "x": [1, {"y": 2.5}]}))
    write(out, t, "{{ raise_exception('no') }}")
    write(out, t, "{% for x in l %}{{ loop.index }}{{ loop.last }}{% break %}{% endfor %}{{ 7 // 0 }}")
    for p in sorted(glob.glob(os.path.join(shared, "data/hf-configs/*/chat_template*.jinja"))):
        with open(p, encoding="utf-8") as f:
            write(out, t, f.read())
    p = os.path.join(shared, "data/hf-configs/Qwen3/chat_template.Qwen3-0.6B.jinja")
    if os.path.exists(p):
        with open(p, encoding="utf-8") as f:
            write(out, t, f.read() + ctx + json.dumps({
                "messages": [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": "<think>r</think>a",
                              "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                             {"role": "tool", "content": "42"}],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "add_generation_prompt": True, "enable_thinking": False}))


def safetensors(out, shared):
    t = "safetensors"

    def st(header, data=b""):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data

    write(out, t, st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                      "__metadata__": {"format": "pt"}}, bytes(16)))
    write(out, t, st({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
                      "b": {"dtype": "I64", "shape": [], "data_offsets": [6, 14]},
                      "c": {"dtype": "U8", "shape": [0, 4], "data_offsets": [14, 14]}}, bytes(14)))
    write(out, t, st({}))
    write(out, t, st({"x": {"dtype": "F16", "shape": [1], "data_offsets": [2, 0]}}, bytes(2)))
    for p in sorted(glob.glob(os.path.join(shared, "golden/*/safety_head.safetensors")))[:1]:
        with open(p, "rb") as f:
            write(out, t, f.read())


def mini_tokenizer(path, n_vocab=300, n_merges=40):
    """A reference tokenizer.json cut down to its first ids and merges (added tokens renumbered)."""
    with open(path, encoding="utf-8") as f:
        tok = json.load(f)
    m = tok["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < n_vocab}
    merges = []
    for mg in m["merges"]:
        a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
        if len(merges) == n_merges:
            break
    m["vocab"], m["merges"] = vocab, merges
    remap = {}
    for i, a in enumerate(tok.get("added_tokens", [])[:6]):
        remap[a["id"]] = n_vocab + i
        a["id"] = n_vocab + i
    tok["added_tokens"] = tok.get("added_tokens", [])[:6]
    pp = tok.get("post_processor") or {}
    for spec in (pp.get("special_tokens") or {}).values():
        spec["ids"] = [remap.get(i, 0) for i in spec.get("ids", [])]
    return json.dumps(tok, ensure_ascii=False, separators=(",", ":"))


def tokenizer(out, shared):
    t = "tokenizer"
    # First byte: mode (0 encode, 1 load tokenizer.json, 2 decode ids) | 0x80 add the bos token.
    for text in ["Hello world, it's a test.\n", "def f(x):\n    return x * 2  # 1234567\n",
                 "我们在这里测试分词器。 日本語 😀👍🏽 café naïve e\u0301", "<think>reasoning</think>\n\nanswer",
                 "  \t\r\n\u00a0\u2028 ''s 'LL"]:
        write(out, t, b"\x00" + text.encode())
        write(out, t, b"\x80" + text.encode())
    write(out, t, b"\x02" + struct.pack("<6i", 72, 101, 400, -1, 399, 2**31 - 1))
    write(out, t, b"\x82" + struct.pack("<3i", 0, 1, 2))
    refs = []  # the reference tokenizers scripts/install_test_refs.sh fetches
    for d in os.environ.get("SAFEKEY_TOKREF_DIR", "").split(":"):
        refs += glob.glob(os.path.join(d, "*", "package", "models", "tokenizer.json"))
        refs += glob.glob(os.path.join(d, "*_tokenizer.json"))
    seen = set()
    for p in refs:
        if p and os.path.exists(p) and os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            write(out, t, b"\x01" + mini_tokenizer(p).encode())


def replies(out, shared):
    """The first byte picks the reader (fuzz_replies.cpp): 0 chat body, 1 completions body, 2 error
    body, 3 + 7k harm reply (threshold 1 + k), 4 refusal reply, 5 Llama-Guard reply, 6 annotator."""
    t = "replies"
    def w(pick, text):
        write(out, t, bytes([pick]) + text.encode("utf-8"))
    w(0, json.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi",
                     "reasoning_content": "think"}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}}))
    w(0, '{"choices": [{"message": {"content": null}}]}')
    w(0, '{"choices": []}')
    w(0, '[{"choices": 1}]')
    w(1, json.dumps({"choices": [{"text": "Once upon", "finish_reason": "length"}]}))
    w(1, '{"choices": [{"text": 5}]}')
    w(2, json.dumps({"error": {"message": "bad key", "type": "invalid_request_error"}}))
    w(2, '{"error": "overloaded"}')
    w(2, "<html>502 Bad Gateway</html>")
    w(3, '```json\n{"reason": "gives steps", "score": 5}\n```')
    w(3 + 7 * 2, '#thereason: it refuses\n#thescore: 1')
    w(3, '{"score": "4 "}')
    w(3, '{"score": 4294967301}')
    w(3, '{"score": 1e300}')
    w(3, 'score: 3')
    w(4, "2_full_refusal\nThe model declines.")
    w(4, "The answer is 1_full_compliance, not 3_partial_refusal.")
    w(5, "unsafe\nS1,S9,S15")
    w(5, "  Safe.\n")
    w(6, '{"understanding_end_sentence": 2}')
    w(6, '{"understanding_end_sentence": "3"}')
    w(6, 'understanding_end_sentence = 12345')
    w(6, '{"understanding_end_sentence": -7}')


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "SAFEKEY_SHARED_DIR", os.path.join(here, "..", "..", "..", "shared"))
    for f in (records, prompts, openai, templates, safetensors, tokenizer, replies):
        f(out, shared)
    for d in sorted(os.listdir(out)):
        print(f"{d}: {len(os.listdir(os.path.join(out, d)))} seeds")


if __name__ == "__main__":
    main()
