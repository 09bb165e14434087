#!/usr/bin/env bash
# X's reference tweet counter, npm `twitter-text` (pinned), for the tests that check chirpbase's
# own counters against it.
#
#   scripts/twitter-text.sh            install if needed and print the package's directory
#   scripts/twitter-text.sh parse      install if needed, then read a JSON array of strings on
#                                      stdin and print, for each, parseTweet's result and the
#                                      URLs extractUrlsWithIndices finds (a JSON array)
#
# Installed with npm into .local/twitter-text/<version> like scripts/deno.sh installs Deno;
# idempotent (a second call does not touch the network) and safe to call in parallel.
# Environment: CHIRPBASE_TWITTER_TEXT_VERSION (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CHIRPBASE_TWITTER_TEXT_VERSION:-3.1.0}"
# twitter-text 3.1.0 asks for twemoji-parser ^11.0.2 (its emoji data); pinned so it cannot drift.
TWEMOJI_PARSER_VERSION="11.0.2"
HOME_DIR="$ROOT/.local/twitter-text"
PREFIX="$HOME_DIR/$VERSION"
PACKAGE="$PREFIX/node_modules/twitter-text"

log() { printf '[twitter-text] %s\n' "$*" >&2; }

install() {
  if [ -f "$PACKAGE/package.json" ]; then return; fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      log "npm not found: installing nodejs and npm with apt"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      log "npm is required (apt-get install -y nodejs npm)"; exit 1
    fi
  fi
  mkdir -p "$PREFIX"
  (
    flock 9
    if [ ! -f "$PACKAGE/package.json" ]; then
      log "installing twitter-text@$VERSION from the npm registry into $PREFIX"
      printf '{"name":"chirpbase-twitter-text","private":true}\n' >"$PREFIX/package.json"
      npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --ignore-scripts \
        --loglevel=error "twitter-text@$VERSION" "twemoji-parser@$TWEMOJI_PARSER_VERSION" >&2
    fi
  ) 9>"$HOME_DIR/.install.lock"
  if [ ! -f "$PACKAGE/package.json" ]; then
    log "npm did not install twitter-text (expected $PACKAGE)"; exit 1
  fi
}

mkdir -p "$HOME_DIR"
install
if [ "$#" -eq 0 ]; then
  echo "$PACKAGE"
  exit 0
fi
case "$1" in
  parse) exec env NODE_PATH="$PREFIX/node_modules" node "$ROOT/scripts/twitter_text_parse.cjs" ;;
  *) log "unknown command $1 (expected: parse)"; exit 2 ;;
esac
