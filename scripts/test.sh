#!/usr/bin/env bash
# The test command: installs dependencies and references, builds, runs every ctest test and prints
# ctest's summary. Usage: scripts/test.sh [ctest args...]  (e.g. -L unit, -LE slow)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install_deps.sh"
bash "$ROOT/scripts/install_test_refs.sh"
# Only what ctest runs (target safekey_tests: the program, the tests, the corpus replay); the
# benchmark programs are built by scripts/build.sh without a target.
TARGET=safekey_tests bash "$ROOT/scripts/build.sh"

# The fuzz corpus is replayed by ctest under ASan + UBSan (tests fuzz_replay_<target>, this build).
# SAFEKEY_FUZZ_SANITIZED_REPLAY=1 also replays it through the clang libFuzzer build first
# (scripts/fuzz.sh replay, a second build of about 4.5 minutes; RELIABILITY.md).
if [ "${SAFEKEY_FUZZ_SANITIZED_REPLAY:-0}" = 1 ]; then
  bash "$ROOT/scripts/fuzz.sh" replay
fi

export SAFEKEY_TOKREF_DIR=${SAFEKEY_TOKREF_DIR:-$ROOT/build/tokref}
cd "${BUILD_DIR:-$ROOT/build/release}"
ctest --output-on-failure -j "$(nproc)" "$@"
