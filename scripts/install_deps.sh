#!/usr/bin/env bash
# Installs what building and running safekey needs on Debian 12 (as root). Idempotent: skips apt
# when every package is already present. libopenblas0-openmp matters: without it libtorch runs on
# the reference BLAS, about 10x slower. libgloo-dev: the Gloo headers that libtorch's c10d
# ProcessGroupGloo needs (multi-process training on the CPU). libyaml-cpp-dev: YAML config files and
# the recipes under recipes/ (safekey train --config).
set -euo pipefail
PKGS=(build-essential cmake ninja-build ccache pkg-config git
      libtorch-dev libopenblas0-openmp libgloo-dev nlohmann-json3-dev libonig-dev libutf8proc-dev
      libcpp-httplib-dev libyaml-cpp-dev zlib1g-dev libgtest-dev libbenchmark-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install_deps] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
