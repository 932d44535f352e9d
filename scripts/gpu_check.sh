#!/usr/bin/env bash
# The GPU checks, as one run on a machine with a CUDA GPU, PyTorch and transformers but no network:
#
#   scripts/gpu_check.sh prepare   (here, with network, as root) downloads the Debian -dev packages
#                                  the build needs as .debs and copies the golden models into
#                                  build/gpu/ (git-ignored; carry that folder to the GPU machine)
#   scripts/gpu_check.sh run       (there, from the checkout's root) unpacks the .debs into
#                                  build/gpu/prefix, builds against PyTorch's own libtorch (CUDA) and
#                                  runs, writing every log to $OUT (default build/gpu/out):
#     1. the golden conformance on the CPU and on CUDA in float32 (golden tolerance) and bfloat16,
#        each maximum judged against its dtype's bound (judge_conformance);
#     2. bench_model: R1-Distill-Qwen-1.5B-shaped forward+backward at T=2048 in bfloat16, next to
#        bench/hf_model.py (transformers, same shape, same FLOP count);
#     3. training: the toy world's stage-2 data on its stage-1 model (safekey demo --quick on the CPU),
#        40 SafeKey steps each on the CPU in float32 and on CUDA in float32 and bfloat16
#        (bf16 weights with float32 master weights), and the per-step loss differences, judged
#        against bounds derived from each dtype's unit roundoff (compare_losses);
#     4. the distributed path on one GPU: the CUDA float32 run again under `safekey launch
#        --nproc-per-node 1` (a real NCCL process group of one, ZeRO-2), compared with the plain run;
#     5. generation and `analyze probe --generated` with the toy model on CUDA against the CPU
#        (greedy float32: at least 80% of the replies and of the U texts identical);
#     6. scale: an R1-Distill-Qwen-1.5B-shaped model (random weights) trains 3 SafeKey steps in bf16
#        at sequence 4096 with gradient checkpointing and chunked cross-entropy; the highest
#        nvidia-smi memory.used during the run next to `safekey train --plan` for the same settings.
# Each step's failure is reported and the next step still runs; the exit status counts failures.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/build/gpu
DEBS=(nlohmann-json3-dev libonig-dev libonig5 libutf8proc-dev libutf8proc2 libcpp-httplib-dev
      libcpp-httplib0.11 libssl-dev libssl3 libbrotli-dev libbrotli1 zlib1g-dev libgtest-dev
      libgmock-dev libyaml-cpp-dev libyaml-cpp0.7)

prepare() {
  set -e
  mkdir -p "$G/debs"
  (cd "$G/debs" && apt-get download "${DEBS[@]}")
  local shared=${SAFEKEY_SHARED_DIR:-$ROOT/../shared}
  rm -rf "$G/golden" && cp -r "$shared/golden" "$G/golden"
  du -sh "$G"
  echo "carry: build/gpu   command: bash scripts/gpu_check.sh run"
}

failures=0
step() {  # step <name> <command...>: runs it, logs to $OUT/<name>.txt, counts a failure
  local name=$1
  shift
  echo "== $name: $*"
  if "$@" >"$OUT/$name.txt" 2>&1; then
    tail -n 30 "$OUT/$name.txt"
  else
    echo "!! $name failed (exit $?)"
    tail -n 40 "$OUT/$name.txt"
    failures=$((failures + 1))
  fi
}

