#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds, and runs `safekey demo`
# (extra arguments are passed on, e.g. --quick).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install_deps.sh"
TARGET=safekey bash "$ROOT/scripts/build.sh"
"${BUILD_DIR:-$ROOT/build/release}/safekey" demo "$@"
