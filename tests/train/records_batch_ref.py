#!/usr/bin/python3
"""Independent reference for tests/train/records_batch_conformance.cpp: STAR-1 records -> the
training batch (input_ids, labels, k_mask, attn_mask, c_span, K span, unsafe), computed from the
definitions in SPEC.md section 3 and docs/chat_template.md with the reference tools only:
  - the chat template rendered by Jinja2 exactly as transformers does (the environment of
    ../shared/tools/tokref/render_chat.py), with the SafeKey reference's keep-thinking edit done as
    the reference does it: a textual `template.replace(CLAUSE, "")`;
  - the HF Rust tokenizers (npm "tokenizers", driven by tests/text/tokenizer_ref.js) for ids and
    character offsets;
  - the response normalised with Python's `re` as in the reference's train/sft.py.
Nothing here calls the C++ code. Token spans come from character offsets: the response is located
by rendering the same conversation with a placeholder as the assistant content; K = the tokens whose
characters overlap K's characters, U = the tokens after the query and before K.

usage: /usr/bin/python3 records_batch_ref.py SHARED_DIR TOKREF_DIR SOURCE_DIR OUT_DIR
Writes OUT_DIR/{qwen,llama}/ (tokenizer.json + tokenizer_config.json: a model folder's tokenizer
files), one records JSONL per group, train.jsonl, and last OUT_DIR/cases.json (paths in it are
relative to OUT_DIR):
  {"templates": {name: {"model_dir", "pad_id"}},
   "groups": [{"name", "template", "records", "max_seq_len", "reference_compat", "batch_size",
               "expect_error": null | [substrings of the error],
               "batches": [{"input_ids", "labels", "k_mask", "attn_mask": [B][T],
                            "c_span", "k_span": [B][2], "length", "unsafe": [B],
                            "truncated_left": [B], "reference_c_span": [B][2]}]}],
   "stats": {...}}
"""
import json
import os
import re
import subprocess
import sys

SHARED, TOKREF, SOURCE, OUT = sys.argv[1:5]
sys.path.insert(0, os.path.join(SHARED, "tools", "tokref"))
import render_chat  # noqa: E402  (tojson, raise_exception, strftime_now as transformers)
from jinja2.ext import loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

# The reference's keep-thinking edit (SafeKey train/sft.py), applied to the template text.
THINK_CLAUSE = "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
PLACEHOLDER = "\ue000RESPONSE\ue001"
HF = os.path.join(SHARED, "data", "hf-configs", "reconstructed")


def normalize(resp):
    """train/sft.py: strip, unescape '\\/', split with the dotall regex, rebuild."""
    s = resp.strip().replace("\\/", "/")
    m = re.search(r"<think>\s*(.*?)\s*</think>\s*(.*)", s, re.S)
    thinking, answer = m.group(1), m.group(2)
    return "<think>\n" + thinking + "\n</think>\n\n" + answer, thinking


def sentence_ends(thinking):
    """Ends of the sentences of the thinking (after ., ! or ? and closing quotes), its end last."""
    ends = [m.end() for m in re.finditer(r"[.!?]+[\"'”’)\]]*(?=\s)", thinking)]
    if not ends or ends[-1] != len(thinking):
        ends.append(len(thinking))
    return ends


def offsets_for(mode, thinking):
    """(summary_end_idx, next_sentence_end_idx) into the normalised response for an annotation mode.
    0: U = first sentence, K = the second; 1: U ends at the first blank line, K runs to the next
    sentence end (Qwen/Llama merge ".\\n\\n" into one token: U|K inside a token); 2: both
    boundaries inside words; 3: K = the last sentence of the thinking, ending where it ends;
    4: U = two sentences, K = the third. None when the thinking does not allow it."""
    b = len("<think>\n")
    e = sentence_ends(thinking)
    if len(e) < 4:
        return None
    if mode == 0:
        return b + e[0], b + e[1]
    if mode == 1:
        p = thinking.find("\n\n")
        if p <= 0:
            return None
        nxt = [x for x in e if x > p + 2]
        return (b + p, b + nxt[0]) if nxt else None
    if mode == 2:
        s, k = e[0] + 3, e[1] - 2
        if not (thinking[e[0]:s].strip() and s < k and thinking[k - 1].isalnum() and thinking[k].isalnum()):
            return None
        return b + s, b + k
    if mode == 3:
        return b + e[-2], b + len(thinking)
    return b + e[1], b + e[2]


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = render_chat.tojson
    env.globals["raise_exception"] = render_chat.raise_exception
    env.globals["strftime_now"] = render_chat.strftime_now
    return env


