#!/usr/bin/env bash
# The demo: installs what is missing, then starts a real local control plane (etcd,
# kube-apiserver, kube-controller-manager), the node runner and the operator, applies samples/
# and shows what happens until Ctrl-C. Needs root (pods run in their own network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run -q -p e2e --bin demo -- "$@"
