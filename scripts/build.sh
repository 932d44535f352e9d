#!/usr/bin/env bash
# Configures and builds safekey (and its tests and benchmarks) into build/release.
# Usage: scripts/build.sh [extra cmake args...]   env: BUILD_DIR (default build/release), TARGET
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build/release}
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# TARGET may name several targets, separated by spaces.
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$(nproc)" ${TARGET:+--target $TARGET}
