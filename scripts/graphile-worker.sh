#!/usr/bin/env bash
# graphile-worker for the queue benchmark (bench/queue_peers.py): installed from the npm registry
# into .local/, with a Node.js that it supports.
#
#   scripts/graphile-worker.sh              install if needed; print the Node binary, then the
#                                           graphile-worker install directory (one per line)
#   scripts/graphile-worker.sh node ARGS... install if needed, then run `node ARGS...` with
#                                           GRAPHILE_WORKER_HOME set to the install directory
#
# graphile-worker comes from bench/graphile/package.json + package-lock.json (exact versions,
# `npm ci`), into .local/graphile-worker/<version>. graphile-worker 0.18 needs Node.js >= 22.18:
# when the machine's `node` is older, the npm package `node-<os>-<arch>` (which ships the real
# binary) is installed into .local/node/<version> (scripts/npm-tool.sh) and used instead.
# Idempotent: a second call does not touch the network. Only the benchmark uses any of this;
# the worker never does.
#
# Environment: CHIRPBASE_BENCH_NODE_VERSION (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC_DIR="$ROOT/bench/graphile"
GW_VERSION="$(sed -n 's/.*"graphile-worker": *"\([^"]*\)".*/\1/p' "$SPEC_DIR/package.json")"
NODE_VERSION="${CHIRPBASE_BENCH_NODE_VERSION:-22.23.5}"
NODE_MIN_MAJOR=22
NODE_MIN_MINOR=18
GW_PREFIX="$ROOT/.local/graphile-worker/$GW_VERSION"
NODE_PREFIX="$ROOT/.local/node/$NODE_VERSION"

log() { printf '[graphile-worker] %s\n' "$*" >&2; }

# shellcheck source=scripts/npm-tool.sh
. "$ROOT/scripts/npm-tool.sh"

node_is_recent() {  # node_is_recent BINARY: true when BINARY is a Node.js graphile-worker supports
  local version major minor
  version="$("$1" --version 2>/dev/null || true)"
  version="${version#v}"
  major="${version%%.*}"
  minor="${version#*.}"; minor="${minor%%.*}"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
  [ "$major" -gt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -ge "$NODE_MIN_MINOR" ]; }
}

node_package() {
  local os arch
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) log "unsupported OS $(uname -s)"; exit 1 ;; esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) log "unsupported architecture $(uname -m)"; exit 1 ;;
  esac
  echo "node-$os-$arch"
}

node_binary() {
  local system bundled
  system="$(command -v node || true)"
  if [ -n "$system" ] && node_is_recent "$system"; then echo "$system"; return; fi
  bundled="$NODE_PREFIX/node_modules/$(node_package)/bin/node"
  npm_tool_install graphile-worker "$NODE_PREFIX" "$bundled" "$(node_package)@$NODE_VERSION"
  if ! node_is_recent "$bundled"; then
    log "no usable Node.js >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR (expected $bundled)"; exit 1
  fi
  echo "$bundled"
}

install_graphile_worker() {
  local marker="$GW_PREFIX/node_modules/graphile-worker/package.json"
  if [ -f "$marker" ] && cmp -s "$SPEC_DIR/package-lock.json" "$GW_PREFIX/package-lock.json"; then
    return
  fi
  command -v npm >/dev/null || { log "npm is required (apt-get install -y npm)"; exit 1; }
  log "installing graphile-worker@$GW_VERSION into $GW_PREFIX"
  mkdir -p "$GW_PREFIX"
  (
    flock 9
    cp "$SPEC_DIR/package.json" "$SPEC_DIR/package-lock.json" "$GW_PREFIX/"
    # --ignore-scripts: nothing in the tree needs an install script. npm may run on an older
    # Node than the one graphile-worker runs on, so it warns about `engines` (only a warning).
    npm ci --prefix "$GW_PREFIX" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  ) 9>"$GW_PREFIX.lock"
  [ -f "$marker" ] || { log "npm did not install graphile-worker (expected $marker)"; exit 1; }
}

mkdir -p "$ROOT/.local/graphile-worker" "$ROOT/.local/node"
NODE_BIN="$(node_binary)"
install_graphile_worker

if [ "$#" -eq 0 ]; then
  echo "$NODE_BIN"
  echo "$GW_PREFIX"
  exit 0
fi
if [ "$1" = "node" ]; then
  shift
  export GRAPHILE_WORKER_HOME="$GW_PREFIX"
  exec "$NODE_BIN" "$@"
fi
log "unknown command $1 (expected no argument, or: node ARGS...)"
exit 2
