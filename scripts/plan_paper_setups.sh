#!/usr/bin/env bash
# The memory plans of the paper's setups (docs/distributed.md, "The paper's models"): `safekey train
# --plan` for R1-Distill-Qwen-7B, R1-Distill-Llama-8B and R1-Distill-Qwen-14B (config.json only, from
# ../shared/data/hf-configs/reconstructed) at the reference's settings — bf16 with fp32 master
# weights, per-device batch 2, sequence 8192, gradient checkpointing, QMM + safety head, fused
# attention — on 1, 8 and 16 GPUs of 80 GiB at ZeRO stages 0-3. Prints a markdown table.
# Usage: scripts/plan_paper_setups.sh [path/to/safekey]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SK=${1:-$ROOT/build/release/safekey}
CONFIGS=${SAFEKEY_SHARED_DIR:-$ROOT/../shared}/data/hf-configs/reconstructed
echo "| model | GPUs | ZeRO 0 | ZeRO 1 | ZeRO 2 | ZeRO 3 |"
echo "|---|---|---|---|---|---|"
for m in DeepSeek-R1-Distill-Qwen-7B DeepSeek-R1-Distill-Llama-8B DeepSeek-R1-Distill-Qwen-14B; do
  for w in 1 8 16; do
    row="| $m | $w x 80 GiB |"
    for z in 0 1 2 3; do
      out=$("$SK" train --plan --model "$CONFIGS/$m" --world-size "$w" --zero-stage "$z" --device cuda \
        --dtype bfloat16 --per-device-train-batch-size 2 --max-seq-len 8192 --gradient-checkpointing \
        --key-sentence-prediction --safety-head --plan-attention fused --device-memory-gb 80)
      peak=$(sed -n 's/.*(peak \([0-9]*\) MiB.*/\1/p' <<<"$out")
      verdict=$(sed -n 's/^verdict: \(fits\|does not fit\) .*/\1/p' <<<"$out")
      row="$row $(awk -v p="$peak" 'BEGIN{printf "%.1f GiB", p/1024}') $verdict |"
    done
    echo "$row"
  done
done
