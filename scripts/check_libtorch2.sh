#!/usr/bin/env bash
# Builds and tests safekey against libtorch 2.x on a CPU-only Debian 12 machine (as root): Debian 13
# ships libtorch 2.6, so this makes a minimal Debian 13 root with debootstrap, installs the same
# build dependencies there, builds this checkout into build/libtorch2 and runs ctest inside it.
# This compiles and exercises the code guarded by TORCH_VERSION_MAJOR >= 2 (fused
# scaled_dot_product_attention) that Debian 12's libtorch 1.13 never reaches.
# Usage: scripts/check_libtorch2.sh [ctest args...]
#   env: SAFEKEY_DEBIAN13_ROOT (default /var/tmp/safekey-debian13), SAFEKEY_LIBTORCH2_BUILD (default
#        build/libtorch2), DEBIAN_MIRROR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOP=$(dirname "$ROOT")  # the checkout's parent, so that ../shared resolves inside the root too
R=${SAFEKEY_DEBIAN13_ROOT:-/var/tmp/safekey-debian13}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
if [ ! -x "$R/usr/bin/apt-get" ]; then
  echo "[libtorch2] debootstrap trixie into $R"
  mkdir -p "$R"
  debootstrap --variant=minbase trixie "$R" "$MIRROR" >"$R.debootstrap.log" 2>&1 ||
    { tail -5 "$R.debootstrap.log"; exit 1; }
fi

mounted=()
cleanup() { for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
bind() {  # bind <host path> <path inside the root>
  mkdir -p "$R$2"
  mountpoint -q "$R$2" || { mount --bind "$1" "$R$2"; mounted+=("$R$2"); }
}
mountpoint -q "$R/proc" || { mount -t proc proc "$R/proc"; mounted+=("$R/proc"); }
bind /dev /dev
bind "$TOP" "$TOP"
cp /etc/resolv.conf "$R/etc/resolv.conf"

in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
PKGS="g++ cmake ninja-build pkg-config ccache libtorch-dev libopenblas0-openmp libgloo-dev nlohmann-json3-dev
      libonig-dev libutf8proc-dev libcpp-httplib-dev libyaml-cpp-dev libssl-dev libgtest-dev libbenchmark-dev nodejs
      python3-jinja2 python3-numpy zlib1g-dev"
# shellcheck disable=SC2086
if ! in_root dpkg-query -W $PKGS >/dev/null 2>&1; then
  echo "[libtorch2] installing build dependencies in the Debian 13 root"
  in_root bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends $(echo $PKGS)" >"$R.apt.log" 2>&1 ||
    { tail -5 "$R.apt.log"; exit 1; }
fi
echo "[libtorch2] $(in_root dpkg-query -W -f='libtorch-dev ${Version}' libtorch-dev)"

# References for the conformance tests (Node tokenizers, Jinja2), installed on the host as for
# scripts/test.sh; the root sees them through the bind mount.
bash "$ROOT/scripts/install_test_refs.sh"
B=${SAFEKEY_LIBTORCH2_BUILD:-$ROOT/build/libtorch2}
in_root bash -c "cmake -S '$ROOT' -B '$B' -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
  cmake --build '$B' -j $(nproc)"
in_root bash -c "cd '$B' && SAFEKEY_TOKREF_DIR='$ROOT/build/tokref' ctest --output-on-failure -j $(nproc) $*"
