#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine of this project's kind.
# Idempotent: every step checks first, so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Rust toolchain components -------------------------------------------------
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

# --- Debian packages -----------------------------------------------------------
# One list for the whole project; each entry says who needs it.
APT_PACKAGES=(
  openssl     # serving certs and service-account keys for the local apiserver
)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
