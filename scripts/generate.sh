#!/usr/bin/env bash
# Regenerates everything derived from the Rust types and the chart: crds/, the chart's crds/,
# and deploy/mesos-operator.yaml. The drift tests fail until this has been run after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f crds/*.yaml charts/mesos-operator/crds/*.yaml
cargo run -q -p mesos-operator -- crd --out-dir crds
cp crds/*.yaml charts/mesos-operator/crds/
scripts/render-manifests.sh
