#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package Sluice needs to build, test, benchmark and demo. Idempotent:
# packages already present are not reinstalled and the apt index is refreshed only when needed.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config clang llvm bpftool libbpf-dev linux-libc-dev
  libnl-3-dev libnl-route-3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcurl4-openssl-dev libssl-dev libelf-dev zlib1g-dev
  # fuzzing (hack/fuzz.sh: clang's libFuzzer and sanitizer runtimes)
  libclang-rt-dev
  # tests, demo and benchmarks
  iproute2 iputils-ping iptables nftables tcpdump socat netcat-openbsd procps psmisc
  openssl python3 containernetworking-plugins iperf3 sockperf util-linux kmod
  # the libcni / go-cni runtime driver used by the integration tests
  golang-go golang-github-containerd-go-cni-dev golang-github-appc-cni-dev
  # shipping checks
  shellcheck unzip
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -d /var/lib/apt/lists ]] || [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -720 2>/dev/null | head -1)" ]]; then
    apt-get update -qq
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm (for the Helm/kubectl package) may come from Debian or from the machine's own Node.js.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# Helm 4 and kubectl for the shipping checks (from the npm registry; see the script).
bash "$(dirname "$0")/install-helm.sh"