build() {
  local P=$G/prefix torch_dir
  mkdir -p "$P"
  for f in "$G"/debs/*.deb; do  # dpkg -x, or ar + tar where dpkg is missing
    if command -v dpkg >/dev/null; then dpkg -x "$f" "$P"; else
      local m
      m=$(ar t "$f" | grep '^data\.tar')
      ar p "$f" "$m" >"$G/$m" && tar -xf "$G/$m" -C "$P" && rm -f "$G/$m"
    fi
  done
  torch_dir=${TORCH_DIR:-$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch}
  # The packages' .pc files say prefix=/usr: the sysroot variable points them into the prefix.
  export PKG_CONFIG_LIBDIR=$P/usr/lib/x86_64-linux-gnu/pkgconfig:$P/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$P
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # nccl.h and the CUDA runtime headers of PyTorch's wheels live in the nvidia-* packages.
  local nccl_inc cudart_inc
  nccl_inc=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "include"))' 2>/dev/null)
  cudart_inc=$(python3 -c 'import nvidia.cuda_runtime, os; print(os.path.join(list(nvidia.cuda_runtime.__path__)[0], "include"))' 2>/dev/null)
  cmake -S "$ROOT" -B "$G/b" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$torch_dir" \
    -DNCCL_INCLUDE_DIR="$nccl_inc" -DCUDART_INCLUDE_DIR="$cudart_inc" \
    -DCMAKE_PREFIX_PATH="$P/usr" -DOPENSSL_ROOT_DIR="$P/usr" \
    -DCMAKE_BUILD_RPATH="$P/usr/lib/x86_64-linux-gnu" &&
    { [ -n "${CONFIGURE_ONLY:-}" ] ||
      cmake --build "$G/b" -j "$(nproc)" --target safekey test_model_golden_conformance bench_model; }
}

# Thresholds, from the dtype's unit roundoff u (float32 2^-24 = 6.0e-8, bfloat16 2^-8 = 3.9e-3):
# - step 1 (same weights, same batch): only kernel rounding differs. A loss is a mean over ~1e4
#   token losses, each from reductions over hidden/vocab sizes ~1e3, so independent rounding errors
#   reach about u*sqrt(1e7) ~ 3e3 u relative: float32 2e-4. bfloat16 runs (bf16 weights and
#   activations against float32) differ by the bf16 rounding of every layer, a few u per layer
#   through a handful of layers: 0.05 (~13 u), the bound the golden bf16 conformance uses too.
# - every later step: AdamW's update is normalised (m/sqrt(v)), so a rounding-level gradient
#   difference on a small coordinate can move that weight by a whole learning-rate step; over 40
#   steps the runs drift apart beyond step 1. Allowed: min(50x the step-1 bound, 0.25), i.e.
#   float32 1e-2 and bfloat16 0.25 (past a quarter the runs no longer train alike), and twice
#   that for grad_norm, the most sensitive quantity.
# A larger difference means a real discrepancy (TF32 matmuls left on, a kernel computing something
# else, a dtype leak), not rounding.
compare_losses() {  # compare_losses float32|bfloat16 REF RUN...: per-step loss of runs' metrics.jsonl
  python3 - "$@" <<'EOF'
import json, sys
dtype, paths = sys.argv[1], sys.argv[2:]
first_bound = {"float32": 2e-4, "bfloat16": 0.05}[dtype]
later_bound = min(50 * first_bound, 0.25)
runs = {p: [json.loads(l) for l in open(p + "/metrics.jsonl")] for p in paths}
names = list(runs)
ref = runs[names[0]]
bad = []
for other in names[1:]:
    first, later = {}, {}
    for step, (a, b) in enumerate(zip(ref, runs[other])):
        for k in ("loss", "sft_loss", "k_loss", "head_loss", "grad_norm"):
            d = abs(a[k] - b[k]) / max(abs(a[k]), 1e-6)
            table = first if step == 0 else later
            table[k] = max(table.get(k, 0.0), d)
    print(f"{other} vs {names[0]} over {min(len(ref), len(runs[other]))} steps, max relative difference "
          f"({dtype} bounds: step 1 {first_bound:.2g}, later {later_bound:.2g}; grad_norm 2x)")
    for k in first:
        scale = 2 if k == "grad_norm" else 1
        f, l = first[k], later.get(k, 0.0)
        ok = f <= scale * first_bound and l <= scale * later_bound
        print(f"  {k:10s} step 1 {f:.2e}  later {l:.2e}  {'ok' if ok else 'EXCEEDED'}")
        if not ok:
            bad.append(f"{other} {k}")
for p in names:
    print(p, "loss at steps 1/10/20/last:", [round(runs[p][i]["loss"], 4) for i in (0, 9, 19, -1)],
          f"{runs[p][-1]['tokens_per_s']:.0f} tok/s")
if bad:
    print("loss differences beyond the dtype's bound:", ", ".join(bad))
    sys.exit(1)
EOF
}

# The golden conformance maxima (lines `... max|diff| = D = R max|b| (device, dtype)`), judged again
# here so that the log states each maximum next to its bound: float32 <= 2e-4 absolute (the golden
# check 1e-4 + 1e-5|b| at the set's largest |b| ~ 14; ~20x the 1e-5 float32 error of the golden data
# itself); bfloat16: each op's `worst |diff|/bound` <= 1, the bound derived per op from the bf16
# rounding of its inputs (tests/model/bf16_bounds.h).
judge_conformance() {  # judge_conformance float32|bfloat16 LOG
  python3 - "$@" <<'EOF'
import re, sys
dtype, log = sys.argv[1], sys.argv[2]
bound = {"float32": 2e-4, "bfloat16": 1.0}[dtype]
unit = "absolute" if dtype == "float32" else "of the op's rounding bound"
if dtype == "float32":
    pat = re.compile(r"^\s*(.+?)\s+max\|diff\| = (\S+) = (\S+) max\|b\|")
else:  # per-op lines: `<op>  max|diff| D, worst |diff|/bound R, N over`
    pat = re.compile(r"^\s*(.+?)\s+max\|diff\| (\S+), worst \|diff\|/bound (\S+),")
worst, n, bad = (0.0, ""), 0, []
for line in open(log):
    m = pat.match(line)
    if not m:
        continue
    what, diff, ratio = m.group(1), float(m.group(2)), float(m.group(3))
    value = diff if dtype == "float32" else ratio
    n += 1
    worst = max(worst, (value, what))
    if value > bound:
        bad.append(f"{what}: {value:.3g} > {bound}")
print(f"{n} conformance maxima ({dtype}); largest {worst[0]:.3g} {unit} ({worst[1]}); bound {bound} {unit}")
if n == 0:
    print("no max|diff| lines found in", log)
    sys.exit(1)
if bad:
    print("beyond the bound:", *bad, sep="\n  ")
    sys.exit(1)
EOF
}

# Generation and the generated-U probe on CUDA against the CPU, on the toy model (float32, greedy):
# kernels round differently, so a near-tie may flip one argmax and the rest of that reply; at least
# 80% of the replies (and of the U texts) must be identical, and every reply must have its tokens.
compare_generation() {  # compare_generation <safekey> <model> <records.json> <workdir>
  local sk=$1 model=$2 records=$3 w=$4
  mkdir -p "$w"
  python3 -c "import json,sys; json.dump([r['question'] for r in json.load(open(sys.argv[1]))], open(sys.argv[2], 'w'))" \
    "$records" "$w/prompts.json" || return 1
  for dev in cpu cuda; do
    "$sk" generate --model "$model" --prompts "$w/prompts.json" --out "$w/gen-$dev.json" --max-new-tokens 96 \
      --device "$dev" --save-token-ids --overwrite || return 1
    "$sk" analyze probe --generated --model "$model" --data "$records" --device "$dev" --u-out "$w/u-$dev.jsonl" \
      --out "$w/probe-$dev.json" || return 1
  done
  python3 - "$w" <<'EOF'
import json, sys
w = sys.argv[1]
gen = {d: json.load(open(f"{w}/gen-{d}.json"))["data"] for d in ("cpu", "cuda")}
same = sum(a["token_ids"] == b["token_ids"] for a, b in zip(gen["cpu"], gen["cuda"]))
u = {d: [json.loads(l)["u"] for l in open(f"{w}/u-{d}.jsonl")] for d in ("cpu", "cuda")}
same_u = sum(a == b for a, b in zip(u["cpu"], u["cuda"]))
probe = {d: json.load(open(f"{w}/probe-{d}.json"))["test_accuracy"] for d in ("cpu", "cuda")}
n = len(gen["cpu"])
print(f"identical replies CPU vs CUDA: {same}/{n}; identical generated U: {same_u}/{len(u['cpu'])}; "
      f"probe accuracy cpu {probe['cpu']:.3f} cuda {probe['cuda']:.3f}")
empty = [i for i, it in enumerate(gen["cuda"]) if not it["token_ids"]]
sys.exit(1 if same < 0.8 * n or same_u < 0.8 * len(u["cpu"]) or empty else 0)
EOF
}

scale_1p5b() {  # scale_1p5b <safekey> <workdir> [train flags]: 1.5B bf16 seq 4096 training, peak memory vs --plan
  local sk=$1 w=$2
  shift 2
  mkdir -p "$w"
  python3 - "$w" <<'EOF'
import json, random, sys
w = sys.argv[1]
cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1536,
       "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
       "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
       "use_sliding_window": False, "initializer_range": 0.02, "bos_token_id": 151646, "eos_token_id": 151643,
       "torch_dtype": "bfloat16"}
json.dump(cfg, open(w + "/config.json", "w"))
r = random.Random(5)
with open(w + "/data.jsonl", "w") as f:
    for i in range(8):
        ids = [r.randrange(0, 151000) for _ in range(4096)]
        f.write(json.dumps({"input_ids": ids, "query_len": 200, "k_begin": 300, "k_end": 340, "unsafe": i % 2}) + "\n")
EOF
  "$sk" init --config "$w/config.json" --seed 1 --out "$w/model" --dtype bfloat16 || return 1
  local args=(--model "$w/model" --device cuda --dtype bfloat16 --per-device-train-batch-size 1 --max-seq-len 4096
              --gradient-checkpointing --loss-chunk-tokens 2048 --key-sentence-prediction --safety-head "$@")
  "$sk" train --plan "${args[@]}" --device-memory-gb 80
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$w/mem.txt" 2>/dev/null &
  local smi=$!
  "$sk" train "${args[@]}" --data "$w/data.jsonl" --output-dir "$w/run" --num-train-epochs 1 \
    --gradient-accumulation-steps 1 --last-k-epoch 1 --max-steps 3 --save-dtype bfloat16
  local rc=$?
  kill "$smi" 2>/dev/null
  echo "highest nvidia-smi memory.used during training: $(sort -n "$w/mem.txt" | tail -1) MiB"
  return $rc
}

run() {
  OUT=${OUT:-$G/out}
  mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)' >>"$OUT/gpu.txt" 2>&1
  cat "$OUT/gpu.txt"
  step build build
  [ "$failures" -eq 0 ] || { echo "build failed; nothing else can run"; exit 1; }
  local B=$G/b
  export SAFEKEY_GOLDEN_DIR=$G/golden
  step golden_cpu_fp32 "$B/test_model_golden_conformance"
  step golden_cuda_fp32 env SAFEKEY_TEST_DEVICE=cuda "$B/test_model_golden_conformance"
  step golden_cuda_bf16 env SAFEKEY_TEST_DEVICE=cuda SAFEKEY_TEST_DTYPE=bfloat16 "$B/test_model_golden_conformance"
  step golden_cpu_fp32_judge judge_conformance float32 "$OUT/golden_cpu_fp32.txt"
  step golden_cuda_fp32_judge judge_conformance float32 "$OUT/golden_cuda_fp32.txt"
  step golden_cuda_bf16_judge judge_conformance bfloat16 "$OUT/golden_cuda_bf16.txt"
  step bench_model_1p5b "$B/bench_model" --device cuda --dtype bfloat16 --only 1.5B --seq 2048 --iters 5
  step hf_model_1p5b python3 "$ROOT/bench/hf_model.py" --seq 2048 --iters 5 --dtype bfloat16
  local W=$G/work
  rm -rf "$W"
  step demo_quick "$B/safekey" demo --quick --out "$W/demo"
  local M
  M=$(ls -d "$W"/demo/stage1/checkpoint-*/model 2>/dev/null | sort -V | tail -1)
  local train=("$B/safekey" train --model "$M" --data "$W/demo/world/stage2.json" --num-train-epochs 3
               --last-k-epoch 3 --key-sentence-prediction --safety-head --per-device-train-batch-size 8
               --gradient-accumulation-steps 1 --learning-rate 3e-4 --max-steps 40 --logging-steps 10)
  step generate_cpu_vs_cuda compare_generation "$B/safekey" "$M" "$W/demo/world/analysis_probe.json" "$W/generate"
  step train_cpu_fp32 "${train[@]}" --output-dir "$W/cpu-fp32" --device cpu --dtype float32
  step train_cuda_fp32 "${train[@]}" --output-dir "$W/cuda-fp32" --device cuda --dtype float32
  step train_cuda_bf16 "${train[@]}" --output-dir "$W/cuda-bf16" --device cuda --dtype bfloat16
  step train_compare_fp32 compare_losses float32 "$W/cpu-fp32" "$W/cuda-fp32"
  step train_compare_bf16 compare_losses bfloat16 "$W/cpu-fp32" "$W/cuda-bf16"
  step train_nccl_world1 "$B/safekey" launch --nproc-per-node 1 --master-port 0 -- "${train[@]}" \
    --output-dir "$W/cuda-fp32-nccl" --device cuda --dtype float32 --dist-backend nccl --zero-stage 2
  step train_nccl_compare compare_losses float32 "$W/cuda-fp32" "$W/cuda-fp32-nccl"
  step train_nccl_zero3_world1 "$B/safekey" launch --nproc-per-node 1 --master-port 0 -- "${train[@]}" \
    --output-dir "$W/cuda-fp32-zero3" --device cuda --dtype float32 --dist-backend nccl --zero-stage 3
  step train_zero3_compare compare_losses float32 "$W/cuda-fp32" "$W/cuda-fp32-zero3"
  step train_cuda_bf16_lora "${train[@]}" --output-dir "$W/cuda-bf16-lora" --device cuda --dtype bfloat16 \
    --lora-r 8 --lora-alpha 16 --lora-target-modules all-linear --gradient-checkpointing
  step scale_1p5b scale_1p5b "$B/safekey" "$W/scale"
  step scale_1p5b_lora scale_1p5b "$B/safekey" "$W/scale-lora" --lora-r 16 --lora-target-modules all-linear
  echo "gpu_check: $failures step(s) failed"
  exit "$failures"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  build) OUT=${OUT:-$G/out}; mkdir -p "$OUT"; build ;;  # the build alone (env TORCH_DIR, CONFIGURE_ONLY)
  *) echo "usage: scripts/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
