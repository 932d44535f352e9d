#!/usr/bin/env bash
# The test command: installs dependencies and references, builds, runs every ctest test and prints
# ctest's summary. Usage: scripts/test.sh [ctest args...]  (e.g. -L unit, -LE slow)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install_deps.sh"
bash "$ROOT/scripts/install_test_refs.sh"
bash "$ROOT/scripts/build.sh"

# Fuzz corpus replay: every committed input of tests/fuzz/corpus and tests/fuzz/regressions runs once
# through its libFuzzer target, built with clang + ASan + UBSan into build/fuzz (no libtorch code).
# SAFEKEY_SKIP_FUZZ_REPLAY=1 leaves it out.
if [ "${SAFEKEY_SKIP_FUZZ_REPLAY:-0}" != 1 ]; then
  bash "$ROOT/scripts/fuzz.sh" replay
fi

export SAFEKEY_TOKREF_DIR=${SAFEKEY_TOKREF_DIR:-$ROOT/build/tokref}
cd "${BUILD_DIR:-$ROOT/build/release}"
ctest --output-on-failure -j "$(nproc)" "$@"
