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

# shellcheck source=scripts/npm-tool.sh
. "$ROOT/scripts/npm-tool.sh"

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

install() { npm_tool_install supabase "$PREFIX" "$(binary_path)" "supabase@$VERSION"; }

mkdir -p "$HOME_DIR"
install
export DO_NOT_TRACK=1 SUPABASE_TELEMETRY_DISABLED=1

if [ "$#" -eq 0 ] || [ "$1" = "path" ]; then
  binary_path
  exit 0
fi
exec "$(binary_path)" "$@"
