#!/usr/bin/env bash
# The test command: installs what is missing, then format, lint and every test of the workspace
# (unit tests, the quorum model check, and the end-to-end tests on a real local kube-apiserver).
# Needs root (pods run in their own network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
step() { printf '\n== %s\n' "$*" >&2; }
step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test"
cargo test --workspace