def encode_all(tokenizer_json, texts):
    """ids and code-point offsets from the HF Rust tokenizers, add_special_tokens=False."""
    inp, out = os.path.join(OUT, "tok_in.json"), os.path.join(OUT, "tok_out.json")
    with open(inp, "w", encoding="utf-8") as f:
        json.dump({"plain": texts}, f, ensure_ascii=False)
    env = dict(os.environ, NODE_PATH=os.path.join(TOKREF, "node_modules"))
    subprocess.run(["node", os.path.join(SOURCE, "tests", "text", "tokenizer_ref.js"), tokenizer_json, inp, out],
                   check=True, env=env)
    result = json.load(open(out, encoding="utf-8"))["plain"]
    os.remove(inp)
    os.remove(out)
    return result


def write_tokenizers():
    """Model folders with the tokenizer files. R1-Distill-Qwen: the tokenizer.json rebuilt from Qwen3
    by ../shared/tools/tokref (TOKENIZERS.md section 4). R1-Distill-Llama: Llama 3's tokenizer.json
    with the distill's added-token names (TOKENIZERS.md section 5: 128000/128001 renamed, <｜User｜>
    128011, <｜Assistant｜> 128012, </think> 128014, <think> 128013 inferred)."""
    dirs = {}
    q = os.path.join(OUT, "qwen")
    os.makedirs(q, exist_ok=True)
    with open(os.path.join(TOKREF, "r1_distill_qwen_tokenizer.json"), encoding="utf-8") as f:
        open(os.path.join(q, "tokenizer.json"), "w", encoding="utf-8").write(f.read())
    open(os.path.join(q, "tokenizer_config.json"), "w", encoding="utf-8").write(
        open(os.path.join(HF, "DeepSeek-R1-Distill-Qwen-7B", "tokenizer_config.json"), encoding="utf-8").read())
    dirs["qwen"] = q
    ll = os.path.join(OUT, "llama")
    os.makedirs(ll, exist_ok=True)
    tok = json.load(open(os.path.join(TOKREF, "llama3_1", "package", "models", "tokenizer.json"), encoding="utf-8"))
    rename = {128000: BOS, 128001: EOS, 128011: "<｜User｜>", 128012: "<｜Assistant｜>", 128013: "<think>",
              128014: "</think>"}
    old_bos = None
    for t in tok["added_tokens"]:
        if t["id"] in rename:
            if t["id"] == 128000:
                old_bos = t["content"]
            t["content"] = rename[t["id"]]
    for p in tok["post_processor"]["processors"]:
        if p["type"] == "TemplateProcessing":
            for seq in ("single", "pair"):
                for piece in p[seq]:
                    if "SpecialToken" in piece and piece["SpecialToken"]["id"] == old_bos:
                        piece["SpecialToken"]["id"] = BOS
            st = p["special_tokens"].pop(old_bos)
            st["id"], st["tokens"] = BOS, [BOS]
            p["special_tokens"][BOS] = st
    json.dump(tok, open(os.path.join(ll, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    open(os.path.join(ll, "tokenizer_config.json"), "w", encoding="utf-8").write(
        open(os.path.join(HF, "DeepSeek-R1-Distill-Llama-8B", "tokenizer_config.json"), encoding="utf-8").read())
    dirs["llama"] = ll
    return dirs


def pad_id_of(tokenizer_json):
    tok = json.load(open(tokenizer_json, encoding="utf-8"))
    return next(t["id"] for t in tok["added_tokens"] if t["content"] == EOS)


class Example:
    """One record on one template, before truncation: ids, query length, K span, label."""

    def __init__(self, rec, enc_input, enc_query, texts):
        input_text, query_text, resp_start = texts
        resp = rec["norm"]
        assert input_text.startswith(query_text), "query is not a prefix of the input"
        assert input_text[resp_start:resp_start + len(resp)] == resp
        self.ids, offs = enc_input["ids"], enc_input["offsets"]
        qids = enc_query["ids"]
        assert self.ids[:len(qids)] == qids, "query tokens are not a prefix"
        self.query_len = len(qids)
        kcb, kce = resp_start + rec["summary_end_idx"], resp_start + rec["next_sentence_end_idx"]
        k = [i for i, (s, e) in enumerate(offs) if s < kce and e > kcb and e > s]
        self.k_begin, self.k_end = k[0], k[-1] + 1
        assert self.k_begin > self.query_len, "empty U"
        # U tokens: after the query and before K, and every one of them ends before K starts.
        for i in range(self.query_len, self.k_begin):
            assert offs[i][1] <= kcb and offs[i][0] >= len(query_text), (i, offs[i], kcb)
        self.straddle_start = offs[self.k_begin][0] < kcb
        self.straddle_end = offs[self.k_end - 1][1] > kce
        self.k_at_thinking_end = input_text[kce:kce + len("\n</think>")] == "\n</think>"
        self.unsafe = 0 if rec["source"] == "4o_rewrite" else 1


def truncate(ex, max_len, compat):
    """The documented policy (docs/training.md, docs/chat_template.md). Returns (row, error)."""
    n = len(ex.ids)
    left = right = 0
    if max_len and n > max_len:
        if ex.k_end <= max_len:
            right = n - max_len
        elif not compat:
            return None, "max_seq_len"
        else:
            left = n - max_len
            if left > ex.query_len:
                return None, "would cut into U"
            if left == ex.query_len:
                return None, "query_len"
    ids = ex.ids[left:n - right]
    q = ex.query_len - left
    row = {
        "ids": ids,
        "labels": [-100] * q + ids[q:],
        "query_len": q,
        "c_span": [ex.query_len - left, ex.k_begin - left],
        "k_span": [ex.k_begin - left, ex.k_end - left],
        "unsafe": ex.unsafe,
        "truncated_left": left,
        # The reference: c_span = [len(query_ids), k_start) in untruncated coordinates, never shifted.
        "reference_c_span": [ex.query_len, ex.k_begin],
    }
    return row, None


def collate(rows, pad_id, batch_size):
    batches = []
    for b0 in range(0, len(rows), batch_size):
        part = rows[b0:b0 + batch_size]
        T = max(len(r["ids"]) for r in part)
        bt = {k: [] for k in ("input_ids", "labels", "k_mask", "attn_mask", "c_span", "k_span", "length",
                              "unsafe", "truncated_left", "reference_c_span")}
        for r in part:
            L = len(r["ids"])
            bt["input_ids"].append(r["ids"] + [pad_id] * (T - L))
            bt["labels"].append(r["labels"] + [-100] * (T - L))
            kb, ke = r["k_span"]
            bt["k_mask"].append([1 if kb <= t < ke else 0 for t in range(T)])
            bt["attn_mask"].append([0 if t < r["query_len"] else 1 for t in range(T)])
            for key in ("c_span", "k_span", "unsafe", "truncated_left", "reference_c_span"):
                bt[key].append(r[key])
            bt["length"].append(L)
        batches.append(bt)
    return batches


def record_json(rec):
    return {"id": rec["id"], "question": rec["question"], "response": rec["response"], "source": rec["source"],
            "category": rec["category"], "summary_end_idx": rec["summary_end_idx"],
            "next_sentence_end_idx": rec["next_sentence_end_idx"]}


def main():
    os.makedirs(OUT, exist_ok=True)
    star = json.load(open(os.path.join(SHARED, "data", "star1", "STAR-1.json"), encoding="utf-8"))
    dirs = write_tokenizers()
    env = make_env()
    templates = {}
    for name, d in dirs.items():
        src = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))["chat_template"]
        assert THINK_CLAUSE in src, name
        templates[name] = env.from_string(src.replace(THINK_CLAUSE, ""))

    # Candidate records: the first 400 STAR-1 records, each annotated in one of five modes (by
    # position) and, for the left-truncation group, also with K at the end of the thinking.
    cands, tail = [], []
    for i, r in enumerate(star[:400]):
        norm, thinking = normalize(r["response"])
        base = {"id": r["id"], "question": r["question"], "response": r["response"], "norm": norm,
                "category": r["category"], "source": "4o_rewrite" if i % 7 == 3 else r["source"]}
        mode = len(cands) % 5
        o = offsets_for(mode, thinking)
        if o:
            cands.append(dict(base, mode=mode, summary_end_idx=o[0], next_sentence_end_idx=o[1]))
        o = offsets_for(3, thinking)
        if o:
            tail.append(dict(base, mode=3, summary_end_idx=o[0], next_sentence_end_idx=o[1]))
    assert len(cands) >= 80, len(cands)

    def texts_of(tname, rec):
        t = templates[tname]
        ctx = {"bos_token": BOS, "eos_token": EOS}
        user = {"role": "user", "content": rec["question"]}
        input_text = t.render(messages=[user, {"role": "assistant", "content": rec["norm"]}],
                              add_generation_prompt=False, **ctx)
        query_text = t.render(messages=[user], add_generation_prompt=True, **ctx)
        marked = t.render(messages=[user, {"role": "assistant", "content": PLACEHOLDER}],
                          add_generation_prompt=False, **ctx)
        return input_text, query_text, marked.index(PLACEHOLDER)

    stats = {}
    groups = []
    meta = {}
    for tname, d in dirs.items():
        tok_json = os.path.join(d, "tokenizer.json")
        pad_id = pad_id_of(tok_json)
        meta[tname] = {"model_dir": os.path.basename(d), "pad_id": pad_id}
        pool = cands[:62] + tail
        texts = [texts_of(tname, r) for r in pool]
        enc = encode_all(tok_json, [t[0] for t in texts] + [t[1] for t in texts])
        n = len(pool)
        exs = [Example(pool[i], enc[i], enc[n + i], texts[i]) for i in range(n)]
        main_ex, tail_ex = exs[:62], exs[62:]

        def add_group(gname, recs, ex_list, max_len, compat, batch_size, expect_error=None):
            path = os.path.join(OUT, f"{tname}_{gname}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for r in recs:
                    f.write(json.dumps(record_json(r), ensure_ascii=False) + "\n")
            rows, err = [], None
            for line, ex in enumerate(ex_list, 1):
                row, e = truncate(ex, max_len, compat)
                if e:
                    err = err or [f"{os.path.basename(path)}:{line}", e]
                else:
                    rows.append(row)
            assert (err is None) == (expect_error is None), (gname, err)
            g = {"name": gname, "template": tname, "records": os.path.basename(path), "max_seq_len": max_len,
                 "reference_compat": compat, "batch_size": batch_size, "expect_error": err,
                 "batches": [] if err else collate(rows, pad_id, batch_size)}
            groups.append(g)
            return rows

        # 1. Sixty records, no truncation, batches of 4 (the last row count differs).
        main_recs, main_exs = cands[:62], main_ex[:62]
        add_group("main", main_recs, main_exs, 8192, False, 4)
        s = {"records": len(main_exs),
             "u_k_boundary_inside_token": sum(e.straddle_start for e in main_exs),
             "k_end_inside_token": sum(e.straddle_end for e in main_exs),
             "k_at_thinking_end": sum(e.k_at_thinking_end for e in main_exs),
             "benign": sum(1 - e.unsafe for e in main_exs)}

        # 2. Default policy, rows longer than max_seq_len with K inside the first tokens: the head stays.
        idx = sorted(range(len(main_exs)), key=lambda i: main_exs[i].k_end)[:8]
        m = max(main_exs[i].k_end for i in idx) + 3
        add_group("head", [main_recs[i] for i in idx], [main_exs[i] for i in idx], m, False, 4)
        s["head_truncated"] = sum(len(main_exs[i].ids) > m for i in idx)

        # 3. --reference-compat with a max_seq_len that forces the left cut (into the query, never
        #    through all of it) on some rows; others fit or keep their head.
        def left_ok(e, mm):
            return e.k_end > mm and len(e.ids) - mm < e.query_len and len(e.ids) > mm

        cand_m = sorted({len(e.ids) - e.query_len + 1 + j for e in tail_ex for j in (0, 3, 10)})
        best = max(cand_m, key=lambda mm: (sum(left_ok(e, mm) for e in tail_ex), mm))
        li = [i for i, e in enumerate(tail_ex) if left_ok(e, best)][:4]
        fit = [i for i, e in enumerate(main_exs) if len(e.ids) <= best][:2]
        head = [i for i, e in enumerate(main_exs) if e.k_end <= best < len(e.ids)][:2]
        recs = [tail[i] for i in li] + [main_recs[i] for i in fit + head]
        ex_list = [tail_ex[i] for i in li] + [main_exs[i] for i in fit + head]
        add_group("compat_left", recs, ex_list, best, True, 3)
        s["compat_left_rows"], s["compat_fit_rows"], s["compat_head_rows"] = len(li), len(fit), len(head)

        # 4. A query longer than max_seq_len (default policy): an error naming the record (line 2).
        longq = max(range(len(main_exs)), key=lambda i: main_exs[i].query_len)
        m = main_exs[longq].query_len - 1
        sel = [next(i for i, e in enumerate(main_exs) if e.k_end <= m), longq]
        add_group("query_too_long", [main_recs[i] for i in sel], [main_exs[i] for i in sel], m, False, 2,
                  expect_error=True)
        # 5. --reference-compat when even the response is longer than max_seq_len: an error, line 1.
        sel = [longq, 0]
        add_group("compat_cuts_u", [main_recs[i] for i in sel], [main_exs[i] for i in sel],
                  main_exs[longq].k_end - main_exs[longq].query_len - 1, True, 2, expect_error=True)
        stats[tname] = s

        # Training data for the train test: 8 records whose K ends within 96 tokens.
        if tname == "qwen":
            short = [i for i, e in enumerate(main_exs) if e.k_end <= 96][:8]
            with open(os.path.join(OUT, "train.jsonl"), "w", encoding="utf-8") as f:
                for i in short:
                    f.write(json.dumps(record_json(main_recs[i]), ensure_ascii=False) + "\n")
            stats["train_records"] = len(short)

    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"templates": meta, "groups": groups, "stats": stats}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
