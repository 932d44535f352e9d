#!/usr/bin/env bash
# The main job on the embedded default. Installs dependencies, builds, then runs the smallest real
# pipeline the tool has end to end today (the full toy-world demo, `safekey demo`, is not in the
# tree yet — see docs/toy_world.md):
#   1. generates the toy world's datasets (stage 1, stage 2, evaluation splits) from a seed;
#   2. creates a tiny random Qwen2 checkpoint in Hugging Face format (config.json + safetensors);
#   3. inspects it and runs a forward pass, writing logits and hidden states to a safetensors file.
# Usage: scripts/demo.sh [OUT_DIR]   (default runs/demo)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/runs/demo}
bash "$ROOT/scripts/install_deps.sh"
TARGET=safekey bash "$ROOT/scripts/build.sh"
SK="${BUILD_DIR:-$ROOT/build/release}/safekey"
mkdir -p "$OUT"
"$SK" world generate --out "$OUT/world" --quick
cat > "$OUT/tiny_qwen2.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 512,
 "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "initializer_range": 0.02,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32", "use_sliding_window": false}
JSON
"$SK" init --config "$OUT/tiny_qwen2.json" --seed 2002 --out "$OUT/model"
"$SK" inspect --model "$OUT/model"
"$SK" forward --model "$OUT/model" --ids 1,5,9,42,7 --out "$OUT/forward.safetensors"
echo "demo: outputs in $OUT"
