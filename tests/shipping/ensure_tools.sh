#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest fixture for the shipping tests: helm and kubectl installed (hack/install-helm.sh, as
# root), python3 with PyYAML. Fails with what to do; never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v helm >/dev/null 2>&1 || ! command -v kubectl >/dev/null 2>&1; then
  if [[ $EUID -ne 0 ]]; then
    echo "shipping: helm/kubectl missing and not root: run sudo bash hack/install-helm.sh" >&2
    exit 1
  fi
  bash hack/install-helm.sh
fi
helm version --short
kubectl version --client
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "shipping: python3 lacks PyYAML: apt-get install python3-yaml (hack/install-deps.sh)" >&2
  exit 1
fi
echo "shipping tools ready"
