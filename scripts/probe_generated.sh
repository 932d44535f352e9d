#!/usr/bin/env bash
# The linear probe on the state at the end of the U each model of a finished toy-world run writes
# itself (`safekey analyze probe --generated`), beside the run's teacher-forced probe
# (docs/toy_world.md, "World v2: the probe on the model's own U"). Writes RUN_DIR/analysis_generated/
# NAME.json and NAME.u.jsonl per model, and prints the per-method table (mean ± 95% CI over seeds).
# Usage: scripts/probe_generated.sh RUN_DIR   env: SAFEKEY (default build/release/safekey)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${1:?usage: scripts/probe_generated.sh RUN_DIR}
SK=${SAFEKEY:-$ROOT/build/release/safekey}
DATA="$RUN/world/analysis_probe.json"
OUT="$RUN/analysis_generated"
mkdir -p "$OUT"
model_of() {  # the last checkpoint's model folder of a training run
  ls -d "$1"/checkpoint-*/model | sort -t- -k2 -n | tail -1
}
run() {  # NAME MODEL_DIR
  [ -f "$OUT/$1.json" ] && return 0
  "$SK" analyze probe --model "$2" --data "$DATA" --generated --u-out "$OUT/$1.u.jsonl" --out "$OUT/$1.json" \
    >/dev/null
  echo "probe_generated: $1 done" >&2
}
run base "$(model_of "$RUN/stage1")"
for d in "$RUN"/stage2/*-s*; do
  name=$(basename "$d")
  case "$name" in sft-s*|safekey-s*|safekey_pf-s*) run "$name" "$(model_of "$d")" ;; esac
done
python3 - "$RUN" <<'PY'
import json, math, os, re, sys
run = sys.argv[1]
T = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
def ci(xs):
    n = len(xs); m = sum(xs) / n
    if n < 2: return m, float("nan")
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    return m, (T[n - 2] if n - 1 <= len(T) else 1.96) * sd / math.sqrt(n)
def fmt(m, h): return f"{100*m:.1f}" if math.isnan(h) else f"{100*m:.1f} ± {100*h:.1f}"
rows = {}
for f in sorted(os.listdir(f"{run}/analysis_generated")):
    if not f.endswith(".json"): continue
    name = f[:-5]
    g = json.load(open(f"{run}/analysis_generated/{f}"))
    tf = json.load(open(f"{run}/analysis/{name}.json"))["probe"]
    n = g["train"] + g["test"] + g["skipped"]
    mm = re.fullmatch(r"(.+)-s(\d+)", name)
    method, seed = (mm.group(1), int(mm.group(2))) if mm else (name, 0)
    rows.setdefault(method, {})[seed] = (g["test_accuracy"], tf["test_accuracy"], (g["train"] + g["test"]) / n,
                                         g["mean_u_tokens"])
print("| method | seeds | generated-U probe | teacher-forced probe | generated − teacher-forced | replies with a U | U tokens |")
print("|---|---|---|---|---|---|---|")
for method in ["base", "sft", "safekey", "safekey_pf"]:
    if method not in rows: continue
    v = list(rows[method].values())
    print(f"| {method} | {len(v)} | {fmt(*ci([x[0] for x in v]))} | {fmt(*ci([x[1] for x in v]))} | "
          f"{fmt(*ci([x[0] - x[1] for x in v]))} | {fmt(*ci([x[2] for x in v]))} | {sum(x[3] for x in v) / len(v):.1f} |")
for a in ["safekey", "safekey_pf"]:
    if a in rows and "sft" in rows:
        seeds = sorted(set(rows[a]) & set(rows["sft"]))
        d = [rows[a][s][0] - rows["sft"][s][0] for s in seeds]
        print(f"\n{a} − sft, generated-U probe, paired over {len(seeds)} seeds: {fmt(*ci(d))} points")
PY
