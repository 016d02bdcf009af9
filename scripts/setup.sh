#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine of this project's kind.
# Idempotent: every step checks first, so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Prerequisites, checked before any long step --------------------------------
# What this script cannot install itself. Everything missing is named on one line, with how to get
# it, and nothing else runs.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
GO_MIN=1.26        # e2e/control-plane/build.sh builds Kubernetes v1.37 (its go.mod says go 1.26)
RUST_MIN=1.89      # rust-version in Cargo.toml
missing=()
[ "$(id -u)" = 0 ] || missing+=("root (apt-get installs and the node runner's network namespaces need it: run as root)")
command -v apt-get >/dev/null || missing+=("apt-get (a Debian or Ubuntu machine)")
if command -v go >/dev/null; then
  go_version=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
  version_ge "${go_version:-0}" "$GO_MIN" || missing+=("Go >= $GO_MIN (found $go_version: install a newer Go toolchain and put its bin/ on PATH)")
else
  missing+=("Go >= $GO_MIN (not on PATH: install a Go toolchain and put its bin/ on PATH)")
fi
if command -v rustc >/dev/null && command -v cargo >/dev/null; then
  rust_version=$(rustc --version | awk '{print $2}')
  version_ge "$rust_version" "$RUST_MIN" || missing+=("Rust >= $RUST_MIN (found $rust_version: rustup update stable)")
else
  missing+=("Rust >= $RUST_MIN with cargo (not on PATH: install rustup, then rustup default stable)")
fi
command -v rustup >/dev/null || missing+=("rustup (adds the rustfmt and clippy components)")
command -v cc >/dev/null || missing+=("a C compiler as cc (the ring crate compiles C: apt-get install gcc)")
if ((${#missing[@]})); then
  joined=$(printf '%s; ' "${missing[@]}")
  log "missing prerequisites: ${joined%; }"
  exit 1
fi

# --- Rust toolchain components -------------------------------------------------
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done

# --- Debian packages -----------------------------------------------------------
# One list for the whole project; each entry says who needs it.
APT_PACKAGES=(
  openssl     # serving certs and service-account keys for the local apiserver
  etcd-server    # e2e: the local control plane's etcd (3.4.23 works with kube-apiserver v1.37.2)
  iproute2       # e2e node runner: pod network namespaces, bridge, veth pairs
  util-linux     # e2e node runner: nsenter/unshare for pod mount namespaces
  zookeeper      # e2e node runner: runs `zookeeper:*` images as Debian's ZooKeeper
  busybox        # e2e tests: `busybox:*` test images (httpd, nc, sleep)
  netcat-openbsd # e2e tests: tcp probes and DNS-name checks between pods
  python3        # e2e marathon_app: the sample app's tasks serve HTTP with python3 -m http.server
)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Helm, to render charts/mesos-operator and check the committed manifests ---------------
# Debian has no helm package; it is a Go module, so build it once and cache it per version.
HELM_VERSION=v3.22.0
HELM_BIN="${XDG_CACHE_HOME:-$HOME/.cache}/mesos-operator/helm/$HELM_VERSION/helm"
if [ ! -x "$HELM_BIN" ]; then
  log "building helm $HELM_VERSION (about 3 minutes the first time)"
  start=$SECONDS
  GOBIN="$(dirname "$HELM_BIN")" GOFLAGS=-trimpath CGO_ENABLED=0 \
    GOCACHE="${XDG_CACHE_HOME:-$HOME/.cache}/mesos-operator/go/build" GOMODCACHE="${XDG_CACHE_HOME:-$HOME/.cache}/mesos-operator/go/mod" \
    go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  log "helm built in $((SECONDS - start)) s"
fi

# --- e2e: Kubernetes control plane binaries (issue 4) ---------------------------
# kube-apiserver, kube-controller-manager and kubectl built from the Go module proxy, cached per
# version under ${XDG_CACHE_HOME:-$HOME/.cache}/mesos-operator/ (cold: ~10 min on 2 cores; cached: seconds).
e2e/control-plane/build.sh >/dev/null
