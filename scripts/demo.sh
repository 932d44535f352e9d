#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds `safekey`, and runs the toy-world
# demo end to end (docs/toy_world.md): world datasets, a BPE tokenizer and a tiny Qwen2 LRM trained
# from scratch (stage 1), safety tuning with SFT, SafeKey and the two ablations over 5 seeds (stage 2),
# evaluation on seen and held-out jailbreaks, the attention and probe analyses, and the report
# (runs/demo/report.md, also printed). Finished stages are cached: a rerun continues where it stopped.
# Usage: scripts/demo.sh [safekey demo flags...]   e.g. --quick (minutes), --out DIR, --seeds N
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install_deps.sh"
TARGET=safekey bash "$ROOT/scripts/build.sh"
SK="${BUILD_DIR:-$ROOT/build/release}/safekey"
cd "$ROOT"
"$SK" demo "$@"   # --out defaults to runs/demo
