#!/usr/bin/env bash
# Deno for chirpbase's edge functions: installed from the npm registry into .local/, then run.
#
#   scripts/deno.sh                 install if needed and print the path of the deno binary
#   scripts/deno.sh path            the same
#   scripts/deno.sh ARGS...         install if needed, then run `deno ARGS...`
#
# The npm package `deno` ships the real binary through per-platform optional dependencies
# (`@deno/linux-x64-glibc`, ...); we install it with npm into .local/deno/<version> and run that
# binary directly (no node wrapper in the way). Idempotent: a second call does not touch the
# network. Deno's own cache (npm packages the functions import) lives in .local/deno/cache
# (DENO_DIR), so repeated test runs are offline and fast.
#
# Environment: CHIRPBASE_DENO_VERSION (default below), DENO_DIR (default .local/deno/cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CHIRPBASE_DENO_VERSION:-2.9.6}"
HOME_DIR="$ROOT/.local/deno"
PREFIX="$HOME_DIR/$VERSION"

# shellcheck source=scripts/npm-tool.sh
. "$ROOT/scripts/npm-tool.sh"

log() { printf '[deno] %s\n' "$*" >&2; }

platform_package() {
  local arch
  case "$(uname -s)" in
    Linux) ;;
    Darwin)
      case "$(uname -m)" in arm64 | aarch64) echo "@deno/darwin-arm64" ;; *) echo "@deno/darwin-x64" ;; esac
      return ;;
    *) log "unsupported OS $(uname -s)"; exit 1 ;;
  esac
  arch="$(uname -m)"
  case "$arch" in
    x86_64 | amd64) echo "@deno/linux-x64-glibc" ;;
    aarch64 | arm64) echo "@deno/linux-arm64-glibc" ;;
    *) log "unsupported architecture $arch"; exit 1 ;;
  esac
}

binary_path() { echo "$PREFIX/node_modules/$(platform_package)/deno"; }

install() { npm_tool_install deno "$PREFIX" "$(binary_path)" "deno@$VERSION"; }

mkdir -p "$HOME_DIR"
install
export DENO_DIR="${DENO_DIR:-$HOME_DIR/cache}"
export DENO_NO_UPDATE_CHECK=1
export NO_COLOR="${NO_COLOR:-1}"

if [ "$#" -eq 0 ] || [ "$1" = "path" ]; then
  binary_path
  exit 0
fi
exec "$(binary_path)" "$@"
