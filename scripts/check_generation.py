#!/usr/bin/python3
"""Checks `safekey generate` against a cache-free greedy loop over `safekey forward`'s logits.

The reference protocol is greedy decoding with repetition penalty 1.2 (vLLM's and HF's rule: every
distinct id of the prompt and of the output so far has its logit divided by the penalty when
positive, multiplied by it otherwise). This script runs `safekey generate --save-token-ids` on a
prompt file, then, for every item, re-derives each generated token from scratch: the rendered prompt
is tokenized with `safekey tokenize`, the whole sequence goes through `safekey forward` (no KV
cache, no batching), the penalty is applied here and the argmax taken, until the item's length or an
eos id. Any difference is printed and the exit status is 1.

Usage:
  scripts/check_generation.py --safekey build/release/safekey --model DIR --prompts FILE \\
      [--max-new-tokens 16] [--penalty 1.2] [--batch-size 4]
Needs Python 3 and numpy (Debian: python3-numpy). Each generated token costs one `safekey forward`
process, so keep models and lengths small.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from decoder_ref import read_safetensors  # noqa: E402  (the numpy safetensors reader)

import numpy as np  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")
    return r.stdout


def next_token(safekey, model, ids, penalty, work):
    out = os.path.join(work, "forward.safetensors")
    run([safekey, "forward", "--model", model, "--ids", ",".join(map(str, ids)), "--out", out, "--threads", "1"])
    row = read_safetensors(out)["logits"][-1].astype(np.float64)
    for t in set(ids):
        row[t] = row[t] / penalty if row[t] > 0 else row[t] * penalty
    return int(np.argmax(row))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--safekey", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--penalty", type=float, default=1.2)
    ap.add_argument("--batch-size", type=int, default=4)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        res = os.path.join(work, "results.json")
        run([a.safekey, "generate", "--model", a.model, "--prompts", a.prompts, "--out", res, "--temperature", "0",
             "--repetition-penalty", str(a.penalty), "--max-new-tokens", str(a.max_new_tokens),
             "--batch-size", str(a.batch_size), "--save-token-ids", "--threads", "1"])
        doc = json.load(open(res))
        eos = set(doc["meta_info"]["eos_token_ids"])
        bad = 0
        for item in doc["data"]:
            prompt_ids = json.loads(run([a.safekey, "tokenize", "--tokenizer", a.model, "--text", item["prompt"]]))
            if len(prompt_ids) != item["prompt_tokens"]:
                print(f"item {item['index']}: the prompt re-tokenizes to {len(prompt_ids)} ids, generate used "
                      f"{item['prompt_tokens']}")
                bad += 1
                continue
            ids, want = list(prompt_ids), []
            for _ in range(len(item["token_ids"])):
                t = next_token(a.safekey, a.model, ids, a.penalty, work)
                want.append(t)
                ids.append(t)
                if t in eos:
                    break
            same = want == item["token_ids"]
            bad += 0 if same else 1
            print(f"item {item['index']}: {len(want)} tokens, {'identical' if same else 'DIFFERENT'}"
                  + ("" if same else f"\n  generate: {item['token_ids']}\n  loop:     {want}"))
        print(f"check_generation: {len(doc['data']) - bad} of {len(doc['data'])} items identical")
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
