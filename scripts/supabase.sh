#!/usr/bin/env bash
# The Supabase CLI for chirpbase, installed from the npm registry into .local/, then run.
#
#   scripts/supabase.sh                 install if needed and print the path of the CLI binary
#   scripts/supabase.sh path            the same
#   scripts/supabase.sh ARGS...         install if needed, then run `supabase ARGS...`
#
# The npm package `supabase` ships the real CLI through per-platform optional dependencies
# (`@supabase/cli-linux-x64`, ...): a native `supabase` binary and its `supabase-go` sidecar side
# by side. We install it with npm into .local/supabase/<version> (no install scripts) and run that
# binary directly, with no node wrapper in the way. The version is pinned exactly: migrations are
# pushed, listed and linted by this CLI, and its behaviour is the reference for
# `chirpbase db migrate`. A second call does not touch the network.
#
# Telemetry is off (DO_NOT_TRACK, SUPABASE_TELEMETRY_DISABLED): local runs report nothing.
#
# Environment: CHIRPBASE_SUPABASE_VERSION (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CHIRPBASE_SUPABASE_VERSION:-2.117.0}"
HOME_DIR="$ROOT/.local/supabase"
PREFIX="$HOME_DIR/$VERSION"

log() { printf '[supabase] %s\n' "$*" >&2; }

platform_package() {
  local os arch libc=""
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) log "unsupported OS $(uname -s)"; exit 1 ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) log "unsupported architecture $(uname -m)"; exit 1 ;;
  esac
  if [ "$os" = linux ] && ! getconf GNU_LIBC_VERSION >/dev/null 2>&1; then libc="-musl"; fi
  echo "@supabase/cli-$os-$arch$libc"
}

binary_path() { echo "$PREFIX/node_modules/$(platform_package)/bin/supabase"; }

install() {
  local bin
  bin="$(binary_path)"
  if [ -x "$bin" ]; then return; fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      log "npm not found: installing nodejs and npm with apt"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      log "npm is required to install the Supabase CLI (apt-get install -y npm)"; exit 1
    fi
  fi
  log "installing supabase@$VERSION from the npm registry into $PREFIX"
  mkdir -p "$PREFIX"
  # A lock per install so parallel callers (pytest processes, make -j) do not race.
  (
    flock 9
    if [ ! -x "$bin" ]; then
      printf '{"name":"chirpbase-supabase","private":true}\n' >"$PREFIX/package.json"
      # --ignore-scripts: the platform package carries the binaries; nothing needs building.
      npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --ignore-scripts \
        --loglevel=error "supabase@$VERSION" >&2
    fi
  ) 9>"$HOME_DIR/.install.lock"
  if [ ! -x "$bin" ]; then
    log "npm did not install $(platform_package) (expected $bin)"
    exit 1
  fi
  log "installed supabase $("$bin" --version | head -n1)"
}

mkdir -p "$HOME_DIR"
install
export DO_NOT_TRACK=1 SUPABASE_TELEMETRY_DISABLED=1

if [ "$#" -eq 0 ] || [ "$1" = "path" ]; then
  binary_path
  exit 0
fi
exec "$(binary_path)" "$@"
