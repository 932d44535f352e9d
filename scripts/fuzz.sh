#!/usr/bin/env bash
# libFuzzer targets (tests/fuzz/fuzz_<target>.cpp) built with clang, ASan and UBSan into build/fuzz.
#
#   scripts/fuzz.sh replay [TARGET...]
#       Runs every input of tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target> (inputs
#       that once crashed, kept whatever the merge keeps) once through its target, built with
#       sanitizers (scripts/test.sh with SAFEKEY_FUZZ_SANITIZED_REPLAY=1; CI replays the corpus
#       through ctest -L fuzz, sanitized in the test build). A crash, sanitizer report, leak or
#       timeout fails it.
#   scripts/fuzz.sh campaign [SECONDS] [TARGET...]
#       Fuzzes each target for SECONDS (default 600), JOBS (default 2) at a time, starting from the
#       seeds (tests/fuzz/seeds.py) and the committed corpus; then merges seeds + corpus + what the
#       campaign found into a fresh, minimal folder (-merge=1), reduces that to the inputs that keep
#       every covered edge (-use_counters=0) and prints one line of figures per target
#       (RELIABILITY.md). UPDATE_CORPUS=1 replaces tests/fuzz/corpus/<target> with the reduced set.
#       Crashing inputs are kept in build/fuzz/campaign/<target>/crashes/.
#
# Targets: records prompt_file openai safetensors template tokenizer replies (default: all).
# Env: FUZZ_BUILD_DIR (build/fuzz), JOBS (2), SAFEKEY_SHARED_DIR and SAFEKEY_TOKREF_DIR (extra seeds).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}
ALL_TARGETS=(records prompt_file openai safetensors template tokenizer replies)
# Longest input per target: each covers the real inputs the seeds hold, and keeps the corpus small.
declare -A MAX_LEN=([records]=4096 [prompt_file]=2048 [openai]=2048 [safetensors]=2048
                    [template]=8192 [tokenizer]=8192 [replies]=2048)
# libFuzzer options common to every run.
OPTS=(-rss_limit_mb=2048 -timeout=10)

build() {
  if ! command -v clang++ >/dev/null || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
    echo "[fuzz] installing clang and its libFuzzer runtime"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
  fi
  # Only the fuzz targets are built: safekey_plain and the two parser sources the targets compile
  # themselves (CMakeLists.txt), never safekey_torch.
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSAFEKEY_FUZZ=ON -DSAFEKEY_TESTS=OFF -DSAFEKEY_BENCH=OFF -DSAFEKEY_PCH=OFF >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target fuzz_all
}

targets() { if [ $# -gt 0 ]; then echo "$@"; else echo "${ALL_TARGETS[@]}"; fi; }

# "N files, B bytes" of the files in the given folders.
files_bytes() {
  find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{n++; b += $1} END {print n + 0, b + 0}'
}

replay() {
  build
  local failed=0 t n dirs
  for t in $(targets "$@"); do
    dirs=("$ROOT/tests/fuzz/corpus/$t")
    [ -d "$ROOT/tests/fuzz/regressions/$t" ] && dirs+=("$ROOT/tests/fuzz/regressions/$t")
    n=$(find "${dirs[@]}" -type f | wc -l)
    # -runs=0: each input runs once and nothing is mutated.
    if "$BUILD_DIR/fuzz_$t" "${OPTS[@]}" -runs=0 "${dirs[@]}" >"$BUILD_DIR/replay_$t.log" 2>&1; then
      echo "[fuzz] replay $t: $n inputs, ok"
    else
      echo "[fuzz] replay $t: FAILED (last lines of $BUILD_DIR/replay_$t.log):"
      tail -n 40 "$BUILD_DIR/replay_$t.log"
      failed=1
    fi
  done
  return $failed
}

# One campaign of target $1 for $2 seconds; writes $work/figures.
campaign_one() {
  local t=$1 secs=$2 work=$BUILD_DIR/campaign/$1
  local corpus=$ROOT/tests/fuzz/corpus/$t seeds=$BUILD_DIR/seeds/$t regress=$ROOT/tests/fuzz/regressions/$t
  rm -rf "$work" && mkdir -p "$work/found" "$work/crashes" "$work/merged" "$corpus"
  [ -d "$regress" ] && cp "$regress"/* "$seeds"/
  local rc=0
  "$BUILD_DIR/fuzz_$t" "${OPTS[@]}" -max_len="${MAX_LEN[$t]}" -max_total_time="$secs" \
    -print_final_stats=1 -artifact_prefix="$work/crashes/" "$work/found" "$seeds" "$corpus" \
    >"$work/fuzz.log" 2>&1 || rc=$?
  local before after
  before=$(files_bytes "$work/found" "$seeds" "$corpus")
  "$BUILD_DIR/fuzz_$t" "${OPTS[@]}" -max_len="${MAX_LEN[$t]}" -merge=1 "$work/merged" \
    "$corpus" "$seeds" "$work/found" >"$work/merge.log" 2>&1
  after=$(files_bytes "$work/merged")
  # What is committed: from the merged set, the inputs that keep every edge covered (hit counts not
  # counted as features), a fraction of its size.
  mkdir -p "$work/edges"
  "$BUILD_DIR/fuzz_$t" "${OPTS[@]}" -max_len="${MAX_LEN[$t]}" -use_counters=0 -merge=1 "$work/edges" \
    "$work/merged" >"$work/merge_edges.log" 2>&1
  local edges
  edges=$(files_bytes "$work/edges")
  local done_line execs eps
  done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|pulse|NEW|REDUCE)' "$work/fuzz.log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
  printf '%s secs=%s execs=%s exec/s=%s cov=%s ft=%s corpus_before=%s/%sB merged=%s/%sB committed=%s/%sB crashes=%s exit=%s\n' \
    "$t" "$secs" "${execs:-?}" "${eps:-?}" \
    "$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")" \
    "$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")" \
    ${before% *} ${before#* } ${after% *} ${after#* } ${edges% *} ${edges#* } \
    "$(find "$work/crashes" -type f | wc -l)" "$rc" >"$work/figures"
  if [ "${UPDATE_CORPUS:-0}" = 1 ] && [ "$rc" = 0 ]; then
    rm -rf "$corpus" && cp -r "$work/edges" "$corpus"
  fi
}

campaign() {
  local secs=600
  if [[ ${1:-} =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
  build
  rm -rf "$BUILD_DIR/seeds"
  python3 "$ROOT/tests/fuzz/seeds.py" "$BUILD_DIR/seeds" >/dev/null
  local jobs=${JOBS:-2} t
  for t in $(targets "$@"); do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    echo "[fuzz] $t: ${secs}s"
    campaign_one "$t" "$secs" &
  done
  wait
  echo "[fuzz] clang: $(clang++ --version | head -n 1); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  for t in $(targets "$@"); do cat "$BUILD_DIR/campaign/$t/figures"; done
}

case ${1:-} in
  replay) shift; replay "$@" ;;
  campaign) shift; campaign "$@" ;;
  build) build ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
